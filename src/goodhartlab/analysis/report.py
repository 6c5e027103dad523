"""The Goodhart report: one static HTML page (plus PNGs) over finished runs.

`build_report(run_dirs, out)` finds every run under `run_dirs` by its files (see
`analysis.report_data`), then writes OUT/report.html and OUT/report_files/*.png:
  1. a header that says what to look at, generated from the numbers;
  2. PPO: a summary table per method and gold/proxy vs √KL (with Gao fits and predicted peaks)
     and vs iteration;
  3. best-of-n: gold/proxy vs KL_bon per single RM and ensemble objective, fits, a table;
  4. length: reward-length correlation per RM, length over iterations, non-length reward gain;
  5. sweeps and ORPO runs when present.
A missing piece becomes a note in the page; no runs at all is a GoodhartError.
Why static: it must open from the file system, be mailed or archived, with no server and no JS.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from pathlib import Path

from goodhartlab.analysis import report_html as H
from goodhartlab.analysis import report_ppo, report_sections
from goodhartlab.analysis.report_data import Runs, discover
from goodhartlab.analysis.report_ppo import PPOFacts
from goodhartlab.errors import GoodhartError

REPORT_FILE = "report.html"
FILES_DIR = "report_files"


def _name(label: str) -> str:
    """A method label in bold; the control run named "gold" says what it is."""
    control = " (RL on gold itself)" if label.rsplit("/", 1)[-1] == "gold" else ""
    return f"<b>{H.esc(label)}</b>{control}"


def _ppo_sentences(facts: list[PPOFacts]) -> list[str]:
    """What the PPO runs show, in plain words with the numbers."""
    out = []
    peak = max(facts, key=lambda f: f.peak_gold)
    final = max(facts, key=lambda f: f.final_gold)
    g0 = facts[0].initial_gold
    out.append(
        f"Gold starts at <b>{H.num(g0)}</b> (the SFT policy). Highest gold peak: "
        f"{_name(peak.label)}, {H.num(peak.peak_gold)} at iteration {peak.peak_step} "
        f"(√KL {H.num(peak.peak_sqrt_kl, 2)}). Highest final gold: {_name(final.label)}, "
        f"{H.num(final.final_gold)}."
    )
    proxied = [f for f in facts if f.label.rsplit("/", 1)[-1] != "gold"]
    if proxied and len(proxied) < len(facts) and (peak not in proxied or final not in proxied):
        p_peak = max(proxied, key=lambda f: f.peak_gold)
        p_final = max(proxied, key=lambda f: f.final_gold)
        out.append(
            f"Among the methods that optimize a proxy: highest peak {_name(p_peak.label)} "
            f"({H.num(p_peak.peak_gold)}), highest final gold {_name(p_final.label)} "
            f"({H.num(p_final.final_gold)})."
        )
    base = next((f for f in facts if f.label.rsplit("/", 1)[-1] == "none"), None)
    if base is not None:
        verdict = (
            "the Goodhart pattern: the proxy kept rising after gold turned down"
            if base.gold_fell and base.proxy_rose
            else (
                "gold fell from its peak"
                if base.gold_fell
                else "gold did not fall (no clear overoptimization)"
            )
        )
        proxy = (
            f"; proxy {H.num(base.initial_proxy)} → {H.num(base.final_proxy)}"
            if base.initial_proxy is not None
            else ""
        )
        out.append(
            f"Without regularization (<b>{H.esc(base.label)}</b>), gold peaked at "
            f"{H.num(base.peak_gold)} (iteration {base.peak_step}) and ended at "
            f"{H.num(base.final_gold)}{proxy}: {verdict}."
        )
    hacked = [f.label for f in facts if f.gold_fell and f.proxy_rose and f is not base]
    if hacked:
        out.append(
            "Gold also fell while the proxy rose for: " + ", ".join(map(H.esc, hacked)) + "."
        )
    held = [f.label for f in facts if not f.gold_fell and f is not base]
    if held:
        out.append("Gold held up (ended within 20% of its rise from the peak) for: "
                   + ", ".join(map(H.esc, held)) + ".")  # fmt: skip
    if base is not None and base.initial_length and base.final_length:
        out.append(
            f"Answer length under {H.esc(base.label)}: {base.initial_length:.1f} → "
            f"{base.final_length:.1f} tokens."
        )
    return out


def _bon_sentences(runs: Runs) -> list[str]:
    out = []
    for run in runs.bon:
        best = max(
            ((name, max(rows, key=lambda r: r["gold_score"])) for name, rows in run.curves.items()),
            key=lambda t: t[1]["gold_score"],
            default=None,
        )
        if best is not None:
            out.append(
                f"Best-of-n ({H.esc(run.label)}): the highest gold is {H.num(best[1]['gold_score'])}"
                f" with <b>{H.esc(best[0])}</b> at n = {best[1]['n']}."
            )
    return out


def lead(runs: Runs, facts: list[PPOFacts], intro: str | None) -> str:
    """The header: the caller's intro, then the findings, then how to read the page."""
    found = [f"{len(runs.ppo)} PPO", f"{len(runs.bon)} best-of-n", f"{len(runs.rm)} reward-model",
             f"{len(runs.orpo)} ORPO", f"{len(runs.sweeps)} sweep"]  # fmt: skip
    items = (_ppo_sentences(facts) if facts else []) + _bon_sentences(runs)
    text = H.paragraph(H.esc(intro), "intro") if intro else ""
    if items:
        text += (
            "<b>What these runs show</b><ul>" + "".join(f"<li>{s}</li>" for s in items) + "</ul>"
        )
    text += H.paragraph(
        "How to read it: <b>gold</b> is the true objective, <b>proxy</b> the learned reward being "
        "optimized. Overoptimization is gold peaking and then falling while the proxy keeps "
        "rising; a good mitigation peaks high and falls late (or not at all). Runs found: "
        + ", ".join(n for n in found if not n.startswith("0 "))
        + ".",
        "small",
    )
    return f'<div class="lead">{text}</div>'


def _guard(name: str, build: Callable[[], str]) -> str:
    """A section that fails on odd data becomes a note; the rest of the report still appears."""
    try:
        return build()
    except (KeyError, ValueError, TypeError, IndexError, OSError) as exc:
        return H.note(f"the {name} section could not be drawn: {type(exc).__name__}: {exc}")


def build_report(
    run_dirs: Sequence[Path], out: Path, title: str | None = None, intro: str | None = None
) -> Path:
    """Write OUT/report.html and OUT/report_files/*.png for the runs under `run_dirs`."""
    from goodhartlab.analysis.plots import method_colors
    from goodhartlab.runs.atomic import atomic_directory, atomic_write_text

    run_dirs = [Path(d) for d in run_dirs]
    runs = discover(run_dirs)
    if runs.empty():
        raise GoodhartError(
            f"no runs found in {', '.join(map(str, run_dirs))} (looked for ppo_summary.json, "
            "bon_summary.json, rm_summary.json, orpo_results.json, sweep_summary.json)"
        )
    out = Path(out)
    colors = method_colors([r.label for r in runs.ppo])
    facts = [f for r in runs.ppo if (f := report_ppo.ppo_facts(r, colors[r.label]))]
    sections: list[tuple[str, str, str]] = []
    with atomic_directory(out / FILES_DIR) as files:
        if runs.ppo:
            body = _guard("PPO", lambda: report_ppo.section(runs.ppo, facts, files))
            sections.append(("ppo", "PPO: gold and proxy per method", body))
        if runs.bon:
            body = _guard("best-of-n", lambda: report_sections.bon_section(runs.bon, files))
            sections.append(("bon", "Best-of-n", body))
        if runs.rm or runs.ppo:
            body = _guard("length", lambda: report_sections.length_section(
                runs.rm, runs.ppo, facts, files))  # fmt: skip
            sections.append(("length", "Length analysis", body))
        if runs.sweeps:
            body = _guard("sweep", lambda: report_sections.sweep_section(runs.sweeps, files))
            sections.append(("sweep", "Sweeps", body))
        if runs.orpo:
            body = _guard("ORPO", lambda: report_sections.orpo_section(runs.orpo))
            sections.append(("orpo", "ORPO (occupancy-measure regularization)", body))
    notes = "".join(H.note(n) for n in runs.notes)
    body = notes + "".join(H.section(a, t, b) for a, t, b in sections)
    meta = H.esc(f"{datetime.datetime.now():%Y-%m-%d %H:%M} · from {', '.join(map(str, run_dirs))}")
    page = H.page(title or "The Goodhart report", meta, lead(runs, facts, intro),
                  [(a, t) for a, t, _ in sections], body)  # fmt: skip
    path = atomic_write_text(out / REPORT_FILE, page)
    _readable(out)
    return path


def _readable(out: Path) -> None:
    """Atomic writes leave 0600 files (mkstemp) and a 0700 folder (mkdtemp); a report is made
    to be shared or served, so give it the modes the umask allows."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    (out / FILES_DIR).chmod(0o777 & ~mask)
    for f in [out / REPORT_FILE, *(out / FILES_DIR).iterdir()]:
        f.chmod(0o666 & ~mask)
