"""Hacking detectors: hand-computed values and synthetic latents where the answer is known."""

import numpy as np
import pytest

from goodhartlab.analysis import detect


def test_disagreement_ratio_by_hand() -> None:
    ref = np.array([[0.0, 0.0], [2.0, 2.0]])  # std per sample 1, 1 -> mean 1
    policy = np.array([[0.0, 1.0], [4.0, 1.0]])  # std 2, 0 -> mean 1... and 2 after scaling
    assert detect.disagreement_ratio(policy, ref) == pytest.approx(1.0)
    assert detect.disagreement_ratio(2 * policy, ref) == pytest.approx(2.0)


def test_standardized_disagreement_ignores_member_scale() -> None:
    ref = np.array([[-1.0, 1.0], [10.0, -10.0]])  # member 1 on a 10x scale; means 0, stds 1, 10
    assert np.allclose(detect.standardize_members(ref, ref), [[-1, 1], [1, -1]])
    policy = np.array([[3.0, 3.0], [10.0, 10.0]])  # both members: +3 and +1 of their stds
    # raw: std per sample |3 - 10| / 2 = 3.5 over the reference's |-1 - 10| / 2 = 5.5
    assert detect.disagreement_ratio(policy, ref) == pytest.approx(3.5 / 5.5)
    # standardized: [[3, 3], [1, 1]] -> std 1 per sample, over the reference's 1
    assert detect.disagreement_ratio(policy, ref, standardized=True) == pytest.approx(1.0)


def test_mahalanobis_by_hand() -> None:
    g = detect.Gaussian(np.zeros(2), np.diag([1.0, 0.25]), n=10)  # variances 1 and 4
    assert detect.mahalanobis_sq(np.array([[1.0, 2.0], [0.0, 4.0]]), g) == pytest.approx([2, 4])


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_chi2_outlier_rate_is_alpha_on_the_reference_law(alpha) -> None:
    rng = np.random.default_rng(1)
    d = 8
    a = rng.normal(size=(d, d))
    cov = a @ a.T + np.eye(d)
    draw = lambda n: rng.multivariate_normal(np.arange(d), cov, size=n)  # noqa: E731
    g = detect.fit_gaussian(draw(20000))  # large reference: chi-squared is the right law
    assert detect.outlier_rate(draw(20000), g, alpha) == pytest.approx(alpha, abs=0.2 * alpha)
    shifted = draw(2000) + 3 * np.sqrt(np.diag(cov))
    assert detect.outlier_rate(shifted, g, alpha) > 0.9


def test_predictive_pvalue_corrects_a_small_reference() -> None:
    rng = np.random.default_rng(2)
    d, n, alpha = 32, 256, 0.05
    chi2_rates, f_rates = [], []
    for _ in range(20):
        g = detect.fit_gaussian(rng.normal(size=(n, d)), ridge=0.0)
        new = rng.normal(size=(500, d))
        chi2_rates.append(detect.outlier_rate(new, g, alpha))
        f_rates.append(detect.outlier_rate(new, g, alpha, predictive=True))
    assert np.mean(f_rates) == pytest.approx(alpha, abs=0.01)
    assert np.mean(chi2_rates) > 1.5 * alpha  # the estimated covariance inflates distances


def test_dbscan_and_csi_on_two_blobs() -> None:
    ref = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1]])
    near = ref + 0.02
    far = ref + np.array([10.0, 0.0])
    labels = detect.dbscan(np.vstack([near, far, [[50.0, 50.0]]]), eps=0.5, min_samples=3)
    assert labels[:4].tolist() == [0] * 4 and labels[4:8].tolist() == [1] * 4 and labels[8] == -1
    # the policy = SFT: one cluster, centroid (.05, .05), nearest SFT point .05·√2 away
    same = detect.cluster_separation_index(ref, ref, eps=0.5, min_samples=3)
    assert same == pytest.approx(0.05 * np.sqrt(2))
    csi = detect.cluster_separation_index(np.vstack([near, far]), ref, eps=0.5, min_samples=3)
    d_near = np.hypot(0.03, 0.03)  # centroid (.07, .07) to (.1, .1)
    d_far = np.hypot(9.95, 0.05)  # centroid (10.05, .05) to (.1, 0) or (.1, .1)
    assert csi == pytest.approx((4 * d_near + 4 * d_far) / 8)


def test_length_and_eos_drift_by_hand() -> None:
    assert detect.length_drift([6, 8], [4, 6]) == pytest.approx(2.0)  # (7 - 5) / 1
    assert detect.eos_drop([True, False, False, True], [True] * 4) == pytest.approx(0.5)


def test_wco_divergence() -> None:
    assert detect.wco_divergence([0, 1, 2], [0.0, 0.5, 0.2]) == pytest.approx(0.3)
    assert detect.wco_divergence([0, 2, 1], [0.0, 0.5, 0.2]) == 0.0  # proxy fell too
    assert detect.wco_divergence([0, 1, 2], [0.0, 0.5, 0.7]) == 0.0  # wco still rising
    assert detect.wco_divergence([], []) == 0.0


def test_first_flag_and_early_stop_on_a_synthetic_stream() -> None:
    steps = [0, 5, 10, 15, 20, 25, 30]
    flags = [False, True, False, False, True, True, True]
    assert detect.first_flag(steps, flags) == 5
    assert detect.first_flag(steps, flags, warmup=10) == 20
    assert detect.first_flag(steps, flags, patience=2) == 20
    assert detect.first_flag(steps, flags, patience=4) is None
    assert detect.early_stop_step(steps, flags) == (5, 0)
    assert detect.early_stop_step(steps, flags, patience=3) == (30, 15)
    assert detect.early_stop_step(steps, flags, warmup=10) == (20, 15)
    assert detect.early_stop_step(steps, [False] * 7) == (None, None)


def test_knn_scale_by_hand() -> None:
    points = np.array([[0.0], [1.0], [3.0]])  # 1st neighbours at 1, 1, 2 -> median 1
    assert detect.knn_scale(points, k=1) == pytest.approx(1.0)
    assert detect.knn_scale(points, k=2) == pytest.approx(3.0)  # 3, 2, 3


def test_pca_2d_by_hand() -> None:
    x = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [4.0, 0.0, 1.0]])  # a line along axis 0
    out = detect.pca_2d(x)
    assert np.abs(out[:, 0]).tolist() == pytest.approx([2.0, 0.0, 2.0])
    assert out[:, 1] == pytest.approx([0.0, 0.0, 0.0])


def test_report_column_reads_detect_first_flag(tmp_path) -> None:
    from goodhartlab.analysis.report_data import PPORun
    from goodhartlab.analysis.report_ppo import ppo_facts

    rows = [{"step": s, "eval/reward/gold": g, "eval/kl/sqrt": s / 10}
            for s, g in [(0, 1.0), (5, 1.5), (10, 1.2), (15, 0.5)]]  # fmt: skip
    flags = {"length": 10, "eos": 15, "latent": None}
    run = PPORun("r", tmp_path, {"detect_first_flag": flags}, rows, {}, {})
    assert ppo_facts(run, "#000").flag == 10  # the first flag of any detector
    run.summary["early_stop_on"] = "eos"
    assert ppo_facts(run, "#000").flag == 15  # the early-stop detector's


def test_pairwise_distances_match_a_loop() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    loop = [[np.linalg.norm(x - y) for y in b] for x in a]
    assert detect.pairwise_distances(a, b) == pytest.approx(np.array(loop))
    assert np.diag(detect.pairwise_distances(a, a)) == pytest.approx(np.zeros(5), abs=1e-6)
