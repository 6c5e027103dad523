"""Input paths that name Hugging Face datasets: hub ids (read offline from the local cache) and
save_to_disk directories, with `?split=`/`subset=` keys; one-line errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from goodhartlab.data.hub import DatasetSpec, parse_spec
from goodhartlab.data.records import read_records
from goodhartlab.errors import InputError

datasets = pytest.importorskip("datasets")

TRAIN = [{"prompt": "list one fruits", "chosen": "apple", "rejected": "iron"}] * 3
TEST = [{"prompt": "list one metals", "chosen": "gold", "rejected": "oak"}] * 2


@pytest.fixture
def hub_cache(hf_offline_cache) -> Path:
    """A private, offline HF datasets cache holding `testorg/tiny-prefs` (train, test)."""
    return hf_offline_cache("testorg/tiny-prefs", {"train": TRAIN, "test": TEST})


def test_spec_parsing() -> None:
    assert parse_spec("Anthropic/hh-rlhf") == DatasetSpec("Anthropic/hh-rlhf")
    spec = parse_spec("tatsu-lab/alpaca_farm?subset=alpaca_human_preference,split=preference")
    assert spec == DatasetSpec("tatsu-lab/alpaca_farm", "preference", "alpaca_human_preference")
    assert spec.label == "tatsu-lab/alpaca_farm[alpaca_human_preference][preference]"
    assert parse_spec("d?split=train[:10]&revision=main") == DatasetSpec(
        "d", "train[:10]", None, "main"
    )
    for plain in ("prefs.jsonl", "missing/dir/prefs.csv", "/abs/path", "a/b/c"):
        assert parse_spec(plain) is None  # files: 'file not found' if missing, as before
    with pytest.raises(InputError, match=r"bad dataset key 'splt=x': expected key=value"):
        parse_spec("d?splt=x")


def test_hub_id_loads_offline_from_the_cache(hub_cache) -> None:
    recs = read_records("testorg/tiny-prefs?split=test")
    assert [r.data for r in recs] == TEST
    assert recs[1].location() == "testorg/tiny-prefs[test] row 1"
    with pytest.raises(InputError, match=r"holds splits \['train', 'test'\]; choose one"):
        read_records("testorg/tiny-prefs")
    assert len(read_records("testorg/tiny-prefs?split=train[:2]")) == 2


def test_uncached_id_offline_is_one_line(hub_cache) -> None:
    with pytest.raises(InputError) as err:
        read_records("testorg/not-downloaded?split=train")
    message = str(err.value)
    assert "\n" not in message and message.startswith("testorg/not-downloaded: ")
    assert (
        "hub is offline" in message
        and "no cached copy of dataset 'testorg/not-downloaded'" in message
    )
    assert str(hub_cache) in message


def test_save_to_disk_dir_with_split_key(tmp_path) -> None:
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(TRAIN), "test": datasets.Dataset.from_list(TEST)}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    recs = read_records(f"{tmp_path / 'dd'}?split=test")
    assert [r.data for r in recs] == TEST and recs[0].location() == f"{tmp_path / 'dd'}[test] row 0"
    with pytest.raises(InputError, match=r"has no split 'dev'; its splits: \['train', 'test'\]"):
        read_records(f"{tmp_path / 'dd'}?split=dev")
    with pytest.raises(InputError, match="takes only the key 'split'"):
        read_records(f"{tmp_path / 'dd'}?subset=x")


def test_hub_errors_other_than_offline_keep_their_reason(hub_cache) -> None:
    with pytest.raises(InputError) as err:
        read_records("testorg/tiny-prefs?split=validation")
    message = str(err.value)
    assert message.startswith("testorg/tiny-prefs[validation]: Hugging Face dataset did not load: ")
    assert "validation" in message.split("load: ", 1)[1] and "\n" not in message


def test_keys_on_a_data_file_are_refused_as_such(tmp_path) -> None:
    """`prefs.jsonl?split=train` names a file that exists: the error says keys are for datasets,
    not that it is "not a local file" and the hub has no copy of it."""
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(InputError) as err:
        read_records(f"{path}?split=train")
    assert str(err.value) == (
        f"{path}?split=train: a data file takes no '?' keys; split, subset and revision select "
        "part of a Hugging Face dataset (a hub id or a save_to_disk directory)"
    )
