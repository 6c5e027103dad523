"""The best-of-n, length, sweep and ORPO parts of the Goodhart report.

Each `*_section` returns the section's HTML (tables, figures written into `files`, notes for
what is missing); `analysis.report` puts them in order.
"""

from __future__ import annotations

import math
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


def _gain(first: dict, last: dict, key: str) -> Any:
    """The length decomposition of `key` (proxy or gold) from the first to the last samples."""
    from goodhartlab.analysis.length import length_stratified_gain

    if np.isnan(first[key]).any() or np.isnan(last[key]).any():
        return None
    return length_stratified_gain(first["length"], first[key], last["length"], last[key])


def _gain_cells(gain: Any) -> list[H.Cell]:
    """total gain, non-length gain, share; without shared lengths there is no within-bin gain."""
    if gain is None:
        return [H.Cell("–")] * 3
    if not gain.shared_weight:
        no = H.Cell('<span class="small">no shared lengths</span>')
        return [H.Cell(H.num(gain.total_gain)), no, H.Cell("–")]
    share = gain.share_not_length
    text = "–" if math.isnan(share) else f"{100 * share:.0f}%".replace("-0%", "0%")
    return [H.Cell(H.num(gain.total_gain)), H.Cell(H.num(gain.within_gain)), H.Cell(text)]


def wrg_table(runs: list[PPORun]) -> tuple[str, dict[str, Any]]:
    """The non-length reward gain from the first to the last evaluation's samples, per method;
    also the proxy's length bins per method (for the arrow plot)."""
    from goodhartlab.analysis.correlation import pearson

    rows, skipped, bins = [], [], {}
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
        proxy, gold = _gain(first, last, "proxy"), _gain(first, last, "gold")
        if proxy is not None:
            bins[run.label] = proxy.bins
        r_len = [pearson(x["proxy"], x["length"]) for x in (first, last)]
        shared = (proxy or gold).shared_weight if (proxy or gold) else math.nan
        rows.append([
            run.label, f"{steps[0]} → {steps[-1]}",
            H.Cell(f"{first['length'].mean():.1f} → {last['length'].mean():.1f}"),
            H.Cell("–" if math.isnan(shared) else f"{100 * shared:.0f}%"),
            *_gain_cells(proxy), *_gain_cells(gold),
            H.Cell(f"{H.num(r_len[0], 2)} → {H.num(r_len[1], 2)}"),
        ])  # fmt: skip
    headers = ["method", "eval steps", "mean length", "samples in shared lengths", "proxy gain",
               "non-length proxy gain",
               "proxy: share not length", "gold gain", "non-length gold gain",
               "gold: share not length", "r(proxy, length)"]  # fmt: skip
    if not rows:
        return H.note("no PPO run has per-sample evaluation files (eval/*.json)"), bins
    out = H.table(headers, rows, "Length-stratified reward gain (first → last evaluation)")
    if skipped:
        out += H.note("no eval/eval-{step}.json pair (older run?): " + ", ".join(skipped))
    return out, bins


ARROW_METHODS = ("none", "length_penalty", "kl_reward")  # the paper: standard PPO vs a cure


def _arrows(bins: dict[str, Any], files: Path) -> str:
    from goodhartlab.analysis.plots import length_arrows

    chosen = [m for m in bins if m.rsplit("/", 1)[-1] in ARROW_METHODS][:3] or list(bins)[:3]
    if not chosen:
        return ""
    length_arrows(files / "length_arrows.png", {m: bins[m] for m in chosen},
                  "mean proxy reward in the bin", "Proxy reward within length bins: "
                  "first → last evaluation")  # fmt: skip
    return H.figure("report_files/length_arrows.png", "reward within length bins", H.esc(
        "Each arrow is one length bin (1 token): the mean proxy reward of the first "
        "evaluation's samples of that length (dot) to the last evaluation's (arrow head); "
        "opacity grows with the bin's sample count, and methods sit side by side within a bin. "
        "Arrows pointing up are gains at equal length; the rest of the total gain came from "
        "the policy moving to other lengths."))  # fmt: skip


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
        "shift); <b>samples in shared lengths</b>: how many samples fall in lengths both ends "
        "produce (low: the policy left the SFT lengths behind and the split says little).",
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
        table, bins = wrg_table(ppo_runs)
        body += table + _arrows(bins, files)
    return body


# --- sweep and ORPO -----------------------------------------------------------------------------


COEF_KEY = "regularizer.coef"
SWEEP_METRICS = ("peak_gold", "final_gold", "final_proxy", "final_sqrt_kl", "final_length",
                 "fit.d_star")  # fmt: skip


def _metric_name(table: list[dict[str, Any]]) -> str | None:
    names = [m for row in table for m in row.get("metrics", {})]
    for want in ("final_gold", "peak_gold"):
        if want in names:
            return want
    return next((m for m in names if "gold" in m), names[0] if names else None)


def _sweep_lines(table: list[dict[str, Any]], metric: str) -> list[Any]:
    """One line per regularizer (and setting of non-regularizer keys) over the coefficient;
    a lone point (no regularizer) becomes a flat dashed reference across the axis."""
    from goodhartlab.analysis.plots import Line

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        params, stats = row.get("params", {}), row.get("metrics", {}).get(metric)
        if isinstance(params.get(COEF_KEY), (int, float)) and isinstance(stats, dict):
            rest = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in sorted(params.items())
                    if not k.startswith("regularizer.")]  # fmt: skip
            method = row.get("method") or str(params.get("regularizer.kind", "run"))
            groups.setdefault(" ".join([method, *rest]), []).append(row)
    coefs = sorted({r["params"][COEF_KEY] for rows in groups.values() for r in rows})
    series = []
    for label, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["params"][COEF_KEY])
        style, x = "-o", [float(r["params"][COEF_KEY]) for r in rows]
        if len(rows) == 1 and len(coefs) > 1:
            rows, x, style = rows * 2, [coefs[0], coefs[-1]], "--"
        stats = [r["metrics"][metric] for r in rows]
        band = all(st.get("lo") is not None and st.get("hi") is not None for st in stats)
        series.append(Line(label, x, [st["mean"] for st in stats],
                           [st["lo"] for st in stats] if band else None,
                           [st["hi"] for st in stats] if band else None, style=style))  # fmt: skip
    return series


def sweep_section(runs: list[SweepRun], files: Path) -> str:
    from goodhartlab.analysis.plots import lines

    body = H.paragraph(
        "Coefficient sweeps (<code>goodhart sweep</code>): each cell is the mean over seeds with a 95% "
        "Student-t interval. The runs inside a sweep appear only here.",
        "howto",
    )
    for i, run in enumerate(runs):
        table = [r for r in run.summary.get("table") or [] if isinstance(r, dict)]
        jobs = run.summary.get("jobs") or []
        failed = sum(1 for j in jobs if isinstance(j, dict) and j.get("status") == "failed")
        body += f"<h3>{H.esc(run.label)} ({len(jobs)} jobs{f', {failed} failed' if failed else ''})</h3>"
        if not table:
            body += H.note(f"{run.label}: sweep_summary.json has no table (still running?)")
            continue
        metric = _metric_name(table)
        series = _sweep_lines(table, metric) if metric else []
        if series:
            xs = [x for s in series for x in s.x if x > 0]
            scale = "symlog" if xs and max(xs) / min(xs) >= 20 else "linear"
            png = f"sweep{i}.png"
            lines(files / png, series, "regularizer coefficient", metric.replace("_", " "),
                  f"{run.label}: {metric} vs coefficient", scale)  # fmt: skip
            body += H.figure(f"report_files/{png}", "sweep", H.esc(
                f"Mean {metric} per coefficient, one line per regularizer; the band is the 95% "
                "interval over seeds; dashed: a run without a coefficient (reference)."))  # fmt: skip
        else:
            body += H.note(f"{run.label}: no {COEF_KEY} in the sweep's cells: table only")
        body += _sweep_table(table)
    return body


def _mean_ci(st: Any) -> str:
    """'mean ± half' for a symmetric interval, 'mean [lo, hi]' otherwise, 'mean' without one."""
    if not isinstance(st, dict) or st.get("mean") is None:
        return "–"
    mean, lo, hi = st["mean"], st.get("lo"), st.get("hi")
    if lo is None or hi is None:
        return H.num(mean)
    if abs((hi - mean) - (mean - lo)) <= 1e-9 * max(1.0, abs(mean)):
        return f"{H.num(mean)} ± {H.num(hi - mean)}"
    return H.interval(mean, [lo, hi], 3)


def _sweep_table(table: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in table for k in r.get("params", {})))
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    present = list(dict.fromkeys(m for r in table for m in r.get("metrics", {})))
    metrics = [m for m in SWEEP_METRICS if m in present] or present[:5]
    rows = []
    for r in table:
        ms, params = r.get("metrics", {}), r.get("params", {})
        cells = ["–" if params.get(k) is None else str(params[k]) for k in keys]
        rows.append(
            [*cells, *(H.Cell(H.esc(_mean_ci(ms.get(m)))) for m in metrics), r.get("n", "–")]
        )
    return H.table([*names, *metrics, "seeds"], rows, "Mean over seeds ± 95% t half-width")


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
