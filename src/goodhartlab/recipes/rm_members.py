"""Proxy reward-model members named by a config, and one member's scores of shared encodings.

Why one home: `goodhart bon`, `goodhart score` and ppo's reward models all expand
`reward_models` ({seed} filled from `seeds`, ensembles expanded into their members); bon and
score both score a member over texts tokenized once per distinct tokenizer, and a NaN score
must fail the same way in both, naming the RM.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhartlab.config.seed_paths import expand_seeds
from goodhartlab.data.encoding import SharedEncodings
from goodhartlab.errors import InputError
from goodhartlab.models.reward import ensemble_members, load_reward_model, score_encoded
from goodhartlab.recipes.toy_inputs import resolve_reward_source


def resolve_members(
    reward_models: Sequence[str], seeds: Sequence[int] | None, field: str = "reward_models"
) -> list[Path]:
    """Every RM member named by `reward_models` ({seed} filled from `seeds`, ensembles
    expanded), resolved, in order; errors name `field` (ppo's is `reward.reward_models`)."""
    members: list[Path] = []
    for source in expand_seeds(reward_models, seeds, field):
        members += [m.resolve() for m in ensemble_members(resolve_reward_source(source))]
    return members


def member_names(members: list[Path]) -> list[str]:
    """Short unique names: the member dir's name (its parent's for a `model` dir, as train-rm
    writes RUN/rm_seed{s}/model), prefixed by its index where names still repeat."""
    names = [m.parent.name if m.name == "model" else m.name for m in members]
    if len(set(names)) < len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    return names


def score_member(
    path: str | Path, encodings: SharedEncodings, device: str, batch_size: int
) -> tuple[np.ndarray, Any]:
    """Scores (N,) float64 of one RM (loaded, used, released: one RM in memory at a time) and
    its tokenizer. A score that is not finite is an InputError naming the RM and the answer,
    not a number in a curve."""
    model, tok = load_reward_model(str(path), device=device)
    model.eval()
    values = np.asarray(score_encoded(model, encodings.get(tok), batch_size), dtype=np.float64)
    del model
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(
            f"reward model {path}: its score is not finite for answer {int(bad[0])} "
            f"({values[bad[0]]})"
        )
    return values, tok
