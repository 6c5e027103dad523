"""runs.seeding: every derived seed by stream name, with the formulas the recipes always used."""

from __future__ import annotations

import pytest
import torch

from goodhartlab.recipes.ppo_step import iteration_generator
from goodhartlab.runs.seeding import (
    DISAGREEMENT_VARIANTS,
    HELD_OUT_PROMPTS,
    LENGTH_INTERVENTIONS,
    ORPO_ITERATION_STREAMS,
    STREAMS,
    derive_seed,
    mix,
)


def test_streams_keep_the_formulas_published_numbers_were_made_with() -> None:
    assert derive_seed(3, "sft/epoch_order", 2) == 3 * 7919 + 2
    assert derive_seed(3, "train_rm/toy_labels") == 20
    assert [derive_seed(3, "train_rm/toy_generation", s == "eval") for s in ("train", "eval")] == [
        3,
        4,
    ]
    assert derive_seed(3, "evaluate_rm/toy_labels") == 32
    assert derive_seed(3, "evaluate_rm/toy_generation") == 5
    assert derive_seed(3, "bon/toy_prompts") == 1003
    assert derive_seed(3, "ppo/eval_generation") == 102
    # the values of the ORPO recipe's former `_seed(*parts)`, computed at commit 8a5c316
    assert derive_seed(0, "orpo/init") == 3428012235710287924
    assert derive_seed(3, "orpo/iteration", 5, "discriminator") == 9075428614631867932
    assert derive_seed(0, "orpo/eval") == 3473735985300802231
    assert derive_seed(2, "orpo/base_init") == 1956225790653738029
    assert derive_seed(2, "orpo/bc_order") == 728784975387623671


def test_orpo_iteration_streams_keep_the_former_stream_numbers() -> None:
    # `_seed(2, 6, k)` at commit 8a5c316 for k = 0..4 (sample, base sample, discriminator, base
    # resets, ppo): reordering ORPO_ITERATION_STREAMS would silently swap the random streams
    old = [9094299422896921760, 4340985618092674507, 8999880898645682194, 4246567093841434941,
           8905462374394442628]  # fmt: skip
    new = [derive_seed(2, "orpo/iteration", 6, k) for k in ORPO_ITERATION_STREAMS]
    assert new == old
    assert ORPO_ITERATION_STREAMS == ("sample", "base_sample", "discriminator", "base_reset", "ppo")


def test_fixed_seeds_keep_their_values() -> None:
    # the held-out eval prompts (ppo_eval's former EVAL_PROMPT_SEED), train-rm's length
    # interventions (the length paper's seed) and evaluate-rm's disagreement variants
    assert (HELD_OUT_PROMPTS, LENGTH_INTERVENTIONS, DISAGREEMENT_VARIANTS) == (424242, 100, 0)


def test_ppo_iteration_stream_is_what_ppo_step_draws() -> None:
    gen = iteration_generator(4, 7, torch.device("cpu"))
    assert gen.initial_seed() == derive_seed(4, "ppo/iteration", 7)


def test_unknown_stream_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown seed stream 'sft/typo'.*sft/epoch_order"):
        derive_seed(0, "sft/typo")


def test_mix_separates_streams_that_offsets_would_collide() -> None:
    seeds = {mix(base, it, k) for base in range(20) for it in range(20) for k in range(5)}
    assert len(seeds) == 20 * 20 * 5
    assert all(0 <= s < 2**63 for s in seeds)
    assert "ppo/iteration" in STREAMS
