"""Find finished runs under some directories, by their files, and read what the report needs.

Run kinds and the files that identify them (DESIGN.md §4):
    ppo       ppo_summary.json + metrics.jsonl + config.yaml (samples: eval/eval-{step}.json)
    bon       bon_summary.json + single/*/bon_sampled_results.json (+ ensemble/*/...)
    train-rm  rm_summary.json (members: rm_seed*/rm_eval.json)
    orpo      orpo_results.json (+ config.yaml)
    sweep     sweep_summary.json; the runs inside a sweep dir are summarized by the sweep only

Why tolerant: a report is read after the fact, over runs made by different versions or killed
half way. An unreadable file becomes a note on the page, never an exception.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIP_DIRS = frozenset({"checkpoints", "model", "value", "report_files", "toyworld", "__pycache__"})
INSIDE = {"ppo": {"eval"}, "bon": {"single", "ensemble"}}  # a run's own folders, not runs
# The demo's PPO method names, in the order its report should list them; others follow by name.
METHOD_ORDER = ("none", "kl_reward", "sqrt_chi2_loss", "ensemble_uwo", "length_penalty", "inform",
                "gold")  # fmt: skip
EVAL_FILE = re.compile(r"^eval-(\d+)\.json$")


@dataclass
class PPORun:
    label: str
    path: Path
    summary: dict[str, Any]
    evals: list[dict[str, Any]]  # metrics rows with eval/reward/gold, in step order
    config: dict[str, Any]
    eval_files: dict[int, Path]  # step -> RUN/eval/eval-{step}.json


@dataclass
class BonRun:
    label: str
    path: Path
    summary: dict[str, Any]
    curves: dict[str, list[dict[str, Any]]]  # "single/<rm>" or "ensemble/<objective>" -> rows


@dataclass
class RMRun:
    label: str
    path: Path
    summary: dict[str, Any]
    members: dict[str, dict[str, Any]]  # "rm_seed{s}" -> rm_eval.json


@dataclass
class OrpoRun:
    label: str
    path: Path
    results: dict[str, Any]
    config: dict[str, Any]


@dataclass
class SweepRun:
    label: str
    path: Path
    summary: dict[str, Any]


@dataclass
class Runs:
    ppo: list[PPORun] = field(default_factory=list)
    bon: list[BonRun] = field(default_factory=list)
    rm: list[RMRun] = field(default_factory=list)
    orpo: list[OrpoRun] = field(default_factory=list)
    sweeps: list[SweepRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.ppo or self.bon or self.rm or self.orpo or self.sweeps)


class Unreadable(Exception):
    """A run file that exists but cannot be parsed; becomes a note."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Unreadable(f"{path}: {exc}") from exc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a run killed mid-write) is dropped."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise Unreadable(f"{path}: {exc}") from exc
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            if i == len(lines) - 1:
                break
            raise Unreadable(f"{path}:{i + 1}: {exc}") from exc
    return rows


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise Unreadable(f"{path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _kind(path: Path, names: set[str]) -> str | None:
    if "sweep_summary.json" in names:
        return "sweep"
    if {"ppo_summary.json", "metrics.jsonl", "config.yaml"} <= names:
        return "ppo"
    if "bon_summary.json" in names and any((path / "single").glob("*/bon_sampled_results.json")):
        return "bon"
    if "rm_summary.json" in names:
        return "rm"
    if "orpo_results.json" in names:
        return "orpo"
    return None


def find_run_dirs(roots: Sequence[Path]) -> list[tuple[str, Path]]:
    """(kind, dir) for every run under `roots` (roots included), each dir once, sorted by path.

    Checkpoints, models and plot folders are not searched; nor are the insides of a sweep.
    """
    found: dict[Path, str] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            kind = _kind(here, set(filenames))
            if kind:
                found.setdefault(here.resolve(), kind)
            if kind == "sweep":
                dirnames[:] = []
                continue
            skip = SKIP_DIRS | INSIDE.get(kind or "", set())
            dirnames[:] = sorted(d for d in dirnames if d not in skip and d[0] != ".")
    return sorted(((k, p) for p, k in found.items()), key=lambda kp: str(kp[1]))


def labels_for(paths: Sequence[Path]) -> dict[Path, str]:
    """The dir name, or as many parent names as it takes to tell equal names apart."""
    out: dict[Path, str] = {}
    depth = {p: 1 for p in paths}
    for _ in range(8):
        names = {p: "/".join(p.parts[-depth[p] :]) for p in paths}
        clash = {n for n in names.values() if list(names.values()).count(n) > 1}
        out = names
        if not clash:
            break
        for p in paths:
            if names[p] in clash:
                depth[p] += 1
    return out


def method_order(label: str) -> tuple[int, str]:
    last = label.rsplit("/", 1)[-1]
    return (METHOD_ORDER.index(last) if last in METHOD_ORDER else len(METHOD_ORDER), label)


def load_ppo(label: str, path: Path) -> PPORun:
    evals = [r for r in read_jsonl(path / "metrics.jsonl") if r.get("eval/reward/gold") is not None]
    files = {}
    for f in (path / "eval").glob("eval-*.json"):
        m = EVAL_FILE.match(f.name)
        if m:
            files[int(m.group(1))] = f
    summary = read_json(path / "ppo_summary.json")
    return PPORun(label, path, summary, evals, read_yaml(path / "config.yaml"), files)


def load_bon(label: str, path: Path) -> BonRun:
    curves = {}
    for group in ("single", "ensemble"):
        for f in sorted((path / group).glob("*/bon_sampled_results.json")):
            rows = read_json(f)
            if isinstance(rows, list) and rows:
                curves[f"{group}/{f.parent.name}"] = rows
    return BonRun(label, path, read_json(path / "bon_summary.json"), curves)


def load_rm(label: str, path: Path) -> RMRun:
    summary = read_json(path / "rm_summary.json")
    members = {f.parent.name: read_json(f) for f in sorted(path.glob("rm_seed*/rm_eval.json"))}
    if not members:  # older runs: the member results live in the summary only
        members = {f"rm_seed{k}": v for k, v in (summary.get("members") or {}).items()}
    return RMRun(label, path, summary, members)


def load_orpo(label: str, path: Path) -> OrpoRun:
    cfg = read_yaml(path / "config.yaml") if (path / "config.yaml").exists() else {}
    return OrpoRun(label, path, read_json(path / "orpo_results.json"), cfg)


def load_sweep(label: str, path: Path) -> SweepRun:
    return SweepRun(label, path, read_json(path / "sweep_summary.json"))


LOADERS = {"ppo": load_ppo, "bon": load_bon, "rm": load_rm, "orpo": load_orpo,
           "sweep": load_sweep}  # fmt: skip


def discover(roots: Sequence[str | Path]) -> Runs:
    """Every readable run under `roots`; unreadable ones and missing roots become notes."""
    roots = [Path(r) for r in roots]
    runs = Runs()
    for r in roots:
        if not r.is_dir():
            runs.notes.append(f"{r}: not a directory, skipped")
    found = find_run_dirs(roots)
    by_kind: dict[str, list[Path]] = {}
    for kind, path in found:
        by_kind.setdefault(kind, []).append(path)
    for kind, paths in by_kind.items():
        names = labels_for(paths)
        for path in paths:
            try:
                run = LOADERS[kind](names[path], path)
            except Unreadable as exc:
                runs.notes.append(f"{kind} run {path} skipped: {exc}")
                continue
            getattr(runs, "sweeps" if kind == "sweep" else kind).append(run)
    runs.ppo.sort(key=lambda r: method_order(r.label))
    return runs
