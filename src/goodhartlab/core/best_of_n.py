"""Unbiased best-of-n curves for every n from N proxy-scored samples per prompt.

Why: generating and gold-labelling fresh samples for every n is the expensive part of a best-of-n
study; with N samples per prompt we can instead average over *all* n-subsets exactly. Sort one
prompt's samples by proxy (rank 1 = lowest); a uniform n-subset drawn without replacement picks
rank i with probability w[n, i] = C(i-1, n-1) / C(N, n). So E_n[R] = sum_i w[n, i] R_(i) for the
proxy score and for the gold score of the same sample. Averaging over prompts commutes with the
rank-weighted sum, so the whole curve is one (len(ns) x N) . (N,) product of the weights with the
per-rank column means. See specs/llm_optimization.md §1.3 and §9.

Weights come from the recurrence w[n, N] = n / N, w[n, i-1] = w[n, i] (i - n) / (i - 1), run in
log space (float64, no big-integer binomials; C(12600, 6300) has ~3800 decimal digits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from goodhartlab.core.ensemble import aggregate

# Bytes of float64 working set per prompt chunk: keeps peak memory flat in P.
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class BonCurve:
    """A best-of-n curve: one entry per kept n. `dropped_ns` lists requested n > N (not estimable)."""

    n: np.ndarray
    kl_bon: np.ndarray
    proxy: np.ndarray
    gold: np.ndarray
    dropped_ns: tuple[int, ...] = ()

    def to_records(self) -> list[dict[str, float]]:
        """Rows shaped like the seed's `bon_sampled_results.json`: {n, proxy_score, gold_score}."""
        return [
            {"n": int(n), "proxy_score": float(p), "gold_score": float(g)}
            for n, p, g in zip(self.n, self.proxy, self.gold)
        ]


@dataclass(frozen=True)
class MonteCarloEstimate:
    """Sampled best-of-n means with their standard errors (over independent draws)."""

    proxy: float
    gold: float
    proxy_se: float
    gold_se: float


def _check_ns(ns: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(ns)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("ns must be a non-empty 1-D sequence of integers")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"ns must be integers, got {arr.tolist()}")
        arr = arr.astype(np.int64)
    if np.any(arr < 1):
        raise ValueError(f"every n must be >= 1, got {arr.tolist()}")
    return arr.astype(np.int64)


def kl_bon(n: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """Analytic KL of the best-of-n policy from the base policy: log n - (n - 1) / n.

    Why: the x-axis of every best-of-n plot (Gao et al.; an upper bound on the true KL, exact for
    continuous rewards without ties). n=1 gives 0.

    Shape: n (...) -> (...) float64
    """
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1):
        raise ValueError("kl_bon needs n >= 1")
    return np.log(n) - (n - 1.0) / n


def bon_weights(num_samples: int, ns: Sequence[int] | np.ndarray) -> np.ndarray:
    """Probability that the best of a uniform n-subset is rank i, for every n in ns.

    Why: the unbiased estimator's coefficients w[k, i-1] = C(i-1, n_k-1) / C(N, n_k) (rank i = 1 is
    the lowest proxy). Computed by the log-space recurrence from i = N downwards, so huge
    binomials never appear and tiny weights underflow harmlessly to 0. Rows sum to 1.

    Shape: (len(ns), num_samples) float64, with w[k, i-1] = 0 for i < n_k.
    """
    big_n = int(num_samples)
    if big_n < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    ns_arr = _check_ns(ns)
    if np.any(ns_arr > big_n):
        raise ValueError(f"every n must be <= N = {big_n}, got {ns_arr.tolist()}")
    weights = np.zeros((ns_arr.size, big_n), dtype=np.float64)
    for row, n in enumerate(ns_arr.tolist()):
        # log w[i] for i = N, N-1, ..., n: start at log(n/N), then add log((i-n)/(i-1)).
        i = np.arange(big_n, n, -1, dtype=np.float64)
        steps = np.empty(big_n - n + 1, dtype=np.float64)
        steps[0] = np.log(n / big_n)
        steps[1:] = np.log1p(-(n - 1) / (i - 1.0))
        log_w = np.cumsum(steps)
        weights[row, n - 1 :] = np.exp(log_w[::-1])
    return weights


def _nonfinite_error(block: np.ndarray, first_row: int, what: str) -> ValueError:
    rows, cols = np.nonzero(~np.isfinite(block))
    return ValueError(
        f"{what} scores of prompt row {first_row + int(rows[0])} contain NaN/inf "
        f"(first at answer index {int(cols[0])})"
    )


def _stable_argsort_rows(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ascending (argsort, sorted values), keeping generation order among ties.

    Why: numpy's default (SIMD quicksort) argsort is about twice as fast as the stable one but
    may permute tied values; only rows that actually contain a tie are redone stably, so the
    result is identical to kind="stable" at close to quicksort speed. The sorted values do
    not depend on how ties are ordered, so they are returned as computed.

    Shape: (R, N) -> ((R, N) int64, (R, N))
    """
    order = np.argsort(score, axis=1)
    ranked = np.take_along_axis(score, order, axis=1)
    tied_rows = np.flatnonzero((ranked[:, 1:] == ranked[:, :-1]).any(axis=1))
    if tied_rows.size:
        order[tied_rows] = np.argsort(score[tied_rows], axis=1, kind="stable")
    return order, ranked


def _rank_column_means(
    score_rows: Callable[[slice], np.ndarray],
    gold: np.ndarray,
    gold_order_rows: Callable[[slice], np.ndarray] | None,
    rows_per_chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean over prompts of the proxy-sorted scores and of gold in the same order, per rank.

    Why: the only O(P N log N) step; done in prompt chunks so the working set stays ~64 MB
    whatever P is, and no (P, N) index array is ever materialised.

    Shape: gold (P, N) -> two (N,) arrays.
    """
    num_prompts, num_samples = gold.shape
    proxy_sum = np.zeros(num_samples, dtype=np.float64)
    gold_sum = np.zeros(num_samples, dtype=np.float64)
    for start in range(0, num_prompts, rows_per_chunk):
        rows = slice(start, min(start + rows_per_chunk, num_prompts))
        score = score_rows(rows)
        if not np.isfinite(score).all():
            raise _nonfinite_error(score, start, "proxy")
        gold_block = np.asarray(gold[rows], dtype=np.float64)
        if not np.isfinite(gold_block).all():
            raise _nonfinite_error(gold_block, start, "gold")
        order, ranked = _stable_argsort_rows(score)
        proxy_sum += ranked.sum(axis=0)
        if gold_order_rows is not None:
            order = gold_order_rows(rows)
        gold_sum += np.take_along_axis(gold_block, order, axis=1).sum(axis=0)
    return proxy_sum / num_prompts, gold_sum / num_prompts


def _finish_curve(proxy_mean: np.ndarray, gold_mean: np.ndarray, ns_arr: np.ndarray) -> BonCurve:
    big_n = proxy_mean.shape[0]
    keep = ns_arr <= big_n
    kept = ns_arr[keep]
    weights = bon_weights(big_n, kept)
    return BonCurve(
        n=kept,
        kl_bon=kl_bon(kept),
        proxy=weights @ proxy_mean,
        gold=weights @ gold_mean,
        dropped_ns=tuple(int(n) for n in ns_arr[~keep]),
    )


def _check_pair(proxy_shape: tuple[int, ...], gold: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    if gold.ndim != 2 or gold.shape[0] < 1 or gold.shape[1] < 1:
        raise ValueError(f"gold must have shape (P, N) with P, N >= 1, got {gold.shape}")
    if tuple(proxy_shape) != gold.shape:
        raise ValueError(f"proxy shape {tuple(proxy_shape)} != gold shape {gold.shape}")
    ns_arr = _check_ns(ns)
    if not np.any(ns_arr <= gold.shape[1]):
        raise ValueError(f"no requested n is <= N = {gold.shape[1]}: {ns_arr.tolist()}")
    return ns_arr


def bon_curve(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> BonCurve:
    """Unbiased best-of-n proxy and gold curves, averaged over prompts, for every n in ns.

    Why: the overoptimization picture for best-of-n (specs §1.3). Each prompt row is sorted by
    proxy (stable, so ties keep generation order; the later sample ranks higher), gold is
    gathered in the same order, and the exact subset-average weights are applied. Requested
    n > N cannot be estimated and are listed in `BonCurve.dropped_ns`.

    Shape: proxy (P, N), gold (P, N), in generation order -> BonCurve with arrays (len kept ns,)

    Raises ValueError on shape mismatch, bad ns, or NaN/inf scores (naming the prompt row).
    """
    proxy = np.asarray(proxy)
    gold = np.asarray(gold)
    ns_arr = _check_pair(proxy.shape, gold, ns)
    rows_per_chunk = max(1, _CHUNK_BYTES // (8 * gold.shape[1]))
    proxy_mean, gold_mean = _rank_column_means(
        lambda rows: np.asarray(proxy[rows], dtype=np.float64), gold, None, rows_per_chunk
    )
    return _finish_curve(proxy_mean, gold_mean, ns_arr)


def bon_curve_ensemble(
    member_proxy: np.ndarray,
    gold: np.ndarray,
    ns: Sequence[int],
    method: str,
    uwo_coef: float = 0.5,
    ddof: int = 0,
    faithful_seed_gold: bool = False,
) -> BonCurve:
    """Best-of-n curves when the proxy is an ensemble objective (mean / wco / uwo) of M members.

    Why: Coste et al.'s ensemble best-of-n. Members are combined per sample with
    `ensemble.aggregate` (no normalisation, ddof=0 as in the seed), each prompt is ranked by the
    COMBINED score and gold is reordered with that ranking; `proxy` is the combined objective.

    `faithful_seed_gold=True` reproduces the seed's bug (specs §1.5, §10.1): gold is taken in
    member 0's proxy order instead, so the gold curve equals member 0's single-RM gold curve.
    Use it only to compare against published seed outputs; it is not a correct estimate.

    Shape: member_proxy (M, P, N), gold (P, N) -> BonCurve with arrays (len kept ns,)
    """
    member_proxy = np.asarray(member_proxy)
    gold = np.asarray(gold)
    if member_proxy.ndim != 3 or member_proxy.shape[0] < 1:
        raise ValueError(f"member_proxy must have shape (M, P, N), got {member_proxy.shape}")
    ns_arr = _check_pair(member_proxy.shape[1:], gold, ns)
    num_members, _, num_samples = member_proxy.shape
    rows_per_chunk = max(1, _CHUNK_BYTES // (8 * num_samples * (num_members + 1)))

    def combined_rows(rows: slice) -> np.ndarray:
        block = np.asarray(member_proxy[:, rows], dtype=np.float64)
        return aggregate(block, method, uwo_coef=uwo_coef, ddof=ddof)

    def member0_order(rows: slice) -> np.ndarray:
        return _stable_argsort_rows(np.asarray(member_proxy[0, rows]))[0]

    gold_order = member0_order if faithful_seed_gold else None
    proxy_mean, gold_mean = _rank_column_means(combined_rows, gold, gold_order, rows_per_chunk)
    return _finish_curve(proxy_mean, gold_mean, ns_arr)


def bon_monte_carlo(
    proxy: np.ndarray, gold: np.ndarray, n: int, draws: int, rng: np.random.Generator
) -> MonteCarloEstimate:
    """Sampled best-of-n: per prompt, `draws` uniform n-subsets without replacement; pick max proxy.

    Why: an independent check of `bon_curve` (tests, validation). Ties break as in `bon_curve`:
    among equal proxies the later sample wins. The standard error treats each draw (one subset
    per prompt, averaged over prompts) as one iid sample.

    Shape: proxy (P, N), gold (P, N) -> MonteCarloEstimate of scalars
    """
    proxy = np.asarray(proxy, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    _check_pair(proxy.shape, gold, [n])
    num_prompts, num_samples = proxy.shape
    if not 1 <= n <= num_samples or draws < 2:
        raise ValueError(f"need 1 <= n <= N = {num_samples} and draws >= 2, got n={n}, {draws=}")
    picked_proxy = np.zeros(draws)
    picked_gold = np.zeros(draws)
    for p in range(num_prompts):
        rank = np.empty(num_samples, dtype=np.int64)
        rank[np.argsort(proxy[p], kind="stable")] = np.arange(num_samples)
        # The n smallest of N iid uniform keys form a uniform n-subset.
        subset = np.argpartition(rng.random((draws, num_samples)), n - 1, axis=1)[:, :n]
        best = np.take_along_axis(subset, rank[subset].argmax(axis=1)[:, None], axis=1)[:, 0]
        picked_proxy += proxy[p, best]
        picked_gold += gold[p, best]
    picked_proxy /= num_prompts
    picked_gold /= num_prompts
    root = np.sqrt(draws)
    return MonteCarloEstimate(
        proxy=float(picked_proxy.mean()),
        gold=float(picked_gold.mean()),
        proxy_se=float(picked_proxy.std(ddof=1) / root),
        gold_se=float(picked_gold.std(ddof=1) / root),
    )
