"""`make results` stays runnable: every step's command is one the CLI or its script accepts.

Why: the step list names presets, overrides and script flags; one renamed knob would only show
hours into a `make results` run. Each `goodhart` step is checked with `goodhart validate`, each
script step against its own `--help`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from goodhartlab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def load_results():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its sibling goodhart_runs, as when run
    spec = importlib.util.spec_from_file_location("results", ROOT / "benchmarks" / "results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["results"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


results = load_results()


@pytest.mark.parametrize("step", results.STEPS, ids=lambda s: s.name)
def test_each_step_is_a_valid_command(step, tmp_path, capsys) -> None:
    argv = results.command(step, tmp_path)
    assert (ROOT / step.page).is_file(), f"{step.name}: no page {step.page}"
    if argv[: len(results.GOODHART)] == results.GOODHART:
        command, *rest = argv[len(results.GOODHART) :]
        out = rest.index("--out")
        del rest[out : out + 2]
        assert main(["validate", command, *rest]) == 0, capsys.readouterr().err
        return
    script = ROOT / argv[1]
    assert script.is_file(), f"{step.name}: no script {argv[1]}"
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0, usage.stderr
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert flag in usage.stdout, f"{step.name}: {argv[1]} has no {flag}"


def test_list_prints_every_step_and_runs_nothing(tmp_path, capsys) -> None:
    assert results.main(["--list", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [s.name for s in results.STEPS]
    assert not (tmp_path / "r").exists()


def test_a_finished_step_is_skipped_and_a_failed_one_stops_the_run(tmp_path, monkeypatch) -> None:
    ran = []
    fake = [
        results.Step("a", "docs/demo.md", ("true",)),
        results.Step("b", "docs/demo.md", ("false",)),
    ]
    monkeypatch.setattr(results, "STEPS", fake)
    (tmp_path / "a.done").write_text("1 s\n")
    real_run = subprocess.run

    def record(argv, **kw):
        ran.append(argv)
        return real_run(argv, **kw)

    monkeypatch.setattr(results.subprocess, "run", record)
    with pytest.raises(SystemExit, match=r"results: step b failed \(exit 1\); see .*b\.log"):
        results.main(["--out", str(tmp_path)])
    assert ran == [["false"]]
    assert not (tmp_path / "b.done").exists()
