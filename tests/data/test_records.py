"""read_records / write_jsonl_atomic: formats, numbering and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest

from goodhartlab.data.records import Record, read_records, write_jsonl_atomic
from goodhartlab.errors import InputError

ROWS = [{"prompt": "p1", "completion": "c1"}, {"prompt": "p2", "completion": "c2"}]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_line_numbers_skip_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"a": 1}\n\n   \n{"a": 2}\n')
    recs = read_records(path)
    assert [(r.data["a"], r.line) for r in recs] == [(1, 1), (2, 4)]
    assert recs[1].location() == f"{path}:4"


def test_jsonl_malformed_line_names_line_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"a": 1}\n{"a": 2,}\n')
    with pytest.raises(InputError) as err:
        read_records(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:2: malformed JSON: ")
    assert "double quotes" in msg and "\n" not in msg


def test_jsonl_non_object_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match=r":2: expected a JSON object, got list$"):
        read_records(path)


def test_jsonl_unicode_line_separator_inside_string(tmp_path: Path) -> None:
    # U+2028 is legal inside a JSON string; it must not split the line
    path = _write(tmp_path / "d.jsonl", '{"a": "x\u2028y"}\n{"a": "z"}\n')
    assert [r.line for r in read_records(path)] == [1, 2]


def test_skip_invalid_counts(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"a": 1}\nnope\n"str"\n{"a": 4}\n')
    recs, skipped = read_records(path, skip_invalid=True)
    assert [r.line for r in recs] == [1, 4] and skipped == 2


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match=f"^{re.escape(str(missing))}: file not found$"):
        read_records(missing)
    empty = _write(tmp_path / "e.jsonl", "\n\n")
    with pytest.raises(InputError, match=f"^{re.escape(str(empty))}: no rows$"):
        read_records(empty)
    bad_only = _write(tmp_path / "b.jsonl", "oops\n")
    with pytest.raises(InputError, match=r"no rows \(1 invalid rows skipped\)"):
        read_records(bad_only, skip_invalid=True)


def test_unknown_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.txt", "x")
    with pytest.raises(InputError, match=r"unknown data format '\.txt'"):
        read_records(path)


def test_json_list_row_indices(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.json", json.dumps([{"a": 1}, {"a": 2}]))
    recs = read_records(path)
    assert [(r.line, r.by_row) for r in recs] == [(0, True), (1, True)]
    assert str(recs[1].error("bad", "a")) == f"{path} row 1: field 'a': bad"
    not_list = _write(tmp_path / "o.json", '  {"a": 1}\n{"a": 2}\n')  # JSON Lines in .json
    assert [r.line for r in read_records(not_list)] == [1, 2]
    with pytest.raises(InputError, match=r"row 1: expected a JSON object, got number"):
        read_records(_write(tmp_path / "n.json", "[{}, 3]"))


def test_csv_lines_count_header_and_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "completion"])
        w.writerow(["p1", "two\nlines"])
        w.writerow(["p2", "c2"])
    recs = read_records(path)
    assert [(r.line, r.data["completion"]) for r in recs] == [(2, "two\nlines"), (4, "c2")]
    assert all(r.all_strings for r in recs)
    _write(path, "a,b\n1,2\n3\n")
    with pytest.raises(InputError, match=r"d.csv:3: expected 2 columns \(header\), got 1$"):
        read_records(path)


def test_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    recs = read_records(path)
    assert [r.data for r in recs] == ROWS and [r.line for r in recs] == [0, 1]
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_records(_write(tmp_path / "bad.parquet", "not parquet"))


def test_datasets_dir_round_trip(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    recs = read_records(tmp_path / "ds")
    assert [r.data for r in recs] == ROWS and recs[0].by_row
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS)}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match=r"holds splits \['train', 'test'\]"):
        read_records(tmp_path / "dd")
    assert len(read_records(tmp_path / "dd" / "train")) == 2
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="not a datasets save_to_disk directory"):
        read_records(tmp_path / "empty_dir")


def test_write_jsonl_atomic_round_trip_and_failure(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.jsonl"
    write_jsonl_atomic(path, [*ROWS, {"x": float("nan"), "t": "é"}])
    assert [r.data for r in read_records(path)] == [*ROWS, {"x": None, "t": "é"}]
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"row 1: cannot encode as JSON"):
        write_jsonl_atomic(path, [{"a": 1}, {"a": object()}])
    assert path.read_bytes() == before  # untouched
    assert os.listdir(path.parent) == ["out.jsonl"]  # no temp file left


def test_record_field_accessors() -> None:
    rec = Record({"t": "x", "n": 3, "s": "", "b": True, "nan": float("nan")}, 7, Path("f.jsonl"))
    assert rec.text("t") == "x" and rec.number("n") == 3.0
    cases = [
        (lambda: rec.text("missing"), "f.jsonl:7: field 'missing': missing column"),
        (lambda: rec.text("n"), "f.jsonl:7: field 'n': expected text, got number"),
        (lambda: rec.text("s"), "f.jsonl:7: field 's': is an empty string"),
        (lambda: rec.number("b"), "f.jsonl:7: field 'b': expected a number, got boolean"),
        (lambda: rec.number("nan"), "f.jsonl:7: field 'nan': is nan (must be a finite number)"),
        (lambda: rec.sequence("t"), "f.jsonl:7: field 't': expected a list, got string"),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == message
    cell = Record({"m": "", "l": "[1, 2]", "n": "2.5"}, 2, Path("f.csv"), all_strings=True)
    assert cell.optional_number("m") is None and cell.optional_number("absent") is None
    assert cell.number("n") == 2.5 and cell.sequence("l") == [1, 2]
