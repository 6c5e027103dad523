"""`ToyWorldSpec`: the sizes and label noise of the toy world, as configuration.

It lives in the config layer (not in `toyworld/`) so every command's schema can embed it without
the config layer importing the toy world's code: imports point down, config is the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from goodhartlab.config.ranges import POSITIVE, UNIT


@dataclass
class ToyWorldSpec:
    """Sizes and noise of the generated toy data."""

    seed: int = 0
    n_train_demos: int = 20000
    n_eval_prompts: int = 512
    n_train_pairs: int = 16000
    n_eval_pairs: int = 2000
    # Sizes have no range here: tests/recipes/test_sweep.py relies on a negative size failing
    # at run time (as a failed job), not in the config.
    label_temperature: float = field(default=1.0, metadata={"range": POSITIVE})
    label_flip_prob: float = field(default=0.25, metadata={"range": UNIT})
