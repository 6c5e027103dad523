"""Dataset cartography for reward models: per-example training dynamics and confidence cuts.

Why: Singhal et al. (spec `inform_length.md` §B.3.3) find that the RM's length bias comes from a
small set of *easy* examples, those it gets right with high confidence from the first epochs,
and those are mostly "longer is better" pairs. Logging, per example and per epoch, how strongly
the RM prefers the chosen response, then dropping the most confident examples, removes much of
that bias (Swayamdipta et al. 2020 introduced the confidence/variability map).

Usage: during RM training call `log.record(epoch, uids, rew_chosen, rew_rejected)` on each
training batch (uids = row indices into the training list), then `log.stats()` and
`truncate_by_confidence(prefs, stats, low, high)`, or save the log / stats as JSONL.

Two definitions of the per-epoch value, both offered by `stats`:
- `statistic="prob"` (default, Swayamdipta et al.): p_t = sigmoid(r_chosen - r_rejected), the
  Bradley-Terry probability of the correct preference; every epoch counts; population std.
- The seed code: the raw margin, the first epoch dropped, sample std. Call
  `stats(**SEED_CARTOGRAPHY)`. The paper's thresholds (WebGPT (-0.2, 0.4), Stack (-1, 1),
  RLCD (-1, 2), AlpacaFarm (-0.3, 0.3)) are in these raw-margin units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from goodhartlab.data.formats import Preference
from goodhartlab.data.records import read_records, write_jsonl_atomic
from goodhartlab.errors import input_error

Statistic = Literal["prob", "margin"]
SEED_CARTOGRAPHY: dict[str, Any] = {"statistic": "margin", "drop_first": True, "ddof": 1}


@dataclass(frozen=True)
class CartographyStats:
    """Per-example training dynamics; arrays of shape (U,), sorted by uid."""

    uids: np.ndarray  # int64
    confidence: np.ndarray  # mean of the per-epoch value
    variability: np.ndarray  # std of the per-epoch value
    n_epochs: np.ndarray  # int64, observations used


def _numpy(x: Any) -> np.ndarray:
    """A 1-D float64/int array from a list, numpy array or (any-device) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x).reshape(-1)


def cartography_stats(
    uids: np.ndarray,
    epochs: np.ndarray,
    margins: np.ndarray,
    statistic: Statistic = "prob",
    drop_first: bool = False,
    ddof: int = 0,
) -> CartographyStats:
    """Confidence (mean) and variability (std) over epochs of each uid's per-epoch value.

    Shape: uids, epochs, margins (L,) log rows -> CartographyStats with (U,) arrays.
    The value is sigmoid(margin) for "prob" (written 0.5 (1 + tanh(m / 2)), which cannot
    overflow) or the margin itself. Rows are ordered by epoch within each uid; `drop_first`
    drops each uid's earliest epoch. A (uid, epoch) seen twice is an error: it usually means
    a stale log was appended to.
    """
    uids = np.asarray(uids, dtype=np.int64)
    epochs = np.asarray(epochs, dtype=np.int64)
    margins = np.asarray(margins, dtype=np.float64)
    if uids.size == 0:
        raise input_error("cartography log is empty")
    values = 0.5 * (1.0 + np.tanh(margins / 2.0)) if statistic == "prob" else margins
    order = np.lexsort((epochs, uids))
    uids, epochs, values = uids[order], epochs[order], values[order]
    dup = (np.diff(uids) == 0) & (np.diff(epochs) == 0)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise input_error(f"uid {uids[i]} logged twice in epoch {epochs[i]} (stale log?)")
    unique, starts = np.unique(uids, return_index=True)
    need = ddof + 1
    conf, var, counts = [], [], []
    for uid, group in zip(unique, np.split(values, starts[1:])):
        group = group[1:] if drop_first else group
        if len(group) < need:
            raise input_error(
                f"uid {uid} has {len(group)} usable epochs; need {need} "
                f"(drop_first={drop_first}, ddof={ddof})"
            )
        conf.append(group.mean())
        var.append(group.std(ddof=ddof))
        counts.append(len(group))
    return CartographyStats(
        uids=unique,
        confidence=np.array(conf),
        variability=np.array(var),
        n_epochs=np.array(counts, dtype=np.int64),
    )


class CartographyLog:
    """Accumulates (uid, epoch, reward of chosen, reward of rejected) during RM training."""

    def __init__(self) -> None:
        self._uids: list[np.ndarray] = []
        self._epochs: list[np.ndarray] = []
        self._chosen: list[np.ndarray] = []
        self._rejected: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(u) for u in self._uids)

    def record(self, epoch: int, uids: Any, rew_chosen: Any, rew_rejected: Any) -> None:
        """Log one batch: uids (B,), rewards (B,) as lists, arrays or tensors on any device."""
        u, c, r = _numpy(uids).astype(np.int64), _numpy(rew_chosen), _numpy(rew_rejected)
        if not len(u) == len(c) == len(r):
            raise ValueError(f"uids/rew_chosen/rew_rejected lengths {len(u)}/{len(c)}/{len(r)}")
        if not (np.isfinite(c).all() and np.isfinite(r).all()):
            raise ValueError(f"non-finite reward logged in epoch {epoch}")
        self._uids.append(u)
        self._epochs.append(np.full(len(u), epoch, dtype=np.int64))
        self._chosen.append(c.astype(np.float64))
        self._rejected.append(r.astype(np.float64))

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        return (
            cat(self._uids, np.int64),
            cat(self._epochs, np.int64),
            cat(self._chosen, np.float64),
            cat(self._rejected, np.float64),
        )

    def stats(
        self, statistic: Statistic = "prob", drop_first: bool = False, ddof: int = 0
    ) -> CartographyStats:
        """Confidence/variability per uid; see `cartography_stats` and the module docstring."""
        uids, epochs, chosen, rejected = self._columns()
        return cartography_stats(uids, epochs, chosen - rejected, statistic, drop_first, ddof)

    def save(self, path: str | Path) -> Path:
        """Write the log as JSONL rows {uid, epoch, rew_chosen, rew_rejected} (atomically)."""
        uids, epochs, chosen, rejected = self._columns()
        rows = (
            {"uid": int(u), "epoch": int(e), "rew_chosen": float(c), "rew_rejected": float(r)}
            for u, e, c, r in zip(uids, epochs, chosen, rejected)
        )
        return write_jsonl_atomic(path, rows)

    @classmethod
    def load(cls, path: str | Path) -> CartographyLog:
        """Read a log written by `save`; bad rows raise with file:line and field."""
        log = cls()
        for rec in read_records(path):
            uid, epoch = _integer(rec, "uid"), _integer(rec, "epoch")
            log.record(epoch, [uid], [rec.number("rew_chosen")], [rec.number("rew_rejected")])
        return log


def _integer(rec: Any, key: str) -> int:
    value = rec.number(key)
    if value != int(value):
        raise rec.error(f"expected an integer, got {value}", key)
    return int(value)


def save_stats(path: str | Path, stats: CartographyStats) -> Path:
    """Write stats as JSONL rows {uid, confidence, variability, n_epochs} (atomically)."""
    rows = (
        {"uid": int(u), "confidence": float(c), "variability": float(v), "n_epochs": int(n)}
        for u, c, v, n in zip(stats.uids, stats.confidence, stats.variability, stats.n_epochs)
    )
    return write_jsonl_atomic(path, rows)


def load_stats(path: str | Path) -> CartographyStats:
    """Read stats written by `save_stats` (rows sorted by uid on return)."""
    recs = read_records(path)
    uids = np.array([_integer(r, "uid") for r in recs], dtype=np.int64)
    order = np.argsort(uids, kind="stable")
    if np.any(np.diff(uids[order]) == 0):
        dup = int(uids[order][np.flatnonzero(np.diff(uids[order]) == 0)[0]])
        raise input_error(f"uid {dup} appears twice", path)
    return CartographyStats(
        uids=uids[order],
        confidence=np.array([r.number("confidence") for r in recs])[order],
        variability=np.array([r.number("variability") for r in recs])[order],
        n_epochs=np.array([_integer(r, "n_epochs") for r in recs], dtype=np.int64)[order],
    )


def confidence_keep_indices(
    stats: CartographyStats, n: int, low: float | None = None, high: float | None = None
) -> np.ndarray:
    """Row indices in [0, n) with low < confidence < high (either bound may be None).

    Shape: -> (K,) int64, increasing. Every row must have stats and every uid must be a row:
    a mismatch means the stats came from a different (or differently shuffled) training set.
    """
    if len(stats.uids) != n or not np.array_equal(stats.uids, np.arange(n)):
        missing = np.setdiff1d(np.arange(n), stats.uids)
        extra = np.setdiff1d(stats.uids, np.arange(n))
        raise input_error(
            f"cartography stats do not match the {n} training rows: "
            f"{len(missing)} rows without stats (first: {missing[:3].tolist()}), "
            f"{len(extra)} unknown uids (first: {extra[:3].tolist()})"
        )
    keep = np.ones(n, dtype=bool)
    if low is not None:
        keep &= stats.confidence > low
    if high is not None:
        keep &= stats.confidence < high
    return np.flatnonzero(keep).astype(np.int64)


def truncate_by_confidence(
    prefs: Sequence[Preference],
    stats: CartographyStats,
    low: float | None = None,
    high: float | None = None,
) -> list[Preference]:
    """Keep pairs with low < confidence < high (spec §B.3.3), in their original order.

    `high` alone is the paper's main cut (drop the easiest, most length-driven examples);
    `low` and `high` together also drop the hardest (often mislabelled) ones. uid i is row i
    of `prefs`, so `prefs` must be the very list (same order) the statistics were logged on.
    """
    return [prefs[i] for i in confidence_keep_indices(stats, len(prefs), low, high)]
