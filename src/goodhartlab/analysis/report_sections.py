"""The best-of-n, length, sweep and ORPO parts of the Goodhart report.

Each `*_section` returns the section's HTML (tables, figures written into `files`, notes for
what is missing); `analysis.report` puts them in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from goodhartlab.analysis import report_html as H
from goodhartlab.analysis.report_data import BonRun, OrpoRun, PPORun, RMRun, SweepRun, Unreadable
from goodhartlab.analysis.report_ppo import LENGTH, PPOFacts

# --- best-of-n ----------------------------------------------------------------------------------
# One colour per curve of a run across its two figures and its table (single RMs, then ensembles).
BON_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
              "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip


def bon_fits(run: BonRun) -> dict[str, dict[str, Any]]:
    from goodhartlab.analysis.fits import fit_bon_results

    return {name: fit_bon_results(rows) for name, rows in run.curves.items()}


def _bon_table(run: BonRun, fits: dict[str, dict[str, Any]], colors: dict[str, str]) -> str:
    from goodhartlab.analysis.fits import n_at_kl_bon

    headers = ["curve", "gold at n=1", "peak gold", "n at peak", "gold at largest n",
               "proxy at largest n", "fitted d* [95% CI]", "fitted n*"]  # fmt: skip
    rows = []
    best = max(max(r["gold_score"] for r in rows_) for rows_ in run.curves.values())
    for name, pts in run.curves.items():
        top = max(pts, key=lambda r: r["gold_score"])
        fit = fits[name]
        d_star = fit.get("d_star") if fit.get("peaked") else None
        n_star = n_at_kl_bon(d_star**2) if d_star is not None else None
        beyond = "" if fit.get("d_star_in_range") else ' <span class="small">(beyond data)</span>'
        ci = H.esc(H.interval(d_star, fit.get("d_star_ci"), 2)) if d_star is not None else "no turn"
        rows.append([
            H.swatch(name, colors[name]), H.Cell(H.num(pts[0]["gold_score"])),
            H.Cell(H.num(top["gold_score"]), "best" if top["gold_score"] == best else ""),
            top["n"], H.Cell(H.num(pts[-1]["gold_score"])), H.Cell(H.num(pts[-1]["proxy_score"])),
            H.Cell(ci + (beyond if d_star is not None else "")),
            "–" if n_star is None else f"{n_star:.0f}",
        ])  # fmt: skip
    return H.table(headers, rows)


def bon_section(runs: list[BonRun], files: Path) -> str:
    """Per best-of-n run: gold and proxy vs KL_bon (single RMs, ensemble objectives) and a table."""
    from goodhartlab.analysis.plots import GoldCurve, overoptimization

    body = H.paragraph(
        "Best-of-n with the unbiased estimator over N samples per prompt: pick the answer the "
        "proxy ranks best among n. x-axis: KL_bon = log n − (n−1)/n (an upper bound on the KL). "
        "Dotted: the fitted form gold − gold₀ = d(α − βd), d = √KL_bon; the star is its peak d* "
        "(intervals measure misfit only: the points of a curve share their samples). "
        "<b>fitted n*</b>: the n whose KL_bon equals d*².",
        "howto",
    )
    for i, run in enumerate(runs):
        if not run.curves:
            body += H.note(f"{run.label}: no bon_sampled_results.json curves")
            continue
        fits = bon_fits(run)
        colors = dict(zip(run.curves, BON_COLORS * (len(run.curves) // len(BON_COLORS) + 1)))
        body += f"<h3>{H.esc(run.label)}</h3>"
        for group, title in (
            ("single", "single reward models"),
            ("ensemble", "ensemble objectives"),
        ):
            names = [n for n in run.curves if n.startswith(group + "/")]
            if not names:
                continue
            curves = [
                GoldCurve(n.split("/", 1)[1], [r["kl_bon"] for r in run.curves[n]],
                          [r["gold_score"] for r in run.curves[n]],
                          [r["proxy_score"] for r in run.curves[n]], fits[n], colors[n])
                for n in names
            ]  # fmt: skip
            png = f"bon{i}_{group}.png"
            overoptimization(files / png, curves, "KL_bon = log n − (n−1)/n",
                             f"best-of-n, {title}: gold (solid) and proxy (dashed)",
                             kl_axis=True, size=(8.0, 4.6))  # fmt: skip
            body += H.figure(f"report_files/{png}", f"best-of-n {title}",
                             H.esc(f"{run.label}: {title}; colour = curve."))  # fmt: skip
        body += _bon_table(run, fits, colors)
    return body


# --- length -------------------------------------------------------------------------------------


def rm_table(runs: list[RMRun]) -> str:
    """Reward models: accuracy and the reward-length correlation on held-out policy samples."""
    rows = []
    for run in runs:
        for member, res in run.members.items():
            label = run.label if len(run.members) == 1 else f"{run.label}/{member}"
            rows.append([
                label, H.Cell(H.num(res.get("accuracy_vs_gold"))),
                H.Cell(H.num(res.get("rank_corr_gold"))),
                H.Cell(H.num(res.get("reward_length_pearson"))),
                H.Cell(H.num(res.get("gold_length_pearson"))), res.get("n_pairs", "–"),
            ])  # fmt: skip
    headers = ["reward model", "accuracy vs gold", "rank corr. with gold",
               "r(reward, length)", "r(gold, length)", "held-out pairs"]  # fmt: skip
    return H.table(headers, rows, "Reward models: accuracy and length correlation")


def eval_samples(path: Path) -> dict[str, np.ndarray]:
    """lengths, gold and proxy (nan when absent) of one eval/eval-{step}.json, flattened."""
    from goodhartlab.analysis.report_data import read_json

    rows = read_json(path)
    if not isinstance(rows, list):
        raise Unreadable(f"{path}: not a list of rows")
    lengths, gold, proxy = [], [], []
    for row in rows:
        lengths += row["lengths"]
        gold += row["gold_scores"]
        proxy += [math.nan if p is None else p for p in row["proxy_scores"]]
    return {"length": np.array(lengths, float), "gold": np.array(gold, float),
            "proxy": np.array(proxy, float)}  # fmt: skip


def _gain_cells(first: dict, last: dict, key: str) -> list[H.Cell]:
    from goodhartlab.analysis.length import length_stratified_gain

    if np.isnan(first[key]).any() or np.isnan(last[key]).any():
        return [H.Cell("–")] * 3
    g = length_stratified_gain(first["length"], first[key], last["length"], last[key])
    share = "–" if math.isnan(g.share_not_length) else f"{100 * g.share_not_length:.0f}%"
    return [H.Cell(H.num(g.total_gain)), H.Cell(H.num(g.within_gain)), H.Cell(share)]


def wrg_table(runs: list[PPORun]) -> str:
    """The non-length reward gain from the first to the last evaluation's samples, per method."""
    from goodhartlab.analysis.correlation import pearson

    rows, skipped = [], []
    for run in runs:
        if len(run.eval_files) < 2:
            skipped.append(run.label)
            continue
        steps = sorted(run.eval_files)
        try:
            first, last = (eval_samples(run.eval_files[s]) for s in (steps[0], steps[-1]))
        except (Unreadable, KeyError, TypeError) as exc:
            skipped.append(f"{run.label} ({exc})")
            continue
        r_len = [pearson(x["proxy"], x["length"]) for x in (first, last)]
        rows.append([
            run.label, f"{steps[0]} → {steps[-1]}",
            H.Cell(f"{first['length'].mean():.1f} → {last['length'].mean():.1f}"),
            *_gain_cells(first, last, "proxy"), *_gain_cells(first, last, "gold"),
            H.Cell(f"{H.num(r_len[0], 2)} → {H.num(r_len[1], 2)}"),
        ])  # fmt: skip
    headers = ["method", "eval steps", "mean length", "proxy gain", "non-length proxy gain",
               "proxy: share not length", "gold gain", "non-length gold gain",
               "gold: share not length", "r(proxy, length)"]  # fmt: skip
    out = H.table(headers, rows, "Length-stratified reward gain (first → last evaluation)")
    if skipped:
        out += H.note("no eval/eval-{step}.json pair (older run?): " + ", ".join(skipped))
    return out if rows else H.note("no PPO run has per-sample evaluation files (eval/*.json)")


def length_section(
    rm_runs: list[RMRun], ppo_runs: list[PPORun], facts: list[PPOFacts], files: Path
) -> str:
    from goodhartlab.analysis.plots import Line, lines

    body = H.paragraph(
        "Does the policy gain reward by writing longer answers (Singhal et al.)? "
        "<b>r(reward, length)</b>: Pearson correlation of each RM's score with answer length "
        "(tokens) on held-out policy samples; gold's own correlation beside it. "
        "<b>non-length gain</b>: bin the first and last evaluation's samples by length "
        "(width 1 token), take the within-bin change in mean reward, weight by bin counts; "
        "<b>share not length</b> = non-length gain / total gain (the rest came from the length "
        "shift).",
        "howto",
    )
    body += rm_table(rm_runs) if rm_runs else H.note("no train-rm runs (rm_summary.json) found")
    colors = {f.label: f.color for f in facts}
    series = [
        Line(r.label, [e["step"] for e in r.evals], [e[LENGTH] for e in r.evals],
             color=colors.get(r.label))
        for r in ppo_runs
        if len(r.evals) >= 2 and all(LENGTH in e for e in r.evals)
    ]  # fmt: skip
    if series:
        lines(files / "ppo_length.png", series, "PPO iteration", "mean response length (tokens)",
              "Mean answer length on held-out prompts", size=(7.5, 4.0))  # fmt: skip
        body += H.figure("report_files/ppo_length.png", "mean length over iterations",
                         "Mean held-out answer length per method over training.")  # fmt: skip
    if ppo_runs:
        body += wrg_table(ppo_runs)
    return body


# --- sweep and ORPO -----------------------------------------------------------------------------


def _coef_key(params: Sequence[dict[str, Any]]) -> str | None:
    keys = {k for p in params for k in p}
    coefs = sorted(k for k in keys if k.rsplit(".", 1)[-1] in ("coef", "uwo_coef"))
    return coefs[0] if coefs else None


def _metric_name(table: list[dict[str, Any]]) -> str | None:
    names = [m for row in table for m in row.get("metrics", {})]
    for want in ("final_gold", "peak_gold"):
        if want in names:
            return want
    return next((m for m in names if "gold" in m), names[0] if names else None)


def sweep_section(runs: list[SweepRun], files: Path) -> str:
    from goodhartlab.analysis.plots import Line, lines

    body = ""
    for i, run in enumerate(runs):
        table = [r for r in run.summary.get("table") or [] if isinstance(r, dict)]
        body += f"<h3>{H.esc(run.label)}</h3>"
        if not table:
            body += H.note(f"{run.label}: sweep_summary.json has no table (still running?)")
            continue
        coef, metric = _coef_key([r.get("params", {}) for r in table]), _metric_name(table)
        if coef and metric:
            groups: dict[str, list[tuple[float, dict]]] = {}
            for r in table:
                p = r.get("params", {})
                rest = ", ".join(f"{k}={v}" for k, v in sorted(p.items()) if k != coef)
                m = r.get("metrics", {}).get(metric)
                if isinstance(p.get(coef), (int, float)) and m:
                    groups.setdefault(rest or "all", []).append((float(p[coef]), m))
            series = []
            for name, pts in groups.items():
                pts.sort(key=lambda t: t[0])
                series.append(Line(name, [x for x, _ in pts], [m["mean"] for _, m in pts],
                                   [m.get("lo", m["mean"]) for _, m in pts],
                                   [m.get("hi", m["mean"]) for _, m in pts]))  # fmt: skip
            xs = [x for s in series for x in s.x if x > 0]
            scale = "symlog" if xs and max(xs) / min(xs) >= 20 else "linear"
            png = f"sweep{i}.png"
            lines(files / png, series, coef, metric.replace("_", " "),
                  f"{run.label}: {metric} vs {coef} (band: interval over seeds)", scale)  # fmt: skip
            body += H.figure(f"report_files/{png}", "sweep", H.esc(
                f"Mean {metric} per {coef}, one line per setting of the other keys; the band is "
                "the interval stored by the sweep (over seeds)."))  # fmt: skip
        body += _sweep_table(table)
    return body


def _sweep_table(table: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in table for k in r.get("params", {})})
    metrics = sorted({m for r in table for m in r.get("metrics", {})})
    rows = []
    for r in table:
        ms = r.get("metrics", {})
        rows.append([*(str(r.get("params", {}).get(k, "")) for k in keys), r.get("n", "–"),
                     *(H.interval(ms[m].get("mean"), [ms[m].get("lo"), ms[m].get("hi")], 3)
                       if isinstance(ms.get(m), dict) else "–" for m in metrics)])  # fmt: skip
    return H.table([*keys, "n", *(f"{m} [interval]" for m in metrics)], rows)


def orpo_section(runs: list[OrpoRun]) -> str:
    body = H.paragraph(
        "ORPO here is occupancy-measure regularized policy optimization (Laidlaw et al.), not "
        "odds-ratio preference optimization. Episode returns of the final policy under the "
        "true and the proxy reward, mean ± 95% half-width.",
        "howto",
    )
    rows = []
    for run in runs:
        ev, cfg = run.results.get("eval", {}), run.config
        true, proxy = ev.get("true", {}), ev.get("proxy", {})
        rows.append([
            run.label, cfg.get("env", "–"), cfg.get("algo", "–"), cfg.get("reward_fun", "–"),
            cfg.get("om_divergence_type", "–"),
            ", ".join(f"{c:g}" for c in run.results.get("om_coefs") or cfg.get(
                "om_divergence_coeffs") or []) or "–",
            run.results.get("iterations", "–"),
            H.Cell(f"{H.num(true.get('mean'), 2)} ± {H.num(true.get('ci95'), 2)}"),
            H.Cell(f"{H.num(proxy.get('mean'), 2)} ± {H.num(proxy.get('ci95'), 2)}"),
        ])  # fmt: skip
    headers = ["run", "env", "algo", "trained on", "OM divergence", "OM coefs", "iterations",
               "true return", "proxy return"]  # fmt: skip
    return body + H.table(headers, rows)
