"""The PPO part of the Goodhart report: per-method facts, the summary table, the two figures.

Why facts first: the prose header, the table and the figures must say the same numbers, so each
run is reduced once (`ppo_facts`) and every part reads from that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goodhartlab.analysis import report_html as H
from goodhartlab.analysis.report_data import PPORun

GOLD, PROXY, SQRT_KL = "eval/reward/gold", "eval/reward/proxy", "eval/kl/sqrt"
LENGTH, EOS = "eval/length/mean", "eval/eos_rate"
FALL_SHARE = 0.2  # gold "fell" when it ends more than 20% of its rise below its peak


@dataclass
class PPOFacts:
    label: str
    color: str
    initial_gold: float
    peak_gold: float
    peak_step: int
    peak_sqrt_kl: float | None
    final_gold: float
    initial_proxy: float | None
    final_proxy: float | None
    final_sqrt_kl: float | None
    initial_length: float | None
    final_length: float | None
    final_eos: float | None
    fit: dict[str, Any]
    flag: Any

    @property
    def gold_fell(self) -> bool:
        """Gold ended clearly below its peak: by more than FALL_SHARE of its rise (or at all,
        when it never rose)."""
        rise = self.peak_gold - self.initial_gold
        return self.peak_gold - self.final_gold > max(FALL_SHARE * rise, 1e-9)

    @property
    def proxy_rose(self) -> bool:
        return (
            self.initial_proxy is not None
            and self.final_proxy is not None
            and self.final_proxy > self.initial_proxy
        )


def ppo_facts(run: PPORun, color: str) -> PPOFacts | None:
    """The numbers of one run, from its evaluation rows (its summary fills the gaps)."""
    from goodhartlab.analysis.fits import fit_ppo_metrics

    rows, s = run.evals, run.summary
    if not rows:
        return None
    best = max(range(len(rows)), key=lambda i: rows[i][GOLD])
    first, last = rows[0], rows[-1]
    fit = s.get("fit") if isinstance(s.get("fit"), dict) else fit_ppo_metrics(rows)
    flag = s.get("detect_first_flag")
    if isinstance(flag, dict):  # {detector: step or None}: the early-stop one's, else the first
        on, steps = s.get("early_stop_on"), [v for v in flag.values() if isinstance(v, int)]
        flag = flag.get(on) if on in flag else flag.get("step", min(steps, default=None))
    return PPOFacts(
        run.label, color, first[GOLD], rows[best][GOLD], int(rows[best].get("step", best)),
        rows[best].get(SQRT_KL), last[GOLD], first.get(PROXY), last.get(PROXY),
        last.get(SQRT_KL), first.get(LENGTH), last.get(LENGTH), last.get(EOS), fit, flag,
    )  # fmt: skip


def d_star_cell(fit: dict[str, Any]) -> H.Cell:
    """Fitted d* with its interval, or why there is none."""
    if fit.get("error"):
        return H.Cell('<span class="small">too few points</span>')
    if not fit.get("peaked"):
        return H.Cell('<span class="small">no turn (β ≤ 0)</span>')
    text = H.esc(H.interval(fit.get("d_star"), fit.get("d_star_ci"), 2))
    if not fit.get("d_star_in_range"):
        text += ' <span class="small">(beyond data)</span>'
    return H.Cell(text)


def summary_table(facts: list[PPOFacts]) -> str:
    """One row per method; the best peak and final gold in bold green, a fall in red."""
    best_peak = max(f.peak_gold for f in facts)
    best_final = max(f.final_gold for f in facts)
    headers = ["method", "peak gold", "at √KL", "at iter", "final gold", "final proxy",
               "final √KL", "final length", "eos rate", "fitted d* [95% CI]", "fit r²",
               "observed peak √KL", "hacking flagged at step"]  # fmt: skip
    rows = []
    for f in facts:
        final_css = "best" if f.final_gold == best_final else ("bad" if f.gold_fell else "")
        rows.append([
            H.swatch(f.label, f.color),
            H.Cell(H.num(f.peak_gold), "best" if f.peak_gold == best_peak else ""),
            H.Cell(H.num(f.peak_sqrt_kl, 2)), f.peak_step,
            H.Cell(H.num(f.final_gold), final_css), H.Cell(H.num(f.final_proxy)),
            H.Cell(H.num(f.final_sqrt_kl, 2)), H.Cell(H.num(f.final_length, 1)),
            H.Cell("–" if f.final_eos is None else f"{100 * f.final_eos:.0f}%"),
            d_star_cell(f.fit), H.Cell(H.num(f.fit.get("r2"), 2)),
            H.Cell(H.num(f.fit.get("observed_peak_d", f.peak_sqrt_kl), 2)),
            "" if f.flag is None else f.flag,
        ])  # fmt: skip
    return H.table(headers, rows)


def zoom_range(facts: list[PPOFacts], curves: list[Any]) -> float | None:
    """An x range around the peaks (1.6x the farthest observed or in-range fitted peak) when
    some method ran more than twice as far; None when one panel shows the peaks well."""
    x_max = max((max(c.x) for c in curves if len(c.x)), default=0.0)
    peaks = [f.peak_sqrt_kl or 0.0 for f in facts]
    peaks += [f.fit["d_star"] for f in facts if f.fit.get("d_star_in_range")]
    reach = 1.6 * max(peaks, default=0.0)
    return reach if 0 < reach < 0.5 * x_max else None


def figures(runs: list[PPORun], facts: list[PPOFacts], files: Path) -> str:
    """Gold and proxy vs √KL (fits, d*) and vs iteration, every method on the same axes."""
    from goodhartlab.analysis.plots import GoldCurve, overoptimization

    by_label = {f.label: f for f in facts}
    kl_curves, it_curves = [], []
    for run in runs:
        f = by_label.get(run.label)
        if f is None or len(run.evals) < 2:
            continue
        gold = [r[GOLD] for r in run.evals]
        proxy = [r.get(PROXY) for r in run.evals]
        proxy = None if any(p is None for p in proxy) else proxy
        d = [r.get(SQRT_KL, 0.0) for r in run.evals]
        fit = f.fit if not f.fit.get("error") else None
        kl_curves.append(GoldCurve(f.label, d, gold, proxy, fit, f.color))
        it_curves.append(GoldCurve(f.label, [r["step"] for r in run.evals], gold, proxy, None,
                                   f.color))  # fmt: skip
    if not kl_curves:
        return H.note("no PPO run has two or more evaluations: no curves to draw")
    overoptimization(files / "ppo_gold_proxy_vs_sqrt_kl.png", kl_curves,
                     "√KL(π ‖ π_SFT) on held-out prompts",
                     "PPO: gold (solid) and proxy (dashed) vs distance from the SFT policy",
                     zoom=zoom_range(facts, kl_curves))  # fmt: skip
    overoptimization(files / "ppo_gold_proxy_vs_iteration.png", it_curves, "PPO iteration",
                     "PPO: gold (solid) and proxy (dashed) over training")  # fmt: skip
    cap1 = (
        "Each colour is one method. Solid: gold (the true reward); dashed: the proxy the policy "
        "optimizes (right axis). Dotted: the fitted Gao et al. RL curve "
        "gold − gold₀ = d(α − β log d); the star is its predicted peak d* with the 95% "
        "interval of d* as a horizontal bar. Overoptimization = solid turning down while "
        "dashed keeps rising. When some methods run far, the right panel zooms in on the peaks."
    )
    cap2 = (
        "The same runs over iterations: where gold peaks in training time, and how fast it falls."
    )
    return H.figure("report_files/ppo_gold_proxy_vs_sqrt_kl.png", "gold and proxy vs sqrt KL",
                    H.esc(cap1)) + H.figure("report_files/ppo_gold_proxy_vs_iteration.png",
                                            "gold and proxy vs iteration", H.esc(cap2))  # fmt: skip


def section(runs: list[PPORun], facts: list[PPOFacts], files: Path) -> str:
    body = H.paragraph(
        "Held-out evaluations on fixed prompts. <b>peak gold</b>: the best gold seen in any "
        "evaluation; <b>final</b>: the last evaluation. <b>fitted d*</b>: where Gao et al.'s "
        "RL form predicts gold to peak, in √KL units, with a 95% residual-bootstrap interval "
        "(compare with the observed peak's √KL). <b>hacking flagged</b>: the first step a "
        "hacking detector flagged, when the run has one.",
        "howto",
    )
    missing = [r.label for r in runs if not r.evals]
    if missing:
        body += H.note(f"no evaluation rows in metrics.jsonl: {', '.join(missing)}")
    return body + summary_table(facts) + figures(runs, facts, files)
