"""Benchmark: reward-model scoring of best-of-n answers, ours against a plain batched HF pass.

Run:  python benchmarks/rm_score.py [--answers 20000] [--members 5] [--batch 512] [--repeats 5]

Data: toy-world prompts (--prompts distinct ones, each repeated, as best-of-n samples many answers
per prompt) with the teacher's answers. Models: tiny random-init toy RMs (`toy:rm`, seeds 1..M:
the architecture and tokenizer of the trained toy ensemble, without its minutes of training);
`--trained` scores with the cached toy ensemble instead (trained once if missing). Loading is
not timed; both sides use the same model objects and batch size (--batch, bon's default 512).
Both sides run interleaved (the first side alternates per repeat), in this one process:
  * ours: `score_texts` (one RM) and `score_members` (M members): one batched tokenizer call,
    vectorized padding, length-sorted batches; the ensemble encodes the answers once;
  * plain: per member and per batch of answers in their order, one tokenizer call on the text
    "formatted prompt + answer + eos" with padding=True (right), then the
    AutoModelForSequenceClassification forward: transformers alone, an ensemble tokenizing per
    member.
Prints min and median answers/s per side and their ratio, the largest score difference between
the sides (same ids -> float noise only) and the process peak RSS after each side's warm-up.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from goodhartlab.data.encoding import encode_reward_inputs, format_prompt
from goodhartlab.models.reward import (
    ensemble_members,
    load_reward_model,
    score_members,
    score_texts,
)
from goodhartlab.toyworld.teacher import demonstrations, sample_prompts


def toy_answers(n_prompts: int, n_answers: int, seed: int) -> tuple[list[str], list[str]]:
    """(prompt per answer, answers): n_answers teacher answers spread over n_prompts prompts."""
    rng = np.random.default_rng(seed)
    distinct = sample_prompts(n_prompts, rng)
    prompts = [distinct[i % n_prompts] for i in range(n_answers)]
    return [p.text for p in prompts], demonstrations(prompts, rng)


def load_members(count: int, trained: bool) -> list[tuple[Any, Any]]:
    """(model, tokenizer) per member, in eval mode."""
    if trained:
        from goodhartlab.recipes.toy_inputs import cached_toy_rm_ensemble

        paths = ensemble_members(cached_toy_rm_ensemble())[:count]
        loaded = [load_reward_model(str(p)) for p in paths]
    else:
        loaded = [load_reward_model("toy:rm", seed=s) for s in range(1, count + 1)]
    return [(model.eval(), tok) for model, tok in loaded]


@torch.no_grad()
def plain_scores(
    model: Any, tok: Any, prompts: list[str], answers: list[str], batch: int
) -> np.ndarray:
    """The baseline: batched tokenizer call with padding=True per batch, in order, no sorting."""
    scores = []
    for start in range(0, len(answers), batch):
        texts = [
            f"{format_prompt(tok, p)} {a} {tok.eos_token}"
            for p, a in zip(prompts[start : start + batch], answers[start : start + batch])
        ]
        enc = tok(
            texts,
            padding=True,
            padding_side="right",
            add_special_tokens=False,
            return_tensors="pt",
        )
        scores.append(model(**enc).logits[:, 0].float())
    return torch.cat(scores).double().numpy()


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--prompts", type=int, default=500, help="distinct prompts")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--trained", action="store_true", help="the cached trained toy ensemble")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    prompts, answers = toy_answers(args.prompts, args.answers, args.seed)
    members = load_members(args.members, args.trained)
    model, tok = members[0]
    n, b = len(answers), args.batch

    sides: dict[str, Callable[[], object]] = {
        "ours, one RM": lambda: score_texts(model, tok, prompts, answers, batch_size=b),
        "plain, one RM": lambda: plain_scores(model, tok, prompts, answers, b),
        f"ours, {len(members)} members": lambda: score_members(
            members, prompts, answers, batch_size=b
        ),
        f"plain, {len(members)} members": lambda: [
            plain_scores(m, t, prompts, answers, b) for m, t in members
        ],
    }
    names = list(sides)
    ours_scores = sides[names[2]]()  # warm-up, and the scores compared below
    rss_ours = rss_mb()
    plain = sides[names[3]]()
    rss_plain = rss_mb()
    diff = max(float(np.abs(o - p).max()) for o, p in zip(ours_scores, plain))  # type: ignore[arg-type]
    lengths = encode_reward_inputs(tok, prompts, answers).lengths

    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        for pair in (names[:2], names[2:]):
            for name in pair if r % 2 == 0 else pair[::-1]:
                times[name].append(seconds(sides[name]))

    source = "trained toy ensemble" if args.trained else "random-init toy:rm"
    print(
        f"{n} toy answers over {args.prompts} prompts (tokens per row: mean "
        f"{lengths.mean():.1f}, max {lengths.max()}), {source}, batch {b}, "
        f"{args.threads} thread(s), {args.repeats} interleaved repeats"
    )
    print(f"{'side':<22}{'min s':>9}{'median s':>10}{'answers/s (max)':>17}{'answers/s (med)':>17}")
    rates = {}
    for name in names:
        best, med = min(times[name]), statistics.median(times[name])
        rates[name] = (n / best, n / med)
        print(f"{name:<22}{best:>9.3f}{med:>10.3f}{n / best:>17.0f}{n / med:>17.0f}")
    for label, ours, theirs in (("one RM", names[0], names[1]), ("ensemble", names[2], names[3])):
        fast, typical = (rates[ours][i] / rates[theirs][i] for i in (0, 1))
        print(f"ratio ours / plain, {label}: {fast:.2f}x (min times), {typical:.2f}x (medians)")
    print(f"max |ours - plain| score over all members: {diff:.1e}")
    print(f"peak RSS: {rss_ours:.0f} MB after ours' warm-up, {rss_plain:.0f} MB after plain's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
