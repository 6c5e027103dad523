"""Every seed a run derives from its base seed, by stream name, in one table.

Why: a run draws from several independent random streams (toy prompts, generation, label noise,
batch shuffles, each ORPO iteration's rollouts, ...). Ad-hoc offsets written at the call site
(`seed + 99`) are hard to audit and collide silently (seed 0's `+99` stream is seed 99's base
stream). Here every stream has a name and its formula. The formulas are the ones the recipes have
always used, so published numbers stay identical; a new stream should use `mix`, a splitmix-style
hash that is distinct for every tuple of parts and needs no RNG state (resume can recompute it).

    derive_seed(cfg.seed, "bon/toy_prompts")         # one seed per run
    derive_seed(cfg.seed, "sft/epoch_order", epoch)  # one per run and epoch
"""

from __future__ import annotations

from collections.abc import Callable

# Fixed seeds, the same whatever the run's seed:
HELD_OUT_PROMPTS = 424242  # one held-out prompt set, so runs compare
LENGTH_INTERVENTIONS = 100  # train-rm's data interventions: the length paper's seed
DISAGREEMENT_VARIANTS = 0  # evaluate-rm's perturbed answers for the ensemble disagreement figures


def mix(*parts: int) -> int:
    """A 63-bit seed that differs for every tuple of integer parts (splitmix64 constants)."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (part + 0x632BE59BD9B4E019)) * 0xBF58476D1CE4E5B9 % (1 << 63)
    return value


ORPO_EVAL_ITERATION = 1 << 40  # past any iteration count: the final evaluation's own stream
# ORPO's streams within an iteration (the last part of `mix(seed, iteration, k)`)
ORPO_ITERATION_STREAMS = ("sample", "base_sample", "discriminator", "base_reset", "ppo")

STREAMS: dict[str, Callable[..., int]] = {
    # sft: one shuffle of the demonstrations per epoch
    "sft/epoch_order": lambda seed, epoch: seed * 7919 + epoch,
    # train-rm on the toy world: label noise, and the generation of the pairs to label
    "train_rm/toy_labels": lambda seed: seed + 17,
    "train_rm/toy_generation": lambda seed, is_eval: seed + int(is_eval),
    # train-rm, several processes: InfoRM bottleneck noise of ranks after 0, per step
    "train_rm/rank_noise": lambda seed, step, rank: mix(seed, step, rank, 13),
    # evaluate-rm on the toy world: its own held-out pairs
    "evaluate_rm/toy_labels": lambda seed: seed + 29,
    "evaluate_rm/toy_generation": lambda seed: seed + 2,
    # bon: toy prompts apart from the SFT/RM training prompts
    "bon/toy_prompts": lambda seed: seed + 1000,
    # bon with generate.backend=vllm: one seed per prompt's request (one shared seed would give
    # every prompt the same random stream, so their N answers would be drawn with the same noise)
    "bon/vllm_prompt": lambda seed, row: mix(seed, 0, row),
    # ppo: sampling of each iteration, and of the held-out evaluation
    "ppo/iteration": lambda seed, iteration: seed * 1_000_003 + iteration,
    "ppo/eval_generation": lambda seed: seed + 99,
    # ppo with generation.backend=vllm: one seed per rollout prompt (per-request vLLM seeds)
    "ppo/vllm_rollout": lambda seed, iteration, row: mix(seed, iteration, row),
    # ppo with several processes: each rank's sampling in each iteration
    "ppo/rollout_rank": lambda seed, iteration, rank: mix(seed, iteration, rank, 11),
    # orpo: weights init, the default base policy's init, BC shuffles, the final evaluation
    "orpo/init": lambda seed: mix(seed, 0, 0),
    "orpo/base_init": lambda seed: mix(seed, 0, 1),
    "orpo/bc_order": lambda seed: mix(seed, 0, 7),
    "orpo/eval": lambda seed: mix(seed, ORPO_EVAL_ITERATION, 9),
    # orpo: iteration i's streams, one per name in ORPO_ITERATION_STREAMS
    "orpo/iteration": lambda seed, iteration, stream: mix(
        seed, iteration, ORPO_ITERATION_STREAMS.index(stream)
    ),
}


def derive_seed(seed: int, stream: str, *parts: int | str | bool) -> int:
    """The seed of stream `stream` (a key of STREAMS) of a run with base seed `seed`."""
    if stream not in STREAMS:
        raise KeyError(f"unknown seed stream {stream!r}; known: {', '.join(sorted(STREAMS))}")
    return STREAMS[stream](seed, *parts)
