"""Outcomes of `goodhart ppo` (DESIGN.md §7), not only its plumbing: PPO raises the proxy it
optimizes, and a WCO ensemble's proxy is exactly its members' minimum."""

import json

import numpy as np

from goodhartlab.cli import main
from goodhartlab.config.ppo_schema import PPORewardConfig
from goodhartlab.models.reward import load_reward_model, save_reward_model, write_ensemble_manifest
from goodhartlab.recipes.ppo_reward import RewardModels, score_responses


def _evals(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "eval/reward/proxy" in r]


def test_ppo_raises_the_proxy_it_optimizes(tiny_ppo_models, tmp_path) -> None:
    """A random toy RM saved with its real score mean/std (as train-rm stores them), so the
    normalized proxy is in units of its spread over policy samples."""
    from goodhartlab.models import load_policy
    from goodhartlab.models.reward import score_texts
    from goodhartlab.rollout.sampling import sample_texts

    policy, ptok = load_policy(str(tiny_ppo_models / "policy"), device="cpu")
    prompts = ["list two fruits", "list three metals", "list one animals", "list four tools"] * 16
    texts = sample_texts(policy, ptok, prompts, max_new_tokens=8, seed=0)
    rm, tok = load_reward_model("toy:rm", device="cpu", seed=1)
    raw = score_texts(rm.eval(), tok, prompts, [t.response for t in texts])
    save_reward_model(rm, tok, tmp_path / "rm", float(raw.mean()), float(raw.std()))
    out = tmp_path / "run"
    args = [
        "ppo", "--config", "smoke", "--out", str(out), "device=cpu",
        f"policy.source={tiny_ppo_models / 'policy'}", f"reward.reward_models=[{tmp_path / 'rm'}]",
        "generation.max_new_tokens=8", "eval.n_prompts=32", "eval.every=4", "ppo.iterations=12",
        "ppo.lr=3e-3",
    ]  # fmt: skip
    assert main(args) == 0
    evals = _evals(out)
    assert [r["step"] for r in evals] == [0, 4, 8, 12]
    # held-out proxy (same prompts, same sampling seed) after 12 iterations vs the start,
    # in standard deviations of the RM's scores on the starting policy's samples
    assert evals[-1]["eval/reward/proxy"] > evals[0]["eval/reward/proxy"] + 0.5


def test_wco_proxy_is_the_members_minimum(tmp_path) -> None:
    members, paths = [], []
    for seed in (1, 2, 3):
        rm, tok = load_reward_model("toy:rm", device="cpu", seed=seed)
        path = tmp_path / f"rm_seed{seed}" / "model"
        save_reward_model(rm, tok, path, 0.0, 1.0)
        members.append((rm.eval(), tok))
        paths.append(path)
    write_ensemble_manifest(tmp_path / "ensemble.json", [{"seed": 1, "path": "rm_seed1/model"}])
    models = RewardModels(members, paths, "toy", [(0.0, 1.0)] * 3)
    prompts = ["list five metals", "list one tools", "list four animals"]
    responses = ["sure iron , copper , zinc thanks", "drill !", "cat , cat , horse and goat !"]
    cfg = PPORewardConfig(objective="wco")
    scores = score_responses(cfg, models, prompts, responses, [True] * 3)
    assert scores.members.shape == (3, 3)
    assert np.ptp(scores.members, axis=0).min() > 0  # the members really differ
    np.testing.assert_array_equal(scores.proxy, scores.members.min(axis=0))
    mean = score_responses(
        PPORewardConfig(objective="mean"), models, prompts, responses, [True] * 3
    )
    np.testing.assert_allclose(mean.proxy, scores.members.mean(axis=0))


def test_target_kl_config_stops_the_epochs(tiny_ppo_models, tmp_path) -> None:
    out = tmp_path / "tkl"
    args = [
        "ppo", "--config", "smoke", "--out", str(out), "device=cpu", "ppo.iterations=2",
        f"policy.source={tiny_ppo_models / 'policy'}",
        f"reward.reward_models=[{tiny_ppo_models / 'rm'}]", "generation.max_new_tokens=8",
        "eval.n_prompts=16", "ppo.lr=1e-3", "ppo.target_kl=1e-9",
    ]  # fmt: skip
    assert main(args) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["ppo/epochs"] for r in rows[1:]] == [1.0, 1.0]  # smoke runs 2 epochs otherwise
    assert all(r["ppo/explained_variance"] <= 1 for r in rows[1:])  # nan would fail too
