"""`goodhart toyworld`: write the toy world's prompts, demonstrations, preferences and tokenizer.

The run directory IS the data directory: point `data.train=DIR/demos_train.jsonl` (etc.) of
other commands at it, or let them generate their own with `data.train=toy`.
"""

from __future__ import annotations

from goodhartlab.config.schemas import ToyWorldConfig
from goodhartlab.runs import RunDir
from goodhartlab.toyworld import make


def run(cfg: ToyWorldConfig, run_dir: RunDir, resume: bool = False) -> dict:

    stats = make(run_dir.path, cfg.world)
    print(
        f"teacher: mean gold {stats.gold_mean:.3f}; Pearson r(length, gold) = "
        f"{stats.corr_length_gold:+.3f}; r(fillers, gold) = {stats.corr_fillers_gold:+.3f}"
    )
    return {"teacher": stats}
