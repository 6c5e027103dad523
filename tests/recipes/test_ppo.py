"""`goodhart ppo` / `goodhart evaluate` at tiny size: outputs, invariants, resume, bad input."""

import json

import numpy as np
import pytest
import torch

from goodhartlab.cli import main
from goodhartlab.models.reward import load_reward_model, save_reward_model
from goodhartlab.recipes import ppo
from goodhartlab.recipes.ppo_reward import Scores, check_finite, omit_long_index, training_scores


@pytest.fixture(scope="module")
def models(tiny_ppo_models):
    return tiny_ppo_models


def _metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, models, ppo_smoke_args):
    out = tmp_path_factory.mktemp("ppo") / "plain"
    assert main(ppo_smoke_args(out, models)) == 0
    return out


def test_outputs_and_metrics(plain_run) -> None:
    rows = _metrics(plain_run)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    evals = [r for r in rows if "eval/reward/gold" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert evals[0]["eval/kl/k1"] == 0.0  # the policy starts as its reference
    for key in ("reward/proxy", "reward/gold", "kl/k1", "kl/k2", "kl/k3", "divergence/chi2",
                "kl/sqrt", "length/mean", "loss/policy", "loss/value", "ppo/clip_frac"):  # fmt: skip
        assert key in rows[1], key
    assert rows[-1]["kl/k3"] > 0  # the policy moved
    summary = json.loads((plain_run / "ppo_summary.json").read_text())
    assert summary["final_gold"] == evals[-1]["eval/reward/gold"]
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    assert AutoModelForCausalLM.from_pretrained(plain_run / "model").config.model_type == "gpt_neox"
    AutoModelForTokenClassification.from_pretrained(plain_run / "value")
    assert (plain_run / "ppo_gold_vs_sqrt_kl.png").stat().st_size > 1000


def test_a_value_head_run_saves_its_head(models, tmp_path, ppo_smoke_args) -> None:
    """ppo.value_model=head: RUN/value holds the final head, as each checkpoint does."""
    from goodhartlab.models.value import load_value_head_weights, make_value_head

    out = tmp_path / "head"
    args = ppo_smoke_args(out, models, "ppo.value_model=head", "ppo.iterations=2")
    assert main(args) == 0
    assert sorted(p.name for p in (out / "value").iterdir()) == ["value_head.safetensors"]
    fresh = make_value_head(64, device="cpu", seed=0)
    trained = load_value_head_weights(make_value_head(64, device="cpu", seed=0), out / "value")
    moved = [not torch.equal(a, b) for a, b in zip(fresh.parameters(), trained.parameters())]
    assert any(moved)  # the saved head is the trained one, not the initial


def _strip(rows, prefixes=("regularizer/", "loss/extra", "loss/total")):
    return [{k: v for k, v in r.items() if not k.startswith(prefixes)} for r in rows]


def test_coefficient_zero_equals_plain_ppo(plain_run, models, tmp_path, ppo_smoke_args) -> None:
    out = tmp_path / "kl0"
    reg = ["regularizer.kind=kl", "regularizer.placement=loss", "regularizer.coef=0.0"]
    assert main(ppo_smoke_args(out, models, *reg)) == 0
    assert _strip(_metrics(out)) == _strip(_metrics(plain_run))


def test_a_regularizer_lowers_kl(plain_run, models, tmp_path, ppo_smoke_args) -> None:
    out = tmp_path / "kl"
    reg = ["regularizer.kind=kl", "regularizer.placement=reward", "regularizer.coef=2.0"]
    assert main(ppo_smoke_args(out, models, *reg)) == 0
    assert _metrics(out)[-1]["eval/kl/k3"] < 0.7 * _metrics(plain_run)[-1]["eval/kl/k3"]
    out2 = tmp_path / "sqrt_chi2"
    reg2 = ["regularizer.kind=sqrt_chi2", "regularizer.placement=loss", "regularizer.coef=2.0"]
    assert main(ppo_smoke_args(out2, models, *reg2)) == 0
    last = _metrics(out2)[-1]
    assert "regularizer/chi2" in last
    assert last["eval/kl/k3"] < _metrics(plain_run)[-1]["eval/kl/k3"]


def test_killed_run_resumes_to_the_same_numbers(
    plain_run, models, tmp_path, monkeypatch, ppo_smoke_args
) -> None:
    real = ppo.ppo_iteration

    def dies_at_3(cfg, state, rewards, iteration, pool):
        if iteration == 3:
            raise KeyboardInterrupt  # the run is killed after checkpoint 2
        return real(cfg, state, rewards, iteration, pool)

    out = tmp_path / "killed"
    monkeypatch.setattr(ppo, "ppo_iteration", dies_at_3)
    assert main(ppo_smoke_args(out, models)) == 130
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_2"
    monkeypatch.setattr(ppo, "ppo_iteration", real)
    assert main([*ppo_smoke_args(out, models), "--resume"]) == 0
    assert _metrics(out) == _metrics(plain_run)


def test_gold_reward_without_rms_and_evaluate(models, tmp_path, ppo_smoke_args) -> None:
    out = tmp_path / "gold"
    args = ppo_smoke_args(
        out, models, "reward.kind=gold", "reward.reward_models=[]", "ppo.iterations=2"
    )
    assert main(args) == 0
    rows = _metrics(out)
    assert "reward/proxy" not in rows[1] and rows[1]["reward/train"] == rows[1]["reward/gold"]
    ev = tmp_path / "ev"
    assert main(["evaluate", "--config", "smoke", "--out", str(ev), "device=cpu",
                 f"checkpoint={out / 'model'}", f"reward.reward_models=[{models / 'rm'}]"]) == 0  # fmt: skip
    rows = json.loads((out / "model" / "gold_eval_with_response_ids.json").read_text())
    assert len(rows) == 32
    assert set(rows[0]) == {"instruction", "answers", "answers_ids", "proxy_scores", "gold_scores",
                            "prompt_index"}  # fmt: skip
    assert isinstance(rows[0]["answers_ids"][0][0], int)


def test_eval_files_at_each_evaluation_hold_the_scored_samples(plain_run) -> None:
    """Coste's eval/eval-{step}.json: per held-out prompt its answer, proxy and gold scores."""
    evals = [r for r in _metrics(plain_run) if "eval/reward/gold" in r]
    assert sorted(p.name for p in (plain_run / "eval").iterdir()) == [
        f"eval-{r['step']}.json" for r in evals
    ]
    for r in evals:
        rows = json.loads((plain_run / "eval" / f"eval-{r['step']}.json").read_text())
        assert len(rows) == 16 and all(len(x["answers"]) == 1 for x in rows)
        assert np.mean([x["gold_scores"][0] for x in rows]) == pytest.approx(r["eval/reward/gold"])
        assert np.mean([x["proxy_scores"][0] for x in rows]) == pytest.approx(
            r["eval/reward/proxy"]
        )


def test_eval_files_carry_each_answers_kl_and_costes_kl_list(plain_run) -> None:
    """Per answer `kl` (k1 summed over its tokens; their mean is eval/kl/k1) and, in row 0,
    Coste's `kl_list`: the k2 KL of every training rollout up to that evaluation."""
    rows = _metrics(plain_run)
    for r in (r for r in rows if "eval/reward/gold" in r):
        samples = json.loads((plain_run / "eval" / f"eval-{r['step']}.json").read_text())
        kls = [x["kl"][0] for x in samples]
        assert np.mean(kls) == pytest.approx(r["eval/kl/k1"], abs=1e-6)
        history = [x["kl/k2"] for x in rows if "kl/k2" in x and x["step"] <= r["step"]]
        assert samples[0]["kl_list"] == history and len(history) == r["step"]
        assert all("kl_list" not in x for x in samples[1:])
    first = json.loads((plain_run / "eval" / "eval-0.json").read_text())
    assert first[0]["kl_list"] == [] and all(x["kl"] == [0.0] for x in first)  # pi = pi_ref


def _sequence_logprobs(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    """log p(response token t | prompt, response[:t]) from one unpadded forward pass."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + response])).logits[0].float()
    logp = logits[len(prompt) - 1 : -1].log_softmax(-1)
    return logp.gather(-1, torch.tensor(response)[:, None]).squeeze(-1)


def test_evaluate_with_a_reference_writes_each_answers_kl(plain_run, models, tmp_path) -> None:
    """`kl` of each answer = Σ_t log pi(a_t) - log pi_ref(a_t), recomputed here one sequence at
    a time without padding; the summary's kl/k1 is their mean."""
    from goodhartlab.data.encoding import encode_prompts
    from goodhartlab.models import load_policy

    out = tmp_path / "answers.json"
    args = ["evaluate", "--config", "smoke", "--out", str(tmp_path / "ev"), "device=cpu",
            f"checkpoint={plain_run / 'model'}", f"reference={models / 'policy'}",
            f"reward.reward_models=[{models / 'rm'}]", "n_prompts=6", "n_samples=2",
            "generation.max_new_tokens=8", f"output={out}"]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(out.read_text())
    policy, tok = load_policy(str(plain_run / "model"), device="cpu")
    reference, _ = load_policy(str(models / "policy"), device="cpu")
    ours = []
    for row in rows:
        ids, _ = encode_prompts(tok, [row["instruction"]])
        prompt = ids[0].tolist()
        assert len(row["kl"]) == 2
        for full, kl in zip(row["answers_ids"], row["kl"]):
            real = full[next(i for i, t in enumerate(full) if t != tok.pad_token_id) :]
            assert real[: len(prompt)] == prompt
            response = real[len(prompt) :]
            diff = _sequence_logprobs(policy, prompt, response) - _sequence_logprobs(
                reference, prompt, response
            )
            assert kl == pytest.approx(float(diff.sum()), abs=1e-4)
            ours.append(float(diff.sum()))
    assert any(abs(k) > 1e-3 for k in ours)  # the trained policy moved from its reference
    summary = json.loads((tmp_path / "ev" / "evaluate_summary.json").read_text())
    assert summary["kl/k1"] == pytest.approx(np.mean(ours), abs=1e-4)


def test_evaluate_samples_per_prompt_over_an_index_range(models, tmp_path) -> None:
    """The length paper's generate_outs: prompts [bottom, top), several samples, rep. penalty."""
    from goodhartlab.models.reward import load_reward_model, score_texts

    prompts = [f"list {k} {c}" for k in ("one", "two", "three") for c in ("fruits", "metals")]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    out = tmp_path / "answers.json"
    args = ["evaluate", "--config", "smoke", "--out", str(tmp_path / "ev"), "device=cpu",
            f"checkpoint={models / 'policy'}", f"reward.reward_models=[{models / 'rm'}]",
            f"prompts={path}", "prompt_start=2", "n_prompts=3", "n_samples=4",
            "repetition_penalty=1.2", "generation.max_new_tokens=6", f"output={out}"]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(out.read_text())
    assert [r["prompt_index"] for r in rows] == [2, 3, 4]
    assert [r["instruction"] for r in rows] == prompts[2:5]
    assert all(len(r[k]) == 4 for r in rows for k in ("answers", "proxy_scores", "gold_scores"))
    rm, tok = load_reward_model(str(models / "rm"), device="cpu")
    flat = [(r["instruction"], a) for r in rows for a in r["answers"]]
    raw = score_texts(rm, tok, [p for p, _ in flat], [a for _, a in flat])
    assert np.allclose([s for r in rows for s in r["proxy_scores"]], raw, atol=1e-5)
    assert len({a for r in rows for a in r["answers"]}) > 3  # samples differ within a prompt
    args[args.index("prompt_start=2")] = "prompt_start=6"
    assert main(args) == 1  # past the last prompt: one line, exit 1


def test_chat_prompt_files_go_through_the_chat_template(models, tmp_path, ppo_smoke_args):
    """A prompt file of chat messages trains exactly as the same prompts as text: both are
    rendered by the tokenizer's chat template (not as "User: ..." text inside it)."""
    prompts = [f"list {k} {c}" for k in ("one", "two", "three") for c in ("fruits", "metals")]
    runs = {}
    for kind in ("text", "chat"):
        path = tmp_path / f"{kind}.jsonl"
        rows = [
            {"prompt": p if kind == "text" else [{"role": "user", "content": p}]} for p in prompts
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out = tmp_path / kind
        args = ppo_smoke_args(
            out, models, f"prompts={path}", "ppo.iterations=2", "eval.n_prompts=6"
        )
        assert main(args) == 0
        runs[kind] = _metrics(out)
    assert runs["chat"] == runs["text"]
    evals = json.loads((tmp_path / "chat" / "eval" / "eval-2.json").read_text())
    assert evals[0]["instruction"] == [{"role": "user", "content": prompts[0]}]


def test_bad_settings_are_one_line_errors(models, tmp_path, capsys, ppo_smoke_args) -> None:
    bad = ["regularizer.kind=chi2", "regularizer.placement=reward", "regularizer.coef=0.1"]
    assert main(ppo_smoke_args(tmp_path / "a", models, *bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "placement=loss" in err[0]
    assert main(ppo_smoke_args(tmp_path / "b", models, "reward.reward_models=[]")) == 2
    assert "at least one" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_omit_long_replaces_only_truncated_rows() -> None:
    ended = torch.tensor([True, False, True, False, False])
    idx = omit_long_index(ended, torch.Generator().manual_seed(0))
    assert idx[0] == 0 and idx[2] == 2
    assert all(bool(ended[idx[i]]) for i in range(5))  # every slot now holds a finished sample
    none = torch.zeros(3, dtype=torch.bool)
    assert omit_long_index(none, torch.Generator()).tolist() == [0, 1, 2]


def test_nan_reward_stops_with_a_clear_error() -> None:
    from goodhartlab.config.ppo_schema import PPORewardConfig
    from goodhartlab.core.length import RunningRewardStats
    from goodhartlab.errors import GoodhartError

    with pytest.raises(GoodhartError, match="proxy reward is not finite for response 1"):
        check_finite(np.array([0.0, np.nan]), "the proxy reward")
    scores = Scores(np.array([1.0, 20.0]), np.zeros((1, 2)), np.zeros(2), np.array([0.0, 0.0]))
    cfg = PPORewardConfig(clip=10.0)
    rewards, _ = training_scores(cfg, scores, torch.tensor([3, 4]), RunningRewardStats())
    assert rewards.tolist() == [1.0, 10.0]  # clipped at the seed's 10
    lp = PPORewardConfig(kind="len_only", len_only=4.0)
    rewards, _ = training_scores(lp, scores, torch.tensor([2, 4]), RunningRewardStats())
    assert rewards.tolist() == [0.5, 1.0]  # 1 - |L/N - 1|


def test_inform_rms_and_ensembles_work_as_proxies(models, tmp_path, ppo_smoke_args) -> None:
    from goodhartlab.models.inform import InfoRMConfig
    from goodhartlab.models.reward import write_ensemble_manifest

    for seed in (1, 2):
        rm, tok = load_reward_model(
            "toy:rm", device="cpu", seed=seed, inform=InfoRMConfig(latent_dim=8)
        )
        save_reward_model(rm, tok, tmp_path / f"rm_seed{seed}" / "model", 0.5, 2.0)
    write_ensemble_manifest(
        tmp_path / "ensemble.json", [{"seed": s, "path": f"rm_seed{s}/model"} for s in (1, 2)]
    )
    out = tmp_path / "run"
    args = ppo_smoke_args(out, models, f"reward.reward_models=[{tmp_path}]", "reward.objective=wco",
                 "ppo.iterations=2")  # fmt: skip
    assert main(args) == 0
    rows = _metrics(out)
    assert rows[1]["ensemble/std"] > 0  # two different members were scored
    assert "eval/reward/proxy" in rows[-1]
    samples = json.loads((out / "eval" / "eval-2.json").read_text())
    assert all(len(x["ensemble_variance"]) == 1 and x["ensemble_variance"][0] >= 0 for x in samples)
    # Coste's --rm_seed convention: a {seed} path and reward.seeds name the same two members
    pattern = f"reward.reward_models=['{tmp_path}/rm_seed{{seed}}/model']"
    again = ppo_smoke_args(tmp_path / "seeds", models, pattern, "reward.seeds=[1,2]",
                           "reward.objective=wco", "ppo.iterations=2")  # fmt: skip
    assert main(again) == 0
    assert _metrics(tmp_path / "seeds") == rows


def test_toy_prompt_ranges_are_refused_since_they_would_not_tile(tmp_path, capsys) -> None:
    """The toy stream is drawn whole for each length (sample_prompts(10)[:5] is not
    sample_prompts(5)), so prompt_start over toy prompts would answer prompts that no other
    range agrees on; a one-line config error before any model loads, not silent mismatch."""
    from goodhartlab.toyworld.teacher import sample_prompts

    rng = np.random.default_rng
    assert sample_prompts(10, rng(0))[:5] != sample_prompts(5, rng(0))  # why it is refused
    capsys.readouterr()
    args = ["evaluate", "--config", "smoke", "--out", str(tmp_path / "ev"), "device=cpu",
            f"checkpoint={tmp_path / 'no_policy'}", "prompt_start=5", "n_prompts=5"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field 'prompt_start': 5 needs a prompt file" in err[0]
    assert not (tmp_path / "ev").exists()


def test_range_jobs_write_their_own_default_file(tmp_path) -> None:
    """Ranges answered by separate jobs ([0, 400), [400, 800) of one file) must not overwrite
    one answer file beside the checkpoint; prompt_start 0 keeps the seed's file name."""
    from goodhartlab.config.ppo_schema import EvaluateConfig
    from goodhartlab.recipes.evaluate import output_path

    ckpt = tmp_path / "model"
    first = EvaluateConfig(checkpoint=str(ckpt), n_prompts=400)
    second = EvaluateConfig(checkpoint=str(ckpt), n_prompts=400, prompt_start=400)
    assert output_path(first, 400) == ckpt / "gold_eval_with_response_ids.json"
    assert output_path(second, 400) == ckpt / "gold_eval_with_response_ids_400-800.json"
    assert output_path(second, 7) == ckpt / "gold_eval_with_response_ids_400-407.json"  # short
    given = EvaluateConfig(checkpoint=str(ckpt), prompt_start=9, output=str(tmp_path / "o.json"))
    assert output_path(given, 3) == tmp_path / "o.json"


def test_evaluation_encodes_its_fixed_prompts_once(models, monkeypatch) -> None:
    """The held-out batches are tokenized at the first evaluation only; results are unchanged."""
    from goodhartlab.config.ppo_schema import PPOConfig
    from goodhartlab.models import load_policy
    from goodhartlab.recipes import ppo_eval
    from goodhartlab.recipes.ppo_reward import load_reward_models

    cfg = PPOConfig(device="cpu")
    cfg.reward.reward_models = [str(models / "rm")]
    cfg.eval.generation.max_new_tokens, cfg.eval.generation.batch_size = 6, 8
    policy, tok = load_policy(str(models / "policy"), device="cpu")
    rms = load_reward_models(cfg.reward, "cpu")
    prompts = ppo_eval.eval_prompts("toy", 20)
    calls = []
    real = ppo_eval.encode_prompts
    monkeypatch.setattr(ppo_eval, "encode_prompts", lambda *a: calls.append(a) or real(*a))

    def evaluate(seed):
        return ppo_eval.evaluate_policy(policy, policy, tok, cfg.reward, rms, prompts,
                                        cfg.eval.generation, seed)  # fmt: skip

    first, again = evaluate(3), evaluate(3)
    assert [len(c[1]) for c in calls] == [8, 8, 4]  # three batches, encoded at the first call
    assert again.metrics == first.metrics and again.rows == first.rows
    fresh_ids, fresh_mask = real(tok, prompts[8:16], None, None)
    ids, mask = ppo_eval.encoded_batch(tok, prompts[8:16], None, torch.device("cpu"))
    assert torch.equal(ids, fresh_ids) and torch.equal(mask, fresh_mask)
    assert evaluate(4).rows != first.rows and len(calls) == 3  # another seed samples anew
