"""`ToyWorldSpec`: the sizes and label noise of the toy world, as configuration.

It lives in the config layer (not in `toyworld/`) so every command's schema can embed it without
the config layer importing the toy world's code: imports point down, config is the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from goodhartlab.config.ranges import AT_LEAST_1, POSITIVE, UNIT


@dataclass
class ToyWorldSpec:
    """Sizes and noise of the generated toy data."""

    seed: int = 0
    n_train_demos: int = field(default=20000, metadata={"range": AT_LEAST_1})
    n_eval_prompts: int = field(default=512, metadata={"range": AT_LEAST_1})
    n_train_pairs: int = field(default=16000, metadata={"range": AT_LEAST_1})
    n_eval_pairs: int = field(default=2000, metadata={"range": AT_LEAST_1})
    label_temperature: float = field(default=1.0, metadata={"range": POSITIVE})
    label_flip_prob: float = field(default=0.25, metadata={"range": UNIT})
