"""Benchmark: best-of-n curves at the seeds' size, against a straightforward exact-binomial version.

Run:  PYTHONPATH=src python benchmarks/bon.py [--prompts 1000] [--answers 12600]

Synthetic data as in specs/llm_optimization.md §9 (seed 0): gold ~ N(0, 1) and, for each of M
proxy RMs, proxy_k = 0.6 gold + 0.5 shared + 0.6 eps_k (standard normals), in generation order.
Times, in this one process:
  * ours: the full 16-point curve for one RM (per-prompt sort included), and each ensemble
    objective (mean, wco, uwo 0.5) including combine + sort + curve; working memory per call
    (tracemalloc peak above the inputs) and the process peak RSS;
  * naive: per-prompt sort, then per n the coefficient list C(i-1, n-1) / C(N, n) in exact big
    integers (C(N, n) recomputed for every i, as the seed does), applied to the sorted rows. It
    runs for a few n (--naive-ns) on a subset of prompts (--naive-prompts); its per-prompt parts
    (sort, apply) are extrapolated linearly to all prompts (labelled "extrap."). The ratio
    ours/naive is for those same n. The naive cost grows steeply with n (n >= 2048 take tens of
    seconds to minutes each), so for the full 16-n curve the speed-up is far larger than shown.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from goodhartlab.core.best_of_n import bon_curve, bon_curve_ensemble, bon_weights

SEED_SAMPLE_NS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 6144, 8192, 12500]


def make_data(prompts: int, answers: int, members: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """gold (P, N) and member proxies (M, P, N), float64, generated without big temporaries."""
    rng = np.random.default_rng(seed)
    gold = rng.standard_normal((prompts, answers))
    base = rng.standard_normal((prompts, answers))  # the shared component
    base *= 0.5
    base += 0.6 * gold
    member_proxy = np.empty((members, prompts, answers))
    for k in range(members):
        rng.standard_normal(out=member_proxy[k])
        member_proxy[k] *= 0.6
        member_proxy[k] += base
    return gold, member_proxy


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def working_memory_mb(fn: Callable[[], object]) -> float:
    """Peak bytes allocated during fn (numpy reports to tracemalloc), in MB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def naive_coefficients(big_n: int, n: int) -> np.ndarray:
    """The seed's way: exact big-integer binomials, C(N, n) recomputed for every i."""
    return np.array([math.comb(i - 1, n - 1) / math.comb(big_n, n) for i in range(n, big_n + 1)])


def naive_apply(sorted_scores: np.ndarray, coeffs: np.ndarray, n: int) -> float:
    """Mean over prompts of sum_i coeffs_i * score of rank i, for rows sorted ascending by proxy."""
    return float(np.mean(sorted_scores[:, n - 1 :] @ coeffs))


def run_naive(
    proxy: np.ndarray, gold: np.ndarray, naive_ns: list[int], subset: int
) -> tuple[float, list[tuple[int, float, float, float, float]]]:
    """Sort seconds, then per n: (n, coefficient s, apply s, proxy, gold), on `subset` prompts."""
    start = time.perf_counter()
    order = np.argsort(proxy[:subset], axis=1, kind="stable")
    sorted_proxy = np.take_along_axis(proxy[:subset], order, axis=1)
    sorted_gold = np.take_along_axis(gold[:subset], order, axis=1)
    sort_s = time.perf_counter() - start
    rows = []
    for n in naive_ns:
        coef_s, coeffs = timed(lambda n=n: naive_coefficients(proxy.shape[1], n), 1)
        start = time.perf_counter()
        p = naive_apply(sorted_proxy, coeffs, n)
        g = naive_apply(sorted_gold, coeffs, n)
        rows.append((n, coef_s, time.perf_counter() - start, p, g))
    return sort_s, rows


def report_naive(
    proxy: np.ndarray, gold: np.ndarray, naive_ns: list[int], subset: int, repeats: int
) -> tuple[float, float]:
    """Print the naive-vs-ours table for naive_ns; return (naive seconds, ours seconds) for them."""
    prompts = proxy.shape[0]
    sort_s, naive = run_naive(proxy, gold, naive_ns, subset)
    ours_subset = bon_curve(proxy[:subset], gold[:subset], naive_ns)
    scale = prompts / subset
    print(
        f"\nnaive exact-binomial on {subset} prompts; per-prompt parts (sort, apply) "
        f"extrap. x{scale:g} to {prompts}"
    )
    print(
        f"{'n':>6}{'coef s':>9}{'apply s*':>10}{'ours w s':>10}{'coef ratio':>12}{'max |diff|':>12}"
    )
    naive_total = sort_s * scale
    for k, (n, coef_s, apply_s, p, g) in enumerate(naive):
        ours_w_s, _ = timed(lambda n=n: bon_weights(proxy.shape[1], [n]), repeats)
        naive_total += coef_s + apply_s * scale
        diff = max(abs(p - ours_subset.proxy[k]), abs(g - ours_subset.gold[k]))
        print(
            f"{n:>6}{coef_s:>9.3f}{apply_s * scale:>10.3f}{ours_w_s:>10.5f}"
            f"{ours_w_s / coef_s:>12.2e}{diff:>12.1e}"
        )
    ours_s, _ = timed(lambda: bon_curve(proxy, gold, naive_ns), repeats)
    print(
        f"* extrap.; naive sort (extrap.) {sort_s * scale:.3f} s; ours w s = our weights for that n"
    )
    return naive_total, ours_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--answers", type=int, default=12_600)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--naive-ns", default="1,16,256,1024", help="n values for the naive version"
    )
    parser.add_argument(
        "--naive-prompts", type=int, default=50, help="prompts the naive version sees"
    )
    parser.add_argument("--repeats", type=int, default=2, help="timings are the best of this many")
    args = parser.parse_args(argv)
    prompts, answers = args.prompts, args.answers
    naive_ns = [n for n in (int(x) for x in args.naive_ns.split(",")) if n <= answers]
    subset = min(args.naive_prompts, prompts)

    start = time.perf_counter()
    gold, member_proxy = make_data(prompts, answers, args.members, args.seed)
    gen_s = time.perf_counter() - start
    proxy = member_proxy[0]
    inputs_mb = (gold.nbytes + member_proxy.nbytes) / 2**20
    print(
        f"data: P={prompts} N={answers} M={args.members} float64 ({inputs_mb:.0f} MB), "
        f"generated in {gen_s:.1f} s; {len(SEED_SAMPLE_NS)} sample_ns"
    )

    heading = f"ours (best of {args.repeats})"
    print(f"\n{heading:<34}{'time s':>9}{'work MB':>10}")
    single_s, single = timed(lambda: bon_curve(proxy, gold, SEED_SAMPLE_NS), args.repeats)
    mem = working_memory_mb(lambda: bon_curve(proxy, gold, SEED_SAMPLE_NS))
    print(f"{'one RM, full curve incl. sort':<34}{single_s:>9.3f}{mem:>10.0f}")
    curves = {"single": single}
    for method in ("mean", "wco", "uwo"):

        def run(method: str = method) -> object:
            return bon_curve_ensemble(member_proxy, gold, SEED_SAMPLE_NS, method, uwo_coef=0.5)

        seconds, curves[method] = timed(run, args.repeats)
        mem = working_memory_mb(run)
        label = f"ensemble {method}{' 0.5 (ddof 0)' if method == 'uwo' else ''}, M={args.members}"
        print(f"{label:<34}{seconds:>9.3f}{mem:>10.0f}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS {rss_mb:.0f} MB (includes the {inputs_mb:.0f} MB of inputs)")

    print(f"\n{'n':>6}{'kl_bon':>9}" + "".join(f"{k + ' gold':>13}" for k in curves))
    for k, n in enumerate(single.n):
        golds = "".join(f"{c.gold[k]:>13.5f}" for c in curves.values())
        print(f"{n:>6}{single.kl_bon[k]:>9.3f}{golds}")
    print(
        f"single proxy at n={single.n[-1]}: {single.proxy[-1]:.5f}; dropped ns: {single.dropped_ns}"
    )

    naive_s, ours_s = report_naive(proxy, gold, naive_ns, subset, args.repeats)
    print(
        f"curve for n in {naive_ns} incl. sort: naive {naive_s:.3f} s (extrap.), "
        f"ours {ours_s:.3f} s -> ratio ours/naive = {ours_s / naive_s:.4f}"
    )
    print(
        f"full {len(single.n)}-n curve: ours {single_s:.3f} s; the naive version needs at least "
        f"the {naive_s:.1f} s above plus every n it skipped (seconds to minutes each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
