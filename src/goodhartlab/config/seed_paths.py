"""`{seed}` placeholders in reward-model paths, filled from a `seeds` list (the seeds' convention).

Why: Coste et al. name one proxy RM per seed with a pattern (`proxy_rm_path` must contain
`{seed}`: `models/rm-pythia-44m_seed{seed}`, and `--seeds 1,2,3,4,5`), and `goodhart train-rm`
writes its members as `RUN/rm_seed{seed}/model`. So
`goodhart bon reward_models=['RUN/rm_seed{seed}/model'] seeds=[1,2]` means the two members.
A path without the placeholder is used as it is; mixing is allowed (`[gold_like_rm, rm{seed}]`).
A format spec is Python's (`rm_seed{seed:02d}` -> `rm_seed01`), as in the seeds' `str.format`.
"""

from __future__ import annotations

from collections.abc import Sequence
from string import Formatter

from goodhartlab.errors import ConfigError

PLACEHOLDER = "{seed}"


def expand_seeds(paths: Sequence[str], seeds: Sequence[int] | None, field: str) -> list[str]:
    """Each path with `{seed}` once per seed (in `seeds` order); other paths unchanged.

    Errors (one line naming `field`): a placeholder with no seeds, seeds with no placeholder
    (they would be ignored silently), repeated seeds, any other `{...}` in a path, a format
    spec that does not apply to an integer.
    """
    has = [_has_seed(p, field) for p in paths]
    if seeds is not None and not seeds:
        raise ConfigError("field 'seeds': empty list; give seeds=[1,2,...] or leave it null")
    if any(has) and seeds is None:
        first = paths[has.index(True)]
        raise ConfigError(
            f"field '{field}': {first!r} has a {PLACEHOLDER} placeholder; set seeds=[1,2,...] "
            "to fill it"
        )
    if seeds is not None and not any(has):
        raise ConfigError(
            f"field 'seeds': {list(seeds)} given but no path in '{field}' has a {PLACEHOLDER} "
            "placeholder to fill"
        )
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ConfigError(f"field 'seeds': repeated seeds in {list(seeds)}")
    out = []
    for path, placeholder in zip(paths, has):
        try:
            # without the placeholder, format() still runs: a stray {name} is an error, not a
            # literal, and {{ }} are braces, as in a path with the placeholder
            filled = [path.format(seed=s) for s in seeds or []] if placeholder else [path.format()]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"field '{field}': {path!r}: only {PLACEHOLDER} (or a format spec such as "
                f"{{seed:02d}}) may appear in braces ({exc})"
            ) from None
        out += filled
    return out


def _has_seed(path: str, field: str) -> bool:
    """Whether `path` has a {seed} field, with or without a format spec (`{seed:02d}`);
    `{{seed}}` is a literal, not a placeholder."""
    try:
        return any(name == "seed" for _, name, _, _ in Formatter().parse(path))
    except ValueError as exc:  # an unmatched brace
        raise ConfigError(f"field '{field}': {path!r}: {exc}") from None


def shared_seeds(
    paths: Sequence[str], seeds: Sequence[int] | None, field: str
) -> Sequence[int] | None:
    """`seeds` for a second path list that shares them (ppo's `detect.ensemble` uses
    `reward.seeds`): given where that list has a placeholder, else None, so a plain monitor
    ensemble beside a `{seed}` proxy is not refused as "seeds given but no placeholder"."""
    return seeds if any(_has_seed(p, field) for p in paths) else None
