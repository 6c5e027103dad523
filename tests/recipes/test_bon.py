"""`goodhart bon` end to end at tiny size: files in the seeds' layout, curves that match the core
estimator on the stored scores, ensemble gold reordered, scores reused, bad input rejected."""

import json

import numpy as np
import pytest

from goodhartlab.cli import main
from goodhartlab.core.best_of_n import bon_curve, kl_bon
from goodhartlab.core.ensemble import aggregate

NS = [1, 2, 4, 8]


@pytest.fixture(scope="module")
def ensemble(toy_rm_seeds):
    """Two random-init toy RMs behind a manifest, as train-rm writes them."""
    return toy_rm_seeds


def _args(out, ensemble, *extra):
    return [
        "bon", "--config", "smoke", "--out", str(out), "device=cpu",
        "generate.policy=toy:policy", "generate.n_prompts=6", "generate.n_samples=8",
        "generate.sampling.max_new_tokens=8", f"reward_models=[{ensemble}]",
        f"sample_ns=[{','.join(map(str, NS))}]", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def bon_run(tmp_path_factory, ensemble):
    out = tmp_path_factory.mktemp("bon") / "run"
    assert main(_args(out, ensemble)) == 0
    return out


def _scored(run):
    rows = [json.loads(x) for x in (run / "scored_generations.jsonl").read_text().splitlines()]
    gold = np.array([r["gold_scores"] for r in rows])
    keys = list(rows[0]["proxy_scores"])
    proxy = np.stack([[r["proxy_scores"][k] for r in rows] for k in keys])
    return rows, gold, proxy


def test_results_match_the_core_estimator_on_stored_scores(bon_run) -> None:
    rows, gold, proxy = _scored(bon_run)
    assert len(rows) == 6 and all(len(r["answers"]) == 8 and len(r["ended"]) == 8 for r in rows)
    assert proxy.shape == (2, 6, 8)
    for i, name in enumerate(("rm_seed1", "rm_seed2")):
        res = json.loads((bon_run / "single" / name / "bon_sampled_results.json").read_text())
        assert [r["n"] for r in res] == NS
        assert set(res[0]) == {"n", "kl_bon", "proxy_score", "gold_score"}
        ref = bon_curve(proxy[i], gold, NS)
        assert np.allclose([r["proxy_score"] for r in res], ref.proxy)
        assert np.allclose([r["gold_score"] for r in res], ref.gold)
        assert np.allclose([r["kl_bon"] for r in res], kl_bon(NS))
        assert np.all(np.diff([r["proxy_score"] for r in res]) >= -1e-12)  # E[max] grows with n
    for png in ("bon_gold_vs_n.png", "bon_proxy_vs_kl.png"):
        assert (bon_run / png).stat().st_size > 1000


def test_ensemble_gold_follows_the_ensemble_ranking(bon_run) -> None:
    _, gold, proxy = _scored(bon_run)
    res = json.loads((bon_run / "ensemble" / "wco" / "bon_sampled_results.json").read_text())
    combined = aggregate(proxy, "wco")
    # best-of-N (n = N = 8) picks each prompt's top combined score: its gold, averaged
    top = np.argmax(combined + 1e-9 * np.arange(8), axis=1)  # ties: the later sample wins
    assert res[-1]["n"] == 8
    assert np.isclose(res[-1]["gold_score"], gold[np.arange(6), top].mean())
    assert np.isclose(res[-1]["proxy_score"], combined.max(axis=1).mean())
    assert (bon_run / "ensemble" / "uwo_0.5" / "bon_sampled_results.json").exists()
    summary = json.loads((bon_run / "bon_summary.json").read_text())
    assert set(summary["curves"]) >= {"single/rm_seed1", "ensemble/mean", "ensemble/wco"}


def test_summary_holds_the_fitted_gao_curve_of_each_curve(bon_run) -> None:
    from goodhartlab.analysis.fits import fit_bon_results

    summary = json.loads((bon_run / "bon_summary.json").read_text())
    for name, entry in summary["curves"].items():
        rows = json.loads((bon_run / name / "bon_sampled_results.json").read_text())
        assert entry["fit"] == json.loads(json.dumps(fit_bon_results(rows))), name
        assert entry["fit"]["form"] == "bon"
    assert (bon_run / "bon_gold_proxy_vs_kl_fit.png").stat().st_size > 1000


def test_rerun_on_stored_generations_reuses_scores(bon_run, ensemble, tmp_path, monkeypatch):
    from goodhartlab.recipes import rm_members

    def no_scoring(*a, **k):
        raise AssertionError("stored proxy scores should have been reused")

    monkeypatch.setattr(rm_members, "load_reward_model", no_scoring)
    out = tmp_path / "again"
    stored = bon_run / "scored_generations.jsonl"
    args = _args(out, ensemble, f"generations={stored}", "objectives=[uwo]", "uwo_coefs=[1.0,2.0]")
    assert main(args) == 0
    a = json.loads((out / "single" / "rm_seed1" / "bon_sampled_results.json").read_text())
    b = json.loads((bon_run / "single" / "rm_seed1" / "bon_sampled_results.json").read_text())
    assert a == b
    assert (out / "ensemble" / "uwo_2" / "bon_sampled_results.json").exists()
    assert not (out / "ensemble" / "wco").exists()


def test_stored_generations_are_read_once(bon_run, monkeypatch) -> None:
    """load_scored takes the validated columns and its own (ended, proxy_scores) from one read:
    Coste's files are 1000 prompts x 12,600 answers, and a hub dataset would download twice."""
    from goodhartlab.data import formats, records
    from goodhartlab.recipes import bon_scored

    calls = []

    def counting(path, *a, **k):
        calls.append(path)
        return records.read_records(path, *a, **k)

    monkeypatch.setattr(formats, "read_records", counting)
    monkeypatch.setattr(bon_scored, "read_records", counting)
    scored = bon_scored.load_scored(bon_run / "scored_generations.jsonl")
    assert len(calls) == 1
    rows, gold, proxy = _scored(bon_run)
    assert np.array_equal(scored.gold, gold)
    assert np.array_equal(np.stack(list(scored.proxy.values())), proxy)
    assert scored.ended is not None and scored.ended.tolist() == [r["ended"] for r in rows]


def test_seed_layout_with_file_gold(ensemble, tmp_path) -> None:
    path = tmp_path / "gens.jsonl"
    rows = [
        {"instruction": "list two fruits", "input": "", "answers": ["apple and pear"] * 4,
         "gold_scores": [0.1, 0.2, 0.3, 0.4]},
        {"instruction": "list one colors", "input": "", "answers": ["red", "blue", "red", "green"],
         "gold_scores": [1.0, 2.0, 3.0, 4.0]},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "seedfmt"
    assert main(_args(out, ensemble, f"generations={path}", "sample_ns=[1,4]")) == 0
    res = json.loads((out / "single" / "rm_seed1" / "bon_sampled_results.json").read_text())
    assert np.isclose(res[0]["gold_score"], (0.25 + 2.5) / 2)  # n = 1: the mean gold


def test_bad_generations_file_is_one_line_error(ensemble, tmp_path, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"prompt": "list two fruits", "answers": ["a", "b"], "gold_scores": [1.0, 2.0]}
    bad = {"prompt": "list two fruits", "answers": ["a", "b"], "gold_scores": [1.0, "x"]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "bad_run"
    assert main(_args(out, ensemble, f"generations={path}")) == 1  # input errors exit 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.jsonl:2" in err[0] and "gold_scores" in err[0]
    assert not out.exists()  # nothing half-written


def test_seed_placeholder_paths_are_the_members(bon_run, ensemble, tmp_path, capsys) -> None:
    """Coste's convention: `reward_models=['RUN/rm_seed{seed}/model'] seeds=[1,2]`."""
    out = tmp_path / "seeds"
    pattern = f"reward_models=['{ensemble}/rm_seed{{seed}}/model']"
    args = _args(out, ensemble, pattern, "seeds=[1,2]")
    assert main(args) == 0
    summary = json.loads((out / "bon_summary.json").read_text())
    assert summary["members"] == [str(ensemble / f"rm_seed{s}" / "model") for s in (1, 2)]
    for name in ("single/rm_seed1", "single/rm_seed2", "ensemble/wco"):
        a = json.loads((out / name / "bon_sampled_results.json").read_text())
        b = json.loads((bon_run / name / "bon_sampled_results.json").read_text())
        assert a == b, name  # the same members as the manifest's, same seed: same curves
    capsys.readouterr()
    assert main(_args(tmp_path / "no_seeds", ensemble, pattern)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has a {seed} placeholder; set seeds=[1,2,...]" in err[0]
    assert main(["validate", "bon", f"reward_models=[{ensemble}]", "seeds=[1]"]) == 2
    assert "no path in 'reward_models' has a {seed} placeholder" in capsys.readouterr().err


def test_big_n_keeps_the_first_answers_of_each_prompt(bon_run, ensemble, tmp_path) -> None:
    rows, gold, proxy = _scored(bon_run)
    out = tmp_path / "big_n"
    stored = bon_run / "scored_generations.jsonl"
    assert (
        main(_args(out, ensemble, f"generations={stored}", "big_n=4", "sample_ns=[1,2,4,8]")) == 0
    )
    res = json.loads((out / "single" / "rm_seed1" / "bon_sampled_results.json").read_text())
    ref = bon_curve(proxy[0][:, :4], gold[:, :4], [1, 2, 4])
    assert [r["n"] for r in res] == [1, 2, 4]  # n > big_n dropped, as the seeds do
    assert np.allclose([r["gold_score"] for r in res], ref.gold)
    kept = [json.loads(x) for x in (out / "scored_generations.jsonl").read_text().splitlines()]
    assert all(r["answers"] == s["answers"][:4] for r, s in zip(kept, rows))
    assert main(_args(tmp_path / "too_big", ensemble, f"generations={stored}", "big_n=9")) == 1


def test_big_n_above_the_answers_to_sample_fails_before_sampling(tmp_path, capsys) -> None:
    """big_n > generate.n_samples can never be met: a config error from `validate` and before
    the policy samples, not an input error after the whole sampling pass."""
    capsys.readouterr()
    args = ["--config", "smoke", "big_n=33", "generate.n_samples=32"]
    assert main(["validate", "bon", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("field 'big_n': 33 is more than generate.n_samples=32 answers to sample")
    assert main(["bon", *args, "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "b").exists()
    assert main(["validate", "bon", "--config", "smoke", "big_n=32"]) == 0
