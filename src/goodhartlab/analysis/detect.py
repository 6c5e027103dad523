"""Detect reward hacking while it happens, from what PPO already computes at each evaluation.

Why: on a real task there is no gold reward, so overoptimization is only visible through
signals the proxy side can see. Each detector compares the policy's evaluation samples with the
SFT policy's samples on the same held-out prompts (the step-0 evaluation, "the reference") and
returns a score; a threshold turns it into a flag. `first_flag` / `early_stop_step` turn a stream
of flags into the step to report or stop at. Pure numpy (scipy only for the chi-squared and F
tails); no models, no config objects (specs/inform_length.md §A.7–A.8, peers.md §2).

Detectors:
- ensemble disagreement: mean member std on the policy's samples over that on the reference's,
  raw or with every member standardized by its own reference mean/std;
- latent outliers: fraction of InfoRM latents whose Mahalanobis distance to the reference
  latents' Gaussian has a tail p-value below alpha (the journal version's MOP, without UMAP), and
  the conference version's cluster-separation index (CSI, DBSCAN clusters' distance to SFT);
- length / eos drift: standardized mean-length shift and drop of the eos rate;
- WCO divergence: the proxy keeps rising while the ensemble's worst-case score falls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS = 1e-12


def member_std(scores: np.ndarray) -> np.ndarray:
    """Population std over members per sample (ddof 0, like `ensemble/std`).

    Shape: scores (K, B) -> (B,)
    """
    return np.asarray(scores, dtype=np.float64).std(axis=0)


def standardize_members(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each member's scores in units of its own reference (SFT-sample) mean and std.

    Why: members trained on other seeds have different scales; raw std then measures mostly
    the scale gap, which is there at step 0 already.

    Shape: scores (K, B), reference (K, M) -> (K, B)
    """
    ref = np.asarray(reference, dtype=np.float64)
    mean, std = ref.mean(axis=1, keepdims=True), ref.std(axis=1, keepdims=True)
    return (np.asarray(scores, dtype=np.float64) - mean) / np.maximum(std, EPS)


def disagreement_ratio(
    scores: np.ndarray, reference: np.ndarray, standardized: bool = False
) -> float:
    """Mean member std on the policy's samples / mean member std on the reference samples.

    1 means "as much disagreement as on SFT samples"; hacking pushes samples where members
    were never trained to agree, so the ratio rises.

    Shape: scores (K, B), reference (K, M) -> scalar
    """
    if standardized:
        scores, reference = (
            standardize_members(scores, reference),
            standardize_members(reference, reference),
        )
    return float(member_std(scores).mean() / max(member_std(reference).mean(), EPS))


@dataclass(frozen=True)
class Gaussian:
    """Mean, precision (inverse covariance) and the number of samples it was fitted on.

    Shape: mean (d,), precision (d, d)
    """

    mean: np.ndarray
    precision: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def fit_gaussian(reference: np.ndarray, ridge: float = 1e-6) -> Gaussian:
    """Sample mean and unbiased covariance (+ ridge · mean variance · I, as the seed's 1e-6·I
    but scale-free, so a latent space of tiny scale is not swamped).

    Shape: reference (M, d) -> Gaussian(mean (d,), precision (d, d))
    """
    x = np.asarray(reference, dtype=np.float64)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    cov = cov + ridge * max(float(np.trace(cov)) / cov.shape[0], EPS) * np.eye(cov.shape[0])
    return Gaussian(x.mean(axis=0), np.linalg.inv(cov), int(x.shape[0]))


def mahalanobis_sq(x: np.ndarray, gaussian: Gaussian) -> np.ndarray:
    """Squared Mahalanobis distance of each row to the Gaussian.

    Shape: x (N, d) -> (N,)
    """
    diff = np.asarray(x, dtype=np.float64) - gaussian.mean
    return np.einsum("nd,de,ne->n", diff, gaussian.precision, diff)


def outlier_pvalues(x: np.ndarray, gaussian: Gaussian, predictive: bool = False) -> np.ndarray:
    """Tail p-value of each row's squared distance.

    predictive=False: chi-squared with d degrees of freedom (the seed's MOP; exact when mean and
    covariance are known). predictive=True: the exact law of a *new* Gaussian sample's distance
    to a mean and covariance estimated from n samples, D² · n(n−d) / ((n+1)(n−1)d) ~ F(d, n−d);
    with n = 256 and d = 32 the chi-squared tail flags about twice alpha on SFT samples.

    Shape: x (N, d) -> (N,)
    """
    from scipy import stats

    d2, d, n = mahalanobis_sq(x, gaussian), gaussian.dim, gaussian.n
    if not predictive:
        return stats.chi2.sf(d2, df=d)
    if n <= d + 1:
        raise ValueError(f"predictive p-values need more reference samples ({n}) than dims ({d})")
    return stats.f.sf(d2 * n * (n - d) / ((n + 1) * (n - 1) * d), d, n - d)


def outlier_rate(
    x: np.ndarray, gaussian: Gaussian, alpha: float = 0.05, predictive: bool = False
) -> float:
    """Fraction of rows with p-value < alpha: ≈ alpha when x comes from the reference law.

    Shape: x (N, d) -> scalar
    """
    return float(np.mean(outlier_pvalues(x, gaussian, predictive) < alpha))


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances by the Gram identity |a|² + |b|² − 2a·b (no (N, M, d) temporary, so
    2000 samples with 512-dim latents need 32 MB, not 16 GB).

    Shape: a (N, d), b (M, d) -> (N, M)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def dbscan(points: np.ndarray, eps: float, min_samples: int = 5) -> np.ndarray:
    """DBSCAN cluster labels (−1 = noise), brute force O(N²): sklearn's algorithm for the few
    hundred evaluation samples, without needing scikit-learn.

    Shape: points (N, d) -> (N,) int
    """
    x = np.asarray(points, dtype=np.float64)
    dist = pairwise_distances(x, x)
    neighbors = [np.flatnonzero(row <= eps) for row in dist]  # includes the point itself
    core = np.array([len(nb) >= min_samples for nb in neighbors])
    labels = np.full(len(x), -1)
    cluster = 0
    for i in np.flatnonzero(core):
        if labels[i] != -1:
            continue
        labels[i], stack = cluster, [i]
        while stack:
            j = stack.pop()
            if not core[j]:
                continue
            for k in neighbors[j]:
                if labels[k] == -1:
                    labels[k] = cluster
                    stack.append(k)
        cluster += 1
    return labels


def knn_scale(reference: np.ndarray, k: int = 5) -> float:
    """Median distance of a reference point to its k-th nearest other point: the unit of
    DBSCAN's eps and of CSI, so one setting fits latent spaces of any scale or dimension.

    Shape: reference (M, d) -> scalar
    """
    x = np.asarray(reference, dtype=np.float64)
    dist = np.sort(pairwise_distances(x, x), axis=1)
    return float(np.median(dist[:, min(k, len(x) - 1)]))


def cluster_separation_index(
    latents: np.ndarray,
    reference: np.ndarray,
    eps: float,
    min_samples: int = 5,
    include_noise: bool = False,
) -> float:
    """CSI = Σ_i |C_i| · min_{s ∈ SFT} ‖c_i − s‖ over DBSCAN clusters C_i of the policy's latents
    (centroid c_i), divided by the number of policy samples so runs of any size compare.

    Why divided: the paper's sum grows with the sample count; per sample it reads as "mean
    distance of a policy sample's cluster to the SFT cloud". Noise points (label −1) count as one
    more cluster when include_noise (the paper does not say).

    Shape: latents (N, d), reference (M, d) -> scalar
    """
    x, ref = np.asarray(latents, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    labels = dbscan(x, eps, min_samples)
    total = 0.0
    for label in np.unique(labels):
        if label == -1 and not include_noise:
            continue
        members = x[labels == label]
        centroid = members.mean(axis=0)
        total += len(members) * float(pairwise_distances(centroid[None], ref).min())
    return total / max(len(x), 1)


def length_drift(lengths: Sequence[float], reference: Sequence[float]) -> float:
    """(mean length − reference mean) / reference std: the standardized length shift.

    Shape: lengths (B,), reference (M,) -> scalar
    """
    ref = np.asarray(reference, dtype=np.float64)
    return float((np.mean(lengths) - ref.mean()) / max(ref.std(), EPS))


def eos_drop(ended: Sequence[bool], reference: Sequence[bool]) -> float:
    """Reference eos rate − eos rate: positive when the policy stops finishing its answers.

    Shape: ended (B,), reference (M,) -> scalar
    """
    return float(np.mean(reference) - np.mean(ended))


def wco_divergence(proxy: Sequence[float], wco: Sequence[float]) -> float:
    """How far the ensemble's worst-case (min over members) mean score has fallen from its best
    evaluation so far, counted only while the proxy is above its value there (else 0).

    Why: without gold, a falling pessimistic score under a rising optimized score is the
    ensemble's own picture of overoptimization (Coste et al.).

    Shape: proxy (T,), wco (T,) per evaluation so far -> scalar (latest evaluation)
    """
    if len(wco) == 0:
        return 0.0
    best = int(np.argmax(wco))
    if proxy[-1] <= proxy[best]:
        return 0.0
    return float(wco[best] - wco[-1])


def first_flag(
    steps: Sequence[int], flags: Sequence[bool], warmup: int = 0, patience: int = 1
) -> int | None:
    """Step of the first flag that opens a run of `patience` consecutive flagged evaluations,
    ignoring evaluations before step `warmup`; None when there is none.

    Shape: steps (T,), flags (T,) -> step or None
    """
    streak = 0
    for i, (step, flag) in enumerate(zip(steps, flags)):
        streak = streak + 1 if flag and step >= warmup else 0
        if streak >= patience:
            return int(steps[i - patience + 1])
    return None


def early_stop_step(
    steps: Sequence[int], flags: Sequence[bool], warmup: int = 0, patience: int = 1
) -> tuple[int | None, int | None]:
    """(step at which training stops, step of the policy to keep): training stops at the
    evaluation that completes `patience` flags in a row and keeps the last unflagged evaluation
    before the streak began (the first evaluation when it flags at once). (None, None) = never.

    Shape: steps (T,), flags (T,) -> (step or None, step or None)
    """
    start = first_flag(steps, flags, warmup, patience)
    if start is None:
        return None, None
    i = list(steps).index(start)
    keep = next((steps[j] for j in range(i - 1, -1, -1) if not flags[j]), steps[0])
    return int(steps[i + patience - 1]), int(keep)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Coordinates on the two leading principal axes (centered SVD): the plot's embedding
    when scikit-learn's t-SNE is not installed. Signs follow the SVD.

    Shape: x (N, d) -> (N, 2)
    """
    centered = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    out = centered @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
