"""`goodhart train-rm` / `evaluate-rm` end to end at smoke size, on fast inputs.

Two sources of pairs keep this quick: a tiny SFT policy trained in a fixture (the toy-sampling
path: policy samples labelled by gold) and the toy world's teacher pairs written to files (the
user-file path, with a random-init tiny backbone). GOODHART_CACHE points at a temp dir, so no
test ever trains the full toy SFT policy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from goodhartlab.cli import main

SMALL_FILE_RUN = [
    "train.epochs=2",
    "train.batch_size=32",
    "train.checkpoint_every=10",
    "optim.lr=3e-3",
    "model.source=toy:rm",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def tiny_sft(tmp_path_factory) -> str:
    """A smoke-size SFT policy (well under a minute): the backbone and sampler of toy pairs."""
    out = tmp_path_factory.mktemp("sft") / "run"
    args = ["sft", "--config", "smoke", "--out", str(out), "data.toy.n_train_demos=1500",
            "sample.n_prompts=0", "train.eval_every=1000", "train.checkpoint_every=1000"]  # fmt: skip
    assert main(args) == 0
    return str(out / "model")


@pytest.fixture(scope="module")
def teacher_pairs(tmp_path_factory):
    """Teacher pairs labelled by gold (with gold columns): 640 train, 300 held out."""
    from goodhartlab.toyworld.world import ToyWorldSpec, make

    out = tmp_path_factory.mktemp("world")
    make(out, ToyWorldSpec(n_train_demos=10, n_eval_prompts=10, n_train_pairs=640,
                           n_eval_pairs=300, label_flip_prob=0.0))  # fmt: skip
    return out / "prefs_train.jsonl", out / "prefs_eval.jsonl"


def _file_args(pairs, *extra: str) -> list[str]:
    train, held_out = pairs
    return [f"data.train={train}", f"data.eval={held_out}", *SMALL_FILE_RUN, *extra]


def _metrics(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tiny_sft, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "run"
    args = ["train-rm", "--config", "smoke", "--out", str(out), f"data.policy={tiny_sft}",
            f"model.source={tiny_sft}", "seeds=[1,2]"]  # fmt: skip
    assert main(args) == 0
    return out


def test_smoke_run_writes_members_manifest_and_evaluation(smoke_run) -> None:
    summary = json.loads((smoke_run / "rm_summary.json").read_text())
    assert set(summary["members"]) == {"1", "2"}
    manifest = json.loads((smoke_run / "ensemble.json").read_text())
    assert [m["path"] for m in manifest["members"]] == ["rm_seed1/model", "rm_seed2/model"]
    prefs = _metrics(smoke_run / "prefs_train.jsonl")
    assert len(prefs) > 400 and {"gold_chosen", "gold_rejected", "flipped"} <= set(prefs[0])
    for seed in (1, 2):
        res = summary["members"][str(seed)]
        assert 0.0 <= res["accuracy_vs_gold"] <= 1.0 and res["n_untied_pairs"] > 50
        assert np.isfinite([res["rank_corr_gold"], res["reward_length_pearson"]]).all()
        member = smoke_run / f"rm_seed{seed}"
        assert (member / "proxy_vs_gold.png").stat().st_size > 1000
        config = json.loads((member / "model" / "config.json").read_text())
        assert config["score_mean"] == pytest.approx(res["score_mean"])
        rows = _metrics(member / "cartography.jsonl")
        assert len(rows) == len(prefs) and {r["epoch"] for r in rows} == {0}
    # head init and data order differ per seed
    first = _metrics(smoke_run / "rm_seed1" / "metrics.jsonl")
    second = _metrics(smoke_run / "rm_seed2" / "metrics.jsonl")
    assert first[0]["loss/total"] != second[0]["loss/total"]
    names = ("policy_samples", "filler_stuffed", "filler_spread", "over_long", "repeated_item")
    expected = {f"ensemble_{kind}/{n}" for kind in ("std", "zstd") for n in names}
    assert set(summary["ensemble"]) == expected


def test_plain_transformers_loads_the_rm_with_the_same_scores(smoke_run) -> None:
    from transformers import AutoModelForSequenceClassification

    from goodhartlab.models.reward import encode_for_reward, load_reward_model, score_texts

    path = smoke_run / "rm_seed1" / "model"
    ours, tok = load_reward_model(str(path))
    plain = AutoModelForSequenceClassification.from_pretrained(path).eval()
    prompts = ["list two colors", "list four tools", "list one fruits"]
    responses = ["red and blue", "hammer , saw , drill and chisel great", ""]
    ids, mask = encode_for_reward(tok, prompts, responses)
    with torch.no_grad():
        theirs = plain(input_ids=ids, attention_mask=mask).logits[:, 0].double().numpy()
    np.testing.assert_array_equal(score_texts(ours, tok, prompts, responses), theirs)


def test_one_member_ensemble_equals_the_single_rm(smoke_run) -> None:
    from goodhartlab.core.ensemble import aggregate
    from goodhartlab.models.reward import load_reward_model, load_reward_models, score_texts

    path = smoke_run / "rm_seed1" / "model"
    single, tok = load_reward_model(str(path))
    prompts, responses = ["list two colors"] * 2, ["red and blue", "red red thanks"]
    expected = score_texts(single.eval(), tok, prompts, responses)
    (member,) = load_reward_models(path)
    scores = score_texts(*member, prompts, responses)[None]
    for method in ("mean", "wco", "uwo"):
        np.testing.assert_array_equal(aggregate(scores, method, uwo_coef=0.7, ddof=0), expected)


def test_evaluate_rm_recipe_scores_the_ensemble(smoke_run, tiny_sft, tmp_path) -> None:
    from goodhartlab.config import dump_config, load_config, resolve_config_path
    from goodhartlab.config.schemas import EvaluateRMConfig
    from goodhartlab.recipes import evaluate_rm
    from goodhartlab.runs import RunDir

    path = resolve_config_path("evaluate-rm", "smoke")
    cfg = load_config(EvaluateRMConfig, path, [f"rm={smoke_run}", f"data.policy={tiny_sft}",
                                               "ensemble.method=uwo", "ensemble.ddof=1"])  # fmt: skip
    report = evaluate_rm.run(cfg, RunDir.prepare(tmp_path / "eval", dump_config(cfg)))
    assert set(report["members"]) == {"rm_seed1", "rm_seed2"}
    assert report["ensemble"]["method"] == "uwo" and "accuracy_vs_gold" in report["ensemble"]
    assert (tmp_path / "eval" / "proxy_vs_gold_ensemble.png").exists()
    config = json.loads((smoke_run / "rm_seed1" / "model" / "config.json").read_text())
    assert config["score_std"] == pytest.approx(report["members"]["rm_seed1"]["score_std"])


def test_rm_beats_chance_on_teacher_pairs(teacher_pairs, tmp_path) -> None:
    out = tmp_path / "run"
    assert (
        main(["train-rm", "--config", "smoke", "--out", str(out), *_file_args(teacher_pairs)]) == 0
    )
    res = json.loads((out / "rm_summary.json").read_text())["members"]["1"]
    assert res["accuracy_vs_gold"] > 0.65, res
    stats = _metrics(out / "rm_seed1" / "cartography_stats.jsonl")
    assert len(stats) == 640 and all(0 < r["confidence"] < 1 for r in stats)


@pytest.mark.parametrize("kind", ["bt", "inform"])
def test_killed_run_resumes_to_the_same_numbers(
    teacher_pairs, tmp_path, kind, kill_at_checkpoint
) -> None:
    extra = ["seeds=[1,2]"] + (["inform.enabled=true", "inform.latent_dim=8"] * (kind == "inform"))
    args = ["train-rm", "--config", "smoke", *_file_args(teacher_pairs, *extra)]
    ref = tmp_path / "ref"
    assert main([*args, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    kill_at_checkpoint([*args, "--out", str(out)], out / "rm_seed1" / "checkpoints" / "latest")
    assert not (out / "rm_summary.json").exists()
    assert main([*args, "--out", str(out), "--resume"]) == 0
    ours = json.loads((out / "rm_summary.json").read_text())
    theirs = json.loads((ref / "rm_summary.json").read_text())
    assert ours["members"] == theirs["members"] and ours["ensemble"] == theirs["ensemble"]
    for seed in (1, 2):
        member = f"rm_seed{seed}"
        assert _metrics(out / member / "metrics.jsonl") == _metrics(ref / member / "metrics.jsonl")
        carto = (out / member / "cartography.jsonl").read_text()
        assert carto == (ref / member / "cartography.jsonl").read_text()
        weights = sorted((ref / member / "model").glob("*.safetensors"))
        assert len(weights) == (2 if kind == "inform" else 1)
        for path in weights:
            assert (out / member / "model" / path.name).read_bytes() == path.read_bytes()


def test_inform_rm_trains_saves_and_exposes_latents(teacher_pairs, tmp_path) -> None:
    from goodhartlab.models.reward import load_reward_models, score_texts

    out = tmp_path / "run"
    extra = ("inform.enabled=true", "inform.latent_dim=8", "inform.kl_mode=mean_pooled")
    assert main(["train-rm", "--config", "smoke", "--out", str(out),
                 *_file_args(teacher_pairs, *extra)]) == 0  # fmt: skip
    rows = _metrics(out / "rm_seed1" / "metrics.jsonl")
    assert all(r["loss/ib_kl"] >= 0 for r in rows)
    res = json.loads((out / "rm_summary.json").read_text())["members"]["1"]
    assert res["accuracy_vs_gold"] > 0.6, res
    saved = json.loads((out / "rm_seed1" / "model" / "inform_config.json").read_text())
    assert saved["latent_dim"] == 8 and saved["score_mean"] == pytest.approx(res["score_mean"])
    ((model, tok),) = load_reward_models(out)
    scores, latents = score_texts(model, tok, ["list two colors"], ["red"], return_latents=True)
    assert scores.shape == (1,) and latents.shape == (1, 8)


def test_balance_len_equalizes_the_length_heuristic(teacher_pairs, tmp_path) -> None:
    out = tmp_path / "run"
    extra = ("data.balance_len=true", "train.log_cartography=false", "train.epochs=1")
    assert main(["train-rm", "--config", "smoke", "--out", str(out),
                 *_file_args(teacher_pairs, *extra)]) == 0  # fmt: skip
    data = json.loads((out / "rm_summary.json").read_text())["data"]
    assert data["n_pairs_out"] < data["n_pairs_in"]
    before, after = data["length_before"], data["length_after"]
    assert before["frac_chosen_longer"] > 0.55
    # Toy length differences all fall in the mirrored bins (-10, 0] / (0, 10]; equal lengths
    # count as "chosen shorter" (the seed's bin edges), so "chosen longer" is exactly half.
    assert after["frac_chosen_longer"] == pytest.approx(0.5, abs=0.01)


def test_balance_len_preset_keeps_equal_lengths(teacher_pairs, tmp_path) -> None:
    out = tmp_path / "run"
    extra = ("train.log_cartography=false", "train.epochs=1")
    assert main(["train-rm", "--config", "balance_len", "--out", str(out),
                 *_file_args(teacher_pairs, *extra)]) == 0  # fmt: skip
    data = json.loads((out / "rm_summary.json").read_text())["data"]
    before, after = data["length_before"], data["length_after"]
    n_equal = round(before["frac_equal"] * before["n"])
    assert round(after["frac_equal"] * after["n"]) == n_equal  # all kept
    assert after["mean_diff"] == 0.0  # every |Δ| has as many longer as shorter chosen


def _bad_run(tmp_path, capsys, rows: list[str]) -> str:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(rows) + "\n")
    args = ["train-rm", "--config", "smoke", "--out", str(tmp_path / "run"),
            f"data.train={bad}", f"data.eval={bad}", "model.source=toy:rm"]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    return err


def test_malformed_line_names_file_and_line(tmp_path, capsys) -> None:
    good = '{"prompt": "list one colors", "chosen": "red", "rejected": "dog"}'
    err = _bad_run(tmp_path, capsys, [good, good, '{"prompt": "list one colors", "chosen": '])
    assert "bad.jsonl:3" in err


def test_missing_column_names_file_line_and_field(tmp_path, capsys) -> None:
    good = '{"prompt": "list one colors", "chosen": "red", "rejected": "dog"}'
    err = _bad_run(tmp_path, capsys, [good, '{"prompt": "list one colors", "chosen": "red"}'])
    assert "bad.jsonl:2" in err and "rejected" in err


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    """A random-init 2-layer BERT on the toy tokenizer: an encoder backbone."""
    from transformers import BertConfig, BertModel

    from goodhartlab.toyworld.vocab import build_tokenizer

    out = tmp_path_factory.mktemp("bert")
    tok = build_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                     pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.mark.parametrize("inform", [False, True])
def test_encoder_backbone_trains(teacher_pairs, tiny_encoder, tmp_path, inform) -> None:
    from goodhartlab.models.reward import encode_for_reward, load_reward_model, score_texts

    out = tmp_path / "run"
    extra = (f"model.source={tiny_encoder}", f"inform.enabled={str(inform).lower()}")
    assert main(["train-rm", "--config", "smoke", "--out", str(out),
                 *_file_args(teacher_pairs, *extra)]) == 0  # fmt: skip
    res = json.loads((out / "rm_summary.json").read_text())["members"]["1"]
    assert res["accuracy_vs_gold"] > 0.6, res
    if not inform:
        from transformers import AutoModelForSequenceClassification

        path = out / "rm_seed1" / "model"
        ours, tok = load_reward_model(str(path))
        plain = AutoModelForSequenceClassification.from_pretrained(path).eval()
        assert plain.config.model_type == "bert"
        prompts, responses = ["list two colors", "list one tools"], ["red and blue", "saw"]
        ids, mask = encode_for_reward(tok, prompts, responses)
        with torch.no_grad():
            theirs = plain(input_ids=ids, attention_mask=mask).logits[:, 0].double().numpy()
        np.testing.assert_array_equal(score_texts(ours, tok, prompts, responses), theirs)


def test_a_member_seeds_the_global_generator(tmp_path) -> None:
    """torch seeds its global generator at random per process; a member must not depend on it
    (dropout draws from it), so the state after opening a member is the same whatever came before."""
    from goodhartlab.config import load_config, resolve_config_path
    from goodhartlab.config.schemas import TrainRMConfig
    from goodhartlab.recipes.train_rm import open_member
    from goodhartlab.runs import RunDir

    preset = resolve_config_path("train-rm", "smoke")
    cfg = load_config(TrainRMConfig, preset, ["model.source=toy:rm", "device=cpu"])
    states = []
    for before in (1, 2):
        torch.manual_seed(before)
        run = RunDir.prepare(tmp_path / str(before), "")
        open_member(cfg, 3, run, resume=False)
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])
