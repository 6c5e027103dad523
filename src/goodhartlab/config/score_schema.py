"""Typed configuration of `goodhart score` (score an existing generation file with RMs and gold).

`goodhart score GENERATIONS --rm RM [--rm RM2] [--gold GOLD]` is the short form of
`generations=... reward_models=[...] gold=...`. Import-light: dataclasses only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from goodhartlab.config.ranges import AT_LEAST_1, NON_NEGATIVE
from goodhartlab.config.schemas import _f


@dataclass
class ScoreConfig:
    generations: str = _f(
        "",
        "generation file or dataset: per row a prompt (or instruction + input) and `answers` "
        "(list) or one `response`/`output`",
    )
    reward_models: list[str] = field(
        default_factory=list,
        metadata={"help": "proxy RMs: dirs, ensemble manifests / train-rm run dirs (every "
                  "member), 'toy:rm' / 'toy:rm-ensemble'; {seed} is filled from seeds"},
    )  # fmt: skip
    seeds: list[int] | None = _f(None, "fill a {seed} placeholder in reward_models paths")
    gold: str | None = _f(None, "gold scorer: 'toy' (the toy gold program) or a gold RM dir")
    objective: Literal["mean", "wco", "uwo"] = _f(
        "mean", "how several members combine into proxy_scores (each is kept in member_scores)"
    )
    uwo_coef: float = _f(0.5, "UWO: mean - uwo_coef * variance across members")
    ddof: int = _f(0, "variance ddof for UWO", range=NON_NEGATIVE)
    prompt_key: str = _f("prompt", "prompt column (else instruction + input)")
    answers_key: str = _f("answers", "answers column (a list; else a single response/output)")
    template: str | None = _f(None, "template the RMs score with (default: chat template)")
    batch_size: int = _f(256, "texts per RM forward pass", range=AT_LEAST_1)
    device: str = _f("auto", "'auto' (CUDA if present), 'cpu', 'cuda:0', ...")
    output: str | None = _f(None, "scored file to write (default: RUN/scored.jsonl)")
