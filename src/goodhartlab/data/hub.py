"""Rows of a Hugging Face dataset: a hub id (`datasets.load_dataset`) or a `save_to_disk` dir.

Why here and not in every loader: any input path of any command (preferences, demonstrations,
prompts, scored generations) may name a dataset instead of a file, so the one place that turns
a path into `Record`s (`records.read_records`) asks this module first.

Spelling: `ID_OR_DIR[?key=value[&key=value]...]` with keys `split`, `subset` (the dataset's
configuration, `load_dataset(id, subset)`) and `revision`; `,` also separates keys, which
needs no shell quoting. Examples: `Anthropic/hh-rlhf?split=test`,
`tatsu-lab/alpaca_farm?subset=alpaca_human_preference,split=preference`, `my_saved_dir?split=eval`.
A hub split may be sliced as `datasets` allows (`split=train[:46000]`). Without `split`, a
dataset with one split uses it and one with several is an error listing them.

Offline (`HF_HUB_OFFLINE=1` or `HF_DATASETS_OFFLINE=1`), `load_dataset` reads its local cache
(`$HF_DATASETS_CACHE`, default `$HF_HOME/datasets`); a dataset that is not there is one line
saying so, not a stack of retries and tracebacks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.errors import InputError, input_error

KEYS = ("split", "subset", "revision")
# `name` or `owner/name` as the hub allows them; a path with a data-file suffix is a file
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset named by an input path: hub id or save_to_disk dir, and the keys given."""

    name: str
    split: str | None = None
    subset: str | None = None
    revision: str | None = None

    @property
    def label(self) -> str:
        """How rows are located in messages: `name[subset][split]` (`name` alone if neither)."""
        return self.name + "".join(f"[{v}]" for v in (self.subset, self.split) if v)


def parse_spec(text: str) -> DatasetSpec | None:
    """The dataset an input path names, or None when it is a plain file or directory path.

    An existing path without `?` is a file (or a save_to_disk dir, read by `records`); a
    path with `?` carries keys; a missing path that looks like a hub id is a hub dataset.
    """
    if "?" not in text:
        if Path(text).exists() or not _HUB_ID.match(text) or text.endswith(_FILE_SUFFIXES):
            return None
        return DatasetSpec(text)
    name, _, query = text.partition("?")
    if Path(name).is_file():
        raise input_error(
            "a data file takes no '?' keys; split, subset and revision select part of a Hugging "
            "Face dataset (a hub id or a save_to_disk directory)",
            text,
        )
    keys: dict[str, str] = {}
    for part in filter(None, re.split(r"[&,]", query)):
        key, eq, value = part.partition("=")
        if key not in KEYS or not eq or not value:
            raise input_error(
                f"bad dataset key {part!r}: expected key=value with key one of {list(KEYS)}",
                text,
            )
        keys[key] = value
    return DatasetSpec(name, **keys)


def load_rows(spec: DatasetSpec) -> list[dict[str, Any]]:
    """Every row of the dataset's chosen split, as plain dicts (one bulk Arrow conversion)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - depends on the environment
        raise input_error("reading a Hugging Face dataset needs `datasets`", spec.name) from None
    if Path(spec.name).is_dir():
        loaded = _from_disk(datasets, spec)
    else:
        loaded = _from_hub(datasets, spec)
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _one_split(loaded, spec)
    return loaded.to_list()


def _from_disk(datasets: Any, spec: DatasetSpec) -> Any:
    if spec.subset or spec.revision:
        raise input_error("a save_to_disk directory takes only the key 'split'", spec.name)
    try:
        ds = datasets.load_from_disk(spec.name)
    except Exception as exc:  # datasets raises FileNotFoundError/ValueError/... by version
        raise input_error(
            f"not a datasets save_to_disk directory: {_short(exc)}", spec.name
        ) from None
    if spec.split is not None and not isinstance(ds, datasets.DatasetDict):
        raise input_error(f"holds one unnamed split; drop '?split={spec.split}'", spec.name)
    return ds


def _from_hub(datasets: Any, spec: DatasetSpec) -> Any:
    try:
        return datasets.load_dataset(
            spec.name, spec.subset, split=spec.split, revision=spec.revision
        )
    except Exception as exc:  # the hub client raises a dozen types (offline, 404, gated, ...)
        raise _hub_error(spec, exc) from None


def _one_split(ds: Any, spec: DatasetSpec) -> Any:
    splits = list(ds.keys())
    if spec.split is not None:
        if spec.split not in splits:
            raise input_error(f"has no split {spec.split!r}; its splits: {splits}", spec.name)
        return ds[spec.split]
    if len(splits) != 1:
        raise input_error(
            f"holds splits {splits}; choose one with '?split=NAME', e.g. {spec.name}?split="
            f"{splits[0]}",
            spec.name,
        )
    return ds[splits[0]]


def offline() -> bool:
    """Whether the hub may not be contacted (the variables `datasets` and the hub client read)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(n, "").strip().lower() in ("1", "true", "yes", "on") for n in names)


def cache_dir() -> str:
    """Where `load_dataset` looks for cached datasets ($HF_DATASETS_CACHE, $HF_HOME/datasets)."""
    try:
        from datasets import config

        return str(config.HF_DATASETS_CACHE)
    except ImportError:  # pragma: no cover - depends on the environment
        return os.environ.get("HF_DATASETS_CACHE", "~/.cache/huggingface/datasets")


def _hub_error(spec: DatasetSpec, exc: BaseException) -> InputError:
    """One line for a dataset that did not load: offline and not cached, or the hub's reason."""
    if offline() and _looks_missing(exc):
        return input_error(
            f"not a local file or directory, and the Hugging Face hub is offline "
            f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) with no cached copy of dataset {spec.name!r}"
            f"{f' subset {spec.subset!r}' if spec.subset else ''} in {cache_dir()}; load it "
            f"once online, or pass a save_to_disk directory",
            spec.name,
        )
    if _looks_missing(exc):
        reason = "not a local file or directory, nor a dataset the Hugging Face hub has"
        return input_error(f"{reason}: {_short(exc)}", spec.label)
    return input_error(f"Hugging Face dataset did not load: {_short(exc)}", spec.label)


def _looks_missing(exc: BaseException) -> bool:
    """Errors `datasets` raises for 'not cached and cannot download' (by name: they vary)."""
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    missing = {"ConnectionError", "DatasetNotFoundError", "FileNotFoundError",
               "LocalEntryNotFoundError", "OfflineModeIsEnabled", "EmptyDatasetError"}  # fmt: skip
    return bool(names & missing)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__
