"""The Goodhart report over hand-made run dirs: the numbers in the page, its images, its notes."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from goodhartlab.analysis.length import length_stratified_gain
from goodhartlab.analysis.report import build_report
from goodhartlab.analysis.report_data import discover
from goodhartlab.analysis.report_html import num
from goodhartlab.errors import GoodhartError


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; asserts the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def _table_row(html: str, first_cell: str) -> str:
    """The <tr> whose first cell ends with `first_cell` (after any colour swatch)."""
    for row in re.findall(r"<tr>(.*?)</tr>", html):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        if cells and re.sub(r"<[^>]+>", "", cells[0]) == first_cell:
            return row
    raise AssertionError(f"no table row for {first_cell!r}")


@pytest.fixture(scope="module")
def built(tmp_path_factory, kit) -> tuple[Path, Path, str]:
    """(runs root, report path, report HTML), built once for the content tests."""
    tmp = tmp_path_factory.mktemp("report")
    root = kit.build_fake_runs(tmp / "runs")
    out = build_report([root], tmp / "out", title="Test report", intro="Intro <text>")
    return root, out, out.read_text()


@pytest.fixture
def report(built) -> tuple[Path, str]:
    return built[1], built[2]


@pytest.fixture
def runs_root(built) -> Path:
    return built[0]


def test_every_image_is_a_relative_valid_png(report) -> None:
    path, html = report
    images = _images(html)
    assert len(images) >= 6  # ppo x2, bon x2, length, sweep
    for src in images:
        assert not src.startswith(("/", "file:", "http")), src
        width, height = _png_size(path.parent / src)
        assert width > 300 and height > 200
    assert "<script" not in html.lower()
    assert "could not be drawn" not in html
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # shareable, not mkstemp's 0600
    assert (path.parent / "report_files").stat().st_mode & 0o777 == 0o777 & ~mask


def test_ppo_table_shows_each_methods_numbers(report, runs_root: Path, kit) -> None:
    _, html = report
    for method in kit.PPO_METHODS:
        summary = json.loads((runs_root / "ppo" / method / "ppo_summary.json").read_text())
        row = _table_row(html, method)
        for value in (summary["peak_gold"], summary["final_gold"], summary["final_proxy"]):
            assert f"{value:.3f}" in row, (method, value)
        fit = summary["fit"]
        if fit["peaked"]:
            assert f"{num(fit['d_star'], 2)} [{num(fit['d_star_ci'][0], 2)}" in row
        assert f"{fit['observed_peak_d']:.2f}" in row
        assert f"{summary['final_length']:.1f}" in row
    # the unregularized run: d* = e^(1/0.6 - 1) = 1.95 from a noise-free curve
    none = json.loads((runs_root / "ppo" / "none" / "ppo_summary.json").read_text())["fit"]
    assert none["d_star"] == pytest.approx(np.exp(1 / 0.6 - 1), rel=1e-6)
    assert "1.95 [1.95, 1.95]" in _table_row(html, "none")
    # order: the demo's method order, not alphabetical
    ppo = html[html.index('<section id="ppo">') :]
    assert ppo.index(">none<") < ppo.index(">kl_reward<") < ppo.index(">gold<")
    # the run inside the sweep is shown by the sweep, not as a PPO method
    assert "kl-0.01-seed0" not in html


def test_header_says_what_to_look_at(report) -> None:
    _, html = report
    lead = html[html.index('class="lead"') : html.index("</div>", html.index('class="lead"'))]
    assert "Intro &lt;text&gt;" in lead  # the caller's intro, escaped
    assert "Without regularization (<b>none</b>)" in lead
    assert "the Goodhart pattern" in lead  # none: gold fell while proxy rose
    assert "Highest final gold: <b>gold</b>" in lead  # the control ends highest
    assert "<title>Test report</title>" in html


def test_bon_table_and_fits(report, kit) -> None:
    _, html = report
    for name, (alpha, beta) in kit.BON_CURVES.items():
        rows = kit.bon_rows(alpha, beta)
        best = max(rows, key=lambda r: r["gold_score"])
        row = _table_row(html, name)
        assert f"{best['gold_score']:.3f}" in row and f"<td>{best['n']}</td>" in row
        assert f"{rows[-1]['gold_score']:.3f}" in row
        assert f"{alpha / (2 * beta):.2f} [" in row  # exact form: fitted d* = alpha / 2 beta


def test_length_section(report, runs_root: Path, kit) -> None:
    _, html = report
    for name, r in kit.RM_RESULTS.items():
        assert f"{r:.3f}" in _table_row(html, name)
    # the non-length gain of `none`, recomputed from its first and last eval files
    first, last = (
        json.loads((runs_root / "ppo" / "none" / "eval" / f"eval-{s}.json").read_text())
        for s in (0, 100)
    )
    flat = [
        (np.array([r["lengths"][0] for r in x]), np.array([r["proxy_scores"][0] for r in x]))
        for x in (first, last)
    ]
    gain = length_stratified_gain(flat[0][0], flat[0][1], flat[1][0], flat[1][1])
    row = _table_row(html, "none")  # the first matching row is the PPO table's; find the WRG one
    wrg_rows = [r for r in re.findall(r"<tr>(.*?)</tr>", html) if "0 → 100" in r and ">none<" in r]
    assert len(wrg_rows) == 1, row
    assert f"{gain.total_gain:.3f}" in wrg_rows[0] and f"{gain.within_gain:.3f}" in wrg_rows[0]
    assert f"{100 * gain.share_not_length:.0f}%" in wrg_rows[0]
    assert (
        'src="report_files/length_arrows.png"' in html
        and 'src="report_files/ppo_length.png"' in html
    )


def test_sweep_and_orpo(report, kit) -> None:
    _, html = report
    assert "sweep0.png" in html
    for row in kit.SWEEP_TABLE[1:]:
        m = row["metrics"]["final_gold"]
        assert f"{m['mean']:.3f} ± 0.100" in html
    assert "<td>-0.560</td>" in html  # one seed: the mean without an interval
    sweep = html[html.index('<section id="sweep">') :]
    assert "<th>fit.d_star</th>" in sweep and "fit.alpha" not in sweep  # the headline metrics
    assert "<th>coef</th>" in sweep  # params by their last name when that is unambiguous
    row = _table_row(html, "tomato")
    assert "5.25 ± 0.41" in row and "7.50 ± 0.30" in row and "sqrt_chi2" in row


def test_missing_pieces_are_notes(tmp_path: Path, kit) -> None:
    root = tmp_path / "runs"
    kit.write_ppo(root / "old", "none", with_eval_files=False, with_fit=False)  # an older run
    (root / "broken").mkdir()
    (root / "broken" / "rm_summary.json").write_text("{not json")
    out = build_report([root, tmp_path / "absent"], tmp_path / "out")
    html = out.read_text()
    assert "broken" in html and "skipped" in html  # unreadable file: a note
    assert "absent: not a directory, skipped" in html
    assert "no PPO run has per-sample evaluation files" in html
    assert "could not be drawn" not in html
    # the fit is computed on the fly for a summary without one
    assert "1.95 [" in _table_row(html, "old")
    for src in _images(html):
        _png_size(out.parent / src)


def test_no_runs_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GoodhartError) as err:
        build_report([tmp_path / "empty", tmp_path / "nope"], tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and "no runs found" in message
    assert str(tmp_path / "empty") in message and str(tmp_path / "nope") in message


def test_discovery_labels_repeated_names_apart(tmp_path: Path, kit) -> None:
    for seed in (0, 1):
        kit.write_ppo(tmp_path / f"seed{seed}" / "none", "none", with_eval_files=False)
    runs = discover([tmp_path, tmp_path / "seed0"])  # overlapping roots: each run once
    assert sorted(r.label for r in runs.ppo) == ["seed0/none", "seed1/none"]


def test_cli_prints_the_path(runs_root: Path, tmp_path: Path, capsys) -> None:
    from goodhartlab.cli import main

    out = tmp_path / "cli"
    assert main(["report", str(runs_root / "ppo"), "--out", str(out), "--title", "T"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    assert "<title>T</title>" in (out / "report.html").read_text()
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(out)]) == 1
    assert "no runs found" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_smoke_run_has_fits_eval_files_and_a_report(tmp_path: Path) -> None:
    """`goodhart ppo --config smoke` with tiny models: ppo_summary.json["fit"], eval files."""
    from goodhartlab.cli import main
    from goodhartlab.models import load_policy, save_model
    from goodhartlab.models.reward import load_reward_model, save_reward_model

    policy, tok = load_policy("toy:policy", device="cpu", seed=0)
    save_model(policy, tok, tmp_path / "policy")
    rm, rtok = load_reward_model("toy:rm", device="cpu", seed=1)
    save_reward_model(rm, rtok, tmp_path / "rm", 0.0, 1.0)
    run = tmp_path / "runs" / "none"
    args = ["ppo", "--config", "smoke", "--out", str(run), "device=cpu",
            f"policy.source={tmp_path / 'policy'}", f"reward.reward_models=[{tmp_path / 'rm'}]",
            "generation.max_new_tokens=8", "eval.n_prompts=16", "ppo.lr=1e-3",
            "ppo.iterations=6", "eval.every=1", "checkpoint_every=100"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((run / "ppo_summary.json").read_text())
    fit = summary["fit"]
    assert fit["form"] == "rl" and fit["n_points"] == 7 and fit["dof"] == 4
    for key in ("alpha", "beta", "d_star", "peak", "r2", "alpha_ci", "beta_ci", "d_star_ci",
                "peak_ci", "observed_peak", "observed_peak_d", "observed_peak_step"):  # fmt: skip
        assert key in fit, key
    assert fit["observed_peak"] == summary["peak_gold"]
    assert sorted(p.name for p in (run / "eval").iterdir()) == [f"eval-{s}.json" for s in range(7)]
    rows = json.loads((run / "eval" / "eval-6.json").read_text())
    assert len(rows) == 16
    assert set(rows[0]) == {"instruction", "answers", "proxy_scores", "gold_scores", "lengths",
                            "ended", "kl", "kl_list"}  # fmt: skip
    assert set(rows[1]) == set(rows[0]) - {"kl_list"}  # Coste's kl_list: row 0 only
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    last = next(r for r in reversed(metrics) if "eval/length/mean" in r)
    assert np.mean([r["lengths"][0] for r in rows]) == pytest.approx(last["eval/length/mean"])
    assert np.mean([r["gold_scores"][0] for r in rows]) == pytest.approx(last["eval/reward/gold"])
    html = build_report([tmp_path / "runs"], tmp_path / "out").read_text()
    assert "could not be drawn" not in html and f"{summary['final_gold']:.3f}" in html
