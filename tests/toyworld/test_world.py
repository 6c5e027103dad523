"""Teacher statistics, determinism, files written, and preference labelling."""

import json
import subprocess
import sys

import numpy as np
import pytest

from goodhartlab.toyworld import ToyWorldSpec, make
from goodhartlab.toyworld.preferences import label_pairs
from goodhartlab.toyworld.teacher import demonstrations, sample_prompts
from goodhartlab.toyworld.world import teacher_stats


def test_correlated_proxies_exist() -> None:
    rng = np.random.default_rng(1)
    prompts = sample_prompts(4000, rng)
    demos = demonstrations(prompts, rng)
    stats = teacher_stats([p.text for p in prompts], demos)
    # Design targets (DESIGN.md §3): r(length, gold) ~ +0.64, r(fillers, gold) ~ +0.36.
    assert 0.5 < stats.corr_length_gold < 0.8
    assert 0.2 < stats.corr_fillers_gold < 0.5
    assert 1.3 < stats.gold_mean < 1.9


def test_make_is_deterministic_and_complete(tmp_path) -> None:
    spec = ToyWorldSpec(n_train_demos=300, n_eval_prompts=50, n_train_pairs=100, n_eval_pairs=20)
    a = make(tmp_path / "a", spec)
    make(tmp_path / "b", spec)
    for name in ("demos_train.jsonl", "prefs_eval.jsonl", "prompts_eval.jsonl"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    rows = [json.loads(x) for x in (tmp_path / "a" / "prefs_train.jsonl").read_text().splitlines()]
    assert len(rows) == 100
    assert set(rows[0]) == {"prompt", "chosen", "rejected", "gold_chosen", "gold_rejected"}
    world = json.loads((tmp_path / "a" / "world.json").read_text())
    assert world["teacher"]["gold_mean"] == pytest.approx(a.gold_mean)
    assert (tmp_path / "a" / "tokenizer" / "tokenizer.json").exists()


def test_label_pairs_noise_and_order() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    prompts = ["list three fruits"] * n
    good, bad = ["apple , pear and plum"] * n, ["apple"] * n  # gold 3 vs 1
    clean = label_pairs(prompts, good, bad, rng, temperature=0.25, flip_prob=0.0)
    assert all(p.chosen == "apple , pear and plum" for p in clean)  # sigmoid(8) ~ 0.9997
    noisy = label_pairs(prompts, good, bad, rng, temperature=0.25, flip_prob=0.25)
    frac_flipped = np.mean([p.chosen == "apple" for p in noisy])
    assert abs(frac_flipped - 0.25) < 0.03
    assert all(p.gold_chosen == 1.0 for p in noisy if p.chosen == "apple")
    with pytest.raises(ValueError, match="flip_prob"):
        label_pairs(prompts[:1], good[:1], bad[:1], rng, flip_prob=1.5)


def test_label_pairs_at_temperature_zero_is_the_noiseless_labeller() -> None:
    """tau = 0 follows core.preference: the better answer always wins (it used to raise)."""
    rng = np.random.default_rng(0)
    pairs = label_pairs(
        ["list three fruits"] * 50, ["apple"] * 50, ["apple , pear and plum"] * 50, rng, 0.0
    )
    assert all(p.chosen == "apple , pear and plum" and not p.flipped for p in pairs)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        label_pairs(["list three fruits"], ["apple"], ["pear"], rng, temperature=-1.0)


def test_importing_the_toy_world_does_not_import_torch() -> None:
    """gold_reward and the prompts are numpy-only; only labelling pairs needs core's torch labeller
    (importing torch costs seconds on the shared machine)."""
    code = "import sys, goodhartlab.toyworld.preferences; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
