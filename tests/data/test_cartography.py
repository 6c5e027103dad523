"""Cartography: confidence/variability against hand values, save/load, truncation (spec §B.3.3)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from goodhartlab.data.cartography import (
    SEED_CARTOGRAPHY,
    CartographyLog,
    CartographyStats,
    confidence_keep_indices,
    load_stats,
    save_stats,
    truncate_by_confidence,
)
from goodhartlab.data.formats import Preference
from goodhartlab.errors import InputError


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def three_epoch_log() -> CartographyLog:
    """uid 0 margins [0, 2, -2]; uid 1 margins [1, 1, 4] (epochs logged out of order)."""
    log = CartographyLog()
    log.record(0, [1, 0], [2.0, 1.0], [1.0, 1.0])
    log.record(2, torch.tensor([0, 1]), torch.tensor([0.0, 4.0]), torch.tensor([2.0, 0.0]))
    log.record(1, np.array([1, 0]), np.array([1.5, 3.0]), np.array([0.5, 1.0]))
    return log


def test_probability_confidence_and_variability() -> None:
    stats = three_epoch_log().stats()
    assert stats.uids.tolist() == [0, 1] and stats.n_epochs.tolist() == [3, 3]
    for k, margins in enumerate(([0.0, 2.0, -2.0], [1.0, 1.0, 4.0])):
        probs = [sigmoid(m) for m in margins]
        mean = sum(probs) / 3
        std = math.sqrt(sum((p - mean) ** 2 for p in probs) / 3)
        assert math.isclose(stats.confidence[k], mean, rel_tol=1e-12)
        assert math.isclose(stats.variability[k], std, rel_tol=1e-12)
    assert math.isclose(stats.confidence[0], 0.5, rel_tol=1e-12)  # symmetric margins


def test_seed_mode_raw_margin_drops_first_epoch_sample_std() -> None:
    stats = three_epoch_log().stats(**SEED_CARTOGRAPHY)
    # uid 0: epochs 1..2 margins [2, -2] -> mean 0, stdev sqrt(8); uid 1: [1, 4] -> 2.5, sqrt(4.5)
    np.testing.assert_allclose(stats.confidence, [0.0, 2.5])
    np.testing.assert_allclose(stats.variability, [math.sqrt(8), math.sqrt(4.5)])
    assert stats.n_epochs.tolist() == [2, 2]


def test_log_errors() -> None:
    log = three_epoch_log()
    log.record(2, [0], [1.0], [0.0])
    with pytest.raises(InputError, match="uid 0 logged twice in epoch 2"):
        log.stats()
    short = CartographyLog()
    short.record(0, [5], [1.0], [0.0])
    with pytest.raises(InputError, match="uid 5 has 0 usable epochs; need 1"):
        short.stats(drop_first=True)
    with pytest.raises(ValueError, match="non-finite"):
        short.record(1, [5], [float("nan")], [0.0])
    with pytest.raises(InputError, match="empty"):
        CartographyLog().stats()


def test_log_and_stats_round_trip(tmp_path: Path) -> None:
    log = three_epoch_log()
    log.save(tmp_path / "log.jsonl")
    loaded = CartographyLog.load(tmp_path / "log.jsonl")
    assert len(loaded) == len(log) == 6
    a, b = log.stats(), loaded.stats()
    np.testing.assert_array_equal(a.confidence, b.confidence)
    save_stats(tmp_path / "stats.jsonl", a)
    c = load_stats(tmp_path / "stats.jsonl")
    assert c.uids.tolist() == [0, 1] and c.n_epochs.tolist() == [3, 3]
    np.testing.assert_array_equal(c.variability, a.variability)


def test_load_errors_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    path.write_text(
        '{"uid": 0, "confidence": 0.1, "variability": 0.0, "n_epochs": 2}\n'
        '{"uid": 1.5, "confidence": 0.1, "variability": 0.0, "n_epochs": 2}\n'
    )
    with pytest.raises(InputError) as err:
        load_stats(path)
    assert str(err.value) == f"{path}:2: field 'uid': expected an integer, got 1.5"
    log = tmp_path / "log.jsonl"
    log.write_text('{"uid": 0, "epoch": 0, "rew_chosen": "x", "rew_rejected": 0}\n')
    with pytest.raises(InputError) as err:
        CartographyLog.load(log)
    assert str(err.value) == f"{log}:1: field 'rew_chosen': expected a number, got string"


def make_stats(confidence: list[float]) -> CartographyStats:
    n = len(confidence)
    return CartographyStats(
        uids=np.arange(n),
        confidence=np.array(confidence),
        variability=np.zeros(n),
        n_epochs=np.full(n, 3),
    )


def test_truncate_by_confidence() -> None:
    prefs = [Preference(f"q{i}", "a", "b") for i in range(5)]
    stats = make_stats([0.1, 0.5, 0.9, 0.3, 0.8])
    both = truncate_by_confidence(prefs, stats, low=0.2, high=0.8)
    assert [p.prompt for p in both] == ["q1", "q3"]  # strict bounds: 0.8 is dropped
    assert confidence_keep_indices(stats, 5, high=0.8).tolist() == [0, 1, 3]
    assert confidence_keep_indices(stats, 5).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match=r"1 rows without stats \(first: \[5\]\)"):
        truncate_by_confidence([*prefs, prefs[0]], stats, high=0.5)
    with pytest.raises(InputError, match=r"1 unknown uids \(first: \[4\]\)"):
        truncate_by_confidence(prefs[:4], stats, high=0.5)


def test_end_to_end_from_log_to_truncation() -> None:
    prefs = [Preference(f"q{i}", "a", "b") for i in range(3)]
    log = CartographyLog()
    for epoch in range(3):
        log.record(epoch, [0, 1, 2], [5.0, 0.0, -1.0], [0.0, 0.0, 0.0])
    kept = truncate_by_confidence(prefs, log.stats(), high=0.9)  # sigmoid(5) = 0.993 > 0.9
    assert [p.prompt for p in kept] == ["q1", "q2"]
