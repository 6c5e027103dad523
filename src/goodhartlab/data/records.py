"""Reading tabular rows from JSONL, JSON, CSV/TSV, Parquet or a `datasets` directory, keeping
where each row came from.

Why keep the origin: a user's 50,000-row preference file with one bad line must fail with
`prefs.jsonl:4812: field 'chosen': ...`, not with a KeyError deep inside training. Every
`Record` therefore carries its file and its line (text formats) or row index (binary formats),
and `Record.error` builds the one-line `InputError` from them.

Formats, chosen by the path:
- a Hugging Face dataset: a hub id or a `save_to_disk` directory, optionally with keys
  (`Anthropic/hh-rlhf?split=test`, `DIR?split=eval`; see `data.hub`). A DatasetDict with one
  split is read whole; with several, `?split=` picks one. Rows are numbered by 0-based row
  index and located as `ID[subset][split] row i`.
- `.jsonl` / `.ndjson`: one JSON object per line; blank lines are skipped; numbered by file line.
- `.json`: a JSON list of objects (numbered by 0-based row index); a `.json` file whose first
  character is `{` is read as JSON Lines, the layout `datasets.Dataset.to_json` writes.
- `.csv` / `.tsv`: a header line, then rows numbered by the file line they start on (header = 1).
  Every value is text; `Record.all_strings` is True so loaders parse numbers and lists.
- `.parquet` / `.pq`: via pyarrow, numbered by 0-based row index.

Invalid rows raise `InputError` unless `skip_invalid=True`, in which case they are dropped and
counted (the functions then return `(records, n_skipped)`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from goodhartlab.data.hub import DatasetSpec, load_rows, parse_spec
from goodhartlab.errors import InputError, input_error
from goodhartlab.runs.atomic import atomic_write_text, json_safe

_JSONL = (".jsonl", ".ndjson")
_CSV = {".csv": ",", ".tsv": "\t"}
_PARQUET = (".parquet", ".pq")


@dataclass(frozen=True)
class Record:
    """One row of an input file and where it came from.

    `line` is the 1-based file line for JSONL/CSV, or the 0-based row index for JSON lists,
    Parquet and `datasets` directories (`by_row` tells which). `all_strings` is True when the
    format stores every value as text (CSV), so loaders may parse numbers and lists from it.
    """

    data: dict[str, Any]
    line: int
    path: Path
    by_row: bool = False
    all_strings: bool = False

    def location(self) -> str:
        """`file:line` or `file row i`, as used in error messages."""
        return f"{self.path} row {self.line}" if self.by_row else f"{self.path}:{self.line}"

    def error(self, message: str, field: str | None = None) -> InputError:
        """A one-line InputError naming this record's file, line (or row) and `field`."""
        if self.by_row:
            return input_error(message, f"{self.path} row {self.line}", None, field)
        return input_error(message, self.path, self.line, field)

    def require(self, key: str) -> Any:
        """The value of column `key`; error if the column is missing or the value is null."""
        if key not in self.data:
            raise self.error("missing column", key)
        value = self.data[key]
        if value is None:
            raise self.error("is null", key)
        return value

    def text(self, key: str, allow_empty: bool = False) -> str:
        """Column `key` as a string; error on a non-string (e.g. a number) or an empty string."""
        return self.as_text(self.require(key), key, allow_empty)

    def as_text(self, value: Any, field: str, allow_empty: bool = False) -> str:
        """`value` (of `field`, e.g. "answers[2]") as a string, or a row error."""
        if not isinstance(value, str):
            raise self.error(f"expected text, got {_type_name(value)}", field)
        if not value and not allow_empty:
            raise self.error("is an empty string", field)
        return value

    def number(self, key: str) -> float:
        """Column `key` as a finite float; NaN/inf, text or a boolean is an error."""
        return self.as_number(self.require(key), key)

    def as_number(self, value: Any, field: str) -> float:
        """`value` (of `field`, e.g. "gold_scores[3]") as a finite float, or a row error."""
        if isinstance(value, str) and self.all_strings:
            try:
                value = float(value)
            except ValueError:
                raise self.error(f"expected a number, got {value!r}", field) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number, got {_type_name(value)}", field)
        value = float(value)
        if not math.isfinite(value):
            raise self.error(f"is {value} (must be a finite number)", field)
        return value

    def optional_number(self, key: str) -> float | None:
        """Column `key` as a float, or None when the column is absent, null or an empty CSV cell."""
        value = self.data.get(key)
        if value is None or (value == "" and self.all_strings):
            return None
        return self.as_number(value, key)

    def sequence(self, key: str) -> list[Any]:
        """Column `key` as a list (a CSV cell may hold a JSON list); error otherwise or if empty."""
        value = self.require(key)
        if isinstance(value, str) and self.all_strings:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise self.error("expected a JSON list in this CSV cell", key) from None
        if hasattr(value, "tolist") and not isinstance(value, str):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise self.error(f"expected a list, got {_type_name(value)}", key)
        if not value:
            raise self.error("is an empty list", key)
        return list(value)


@overload
def read_records(path: str | Path, *, skip_invalid: Literal[False] = ...) -> list[Record]: ...
@overload
def read_records(path: str | Path, *, skip_invalid: Literal[True]) -> tuple[list[Record], int]: ...
def read_records(
    path: str | Path, *, skip_invalid: bool = False
) -> list[Record] | tuple[list[Record], int]:
    """All rows of `path` as Records (see the module docstring for formats and numbering).

    Malformed rows (bad JSON, a non-object line) raise InputError, or with `skip_invalid=True`
    are dropped and the result is `(records, n_skipped)`. A missing file, an unknown suffix and
    a file with no rows always raise.
    """
    spec = parse_spec(str(path))
    if spec is not None:
        records, skipped = _dataset_records(spec), 0
    else:
        path = Path(path)
        if not path.exists():
            raise input_error("file not found", path)
        records, skipped = _dispatch(path, skip_invalid)
    if not records:
        reason = f"no rows ({skipped} invalid rows skipped)" if skipped else "no rows"
        raise input_error(reason, path)
    return (records, skipped) if skip_invalid else records


def _dispatch(path: Path, skip_invalid: bool) -> tuple[list[Record], int]:
    if path.is_dir():
        return _dataset_records(DatasetSpec(str(path))), 0
    suffix = path.suffix.lower()
    if suffix in _JSONL:
        return _read_jsonl(path, skip_invalid)
    if suffix == ".json":
        if _first_char(path) == "{":
            return _read_jsonl(path, skip_invalid)
        return _read_json_list(path, skip_invalid)
    if suffix in _CSV:
        return _read_csv(path, _CSV[suffix]), 0
    if suffix in _PARQUET:
        return _read_parquet(path), 0
    raise input_error(
        f"unknown data format '{suffix}'; expected .jsonl, .json, .csv, .tsv, .parquet "
        "or a datasets save_to_disk directory",
        path,
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise input_error(f"not valid UTF-8 (byte {exc.start})", path) from None


def _first_char(path: Path) -> str:
    stripped = _text(path).lstrip("\ufeff \t\r\n")
    return stripped[:1]


def _read_jsonl(path: Path, skip_invalid: bool) -> tuple[list[Record], int]:
    records: list[Record] = []
    skipped = 0
    # split on "\n" only: str.splitlines would also split on U+2028, valid inside JSON strings
    for lineno, raw in enumerate(_text(path).lstrip("\ufeff").split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            records.append(Record(_parse_object(raw), lineno, path))
        except ValueError as exc:
            if not skip_invalid:
                raise input_error(str(exc), path, lineno) from None
            skipped += 1
    return records, skipped


def _parse_object(raw: str) -> dict[str, Any]:
    """Parse one JSON object; ValueError with a short reason otherwise."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_type_name(value)}")
    return value


def _read_json_list(path: Path, skip_invalid: bool) -> tuple[list[Record], int]:
    try:
        value = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise input_error(
            f"malformed JSON: {exc.msg} (column {exc.colno})", path, exc.lineno
        ) from None
    if not isinstance(value, list):
        raise input_error(f"expected a JSON list of objects, got {_type_name(value)}", path)
    records: list[Record] = []
    skipped = 0
    for i, item in enumerate(value):
        if isinstance(item, dict):
            records.append(Record(item, i, path, by_row=True))
        elif skip_invalid:
            skipped += 1
        else:
            raise input_error(f"expected a JSON object, got {_type_name(item)}", f"{path} row {i}")
    return records, skipped


def _read_csv(path: Path, delimiter: str) -> list[Record]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return []
            records = []
            start = reader.line_num + 1
            for row in reader:
                if row:
                    records.append(_csv_record(path, header, row, start))
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise input_error(f"not valid UTF-8 (byte {exc.start})", path) from None
        except csv.Error as exc:
            raise input_error(f"malformed CSV: {exc}", path, reader.line_num) from None
    return records


def _csv_record(path: Path, header: list[str], row: list[str], line: int) -> Record:
    if len(row) != len(header):
        raise input_error(f"expected {len(header)} columns (header), got {len(row)}", path, line)
    return Record(dict(zip(header, row)), line, path, all_strings=True)


def _read_parquet(path: Path) -> list[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise input_error(
            "reading Parquet needs pyarrow (pip install goodhartlab[data])", path
        ) from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise input_error(f"not a readable Parquet file: {_short(exc)}", path) from None
    return [Record(row, i, path, by_row=True) for i, row in enumerate(rows)]


def _dataset_records(spec: DatasetSpec) -> list[Record]:
    """Rows of a hub dataset or save_to_disk dir (`data.hub`), located by the spec's label."""
    where = Path(spec.label)
    return [Record(row, i, where, by_row=True) for i, row in enumerate(load_rows(spec))]


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write `rows` as JSON Lines atomically (temp file in the same dir + `os.replace`).

    Every row is serialized before anything touches the disk, so a row that cannot be encoded
    leaves no file behind (and an existing file unchanged). Non-finite floats become null.
    """
    lines = []
    for i, row in enumerate(rows):
        try:
            lines.append(json.dumps(json_safe(dict(row)), ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise input_error(f"cannot encode as JSON: {exc}", f"{path} row {i}") from None
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def _type_name(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    names.update({int: "number", float: "number"})
    return names.get(type(value), type(value).__name__)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
