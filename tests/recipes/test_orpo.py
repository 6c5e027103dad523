"""`goodhart orpo` end to end at smoke size: outcomes, resume, coef 0 == plain PPO, BC, AD term."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from goodhartlab.config import dump_config, find_configs_dir, load_config
from goodhartlab.config.orpo_schema import OrpoConfig
from goodhartlab.errors import ConfigError
from goodhartlab.recipes import orpo, orpo_step
from goodhartlab.runs import RunDir

SMOKE = find_configs_dir() / "orpo" / "smoke.yaml"


def _run(path, overrides=(), resume=False):
    cfg = load_config(OrpoConfig, SMOKE, list(overrides))
    run_dir = RunDir.prepare(path, dump_config(cfg), resume=resume)
    return orpo.run(cfg, run_dir, resume=resume), run_dir


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("orpo") / "run")


def test_smoke_run_logs_returns_and_writes_outputs(smoke) -> None:
    results, run_dir = smoke
    rows = run_dir.read_metrics()
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for key in (
        "reward/true",
        "reward/proxy",
        "om/sqrt_chi2/0",
        "disc/accuracy/0",
        "reward/om_term",
    ):
        assert all(np.isfinite(r[key]) for r in rows), key
    assert any(k.startswith("ppo/") for k in rows[-1])
    # OM penalty is on: the shaped term is <= 0 (positive coefficient)
    assert all(r["reward/om_term"] <= 0 for r in rows)
    ev = results["eval"]
    assert ev["true"]["n"] == 8 and ev["true"]["ci95"] >= 0
    assert ev["proxy"]["mean"] >= ev["true"]["mean"]  # proxy >= true on every tomato step
    saved = json.loads(run_dir.file("orpo_results.json").read_text())
    assert saved["eval"] == ev
    assert run_dir.file("returns.png").exists()
    assert (run_dir.file("policy") / "model.safetensors").exists()
    assert (run_dir.file("base_policy") / "policy.json").exists()
    assert run_dir.latest_checkpoint() is not None


def test_resume_after_a_crash_gives_identical_numbers(smoke, tmp_path, monkeypatch) -> None:
    results, run_dir = smoke
    real_step, calls = orpo.orpo_step, {"n": 0}

    def crashing_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # after the checkpoint at iteration 2 and one more iteration
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(orpo, "orpo_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "run")
    monkeypatch.setattr(orpo, "orpo_step", real_step)
    resumed, resumed_dir = _run(tmp_path / "run", resume=True)
    assert resumed["eval"] == results["eval"]
    assert resumed_dir.read_metrics() == run_dir.read_metrics()


def test_zero_coefficient_equals_plain_ppo(tmp_path) -> None:
    _, with_disc = _run(tmp_path / "a", ["om_divergence_coeffs=[0.0]"])
    _, plain = _run(tmp_path / "b", ["base_policies=[]", "om_divergence_coeffs=[]"])
    from goodhartlab.models.gym_policy import load_gym_policy

    a, b = load_gym_policy(with_disc.file("policy")), load_gym_policy(plain.file("policy"))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    rows_a, rows_b = with_disc.read_metrics(), plain.read_metrics()
    assert [r["reward/true"] for r in rows_a] == [r["reward/true"] for r in rows_b]
    assert "om/sqrt_chi2/0" in rows_a[0] and "om/sqrt_chi2/0" not in rows_b[0]


def test_bc_reproduces_the_scripted_tomato_controller(tmp_path) -> None:
    from goodhartlab.envs import ENVS
    from goodhartlab.envs.tomato import TomatoController
    from goodhartlab.models.gym_policy import load_gym_policy
    from goodhartlab.recipes.base_policies import collect_controller_data

    overrides = ["algo=bc", "env_horizon=100", "bc.episodes=16", "bc.epochs=40", "hidden=[64]"]
    results, run_dir = _run(tmp_path / "bc", overrides)
    policy = load_gym_policy(run_dir.file("policy"))
    vec = ENVS["tomato"].make_vec(8)
    obs, actions, _ = collect_controller_data(vec, "tomato", TomatoController(), 100, seed=123)
    with torch.no_grad():
        predicted = policy.dist_inputs(obs).argmax(-1)
    assert (predicted == actions).float().mean() > 0.95
    assert results["bc_loss"][-1] < results["bc_loss"][0]
    # the clone walks the board like the controller: true return close to the controller's
    assert results["eval"]["true"]["mean"] > 0.8 * results["controller_true_return"]


def test_masked_bc_fits_only_the_masked_action_entries() -> None:
    """`behaviour_clone(mask=...)` (traffic: slots holding a bus): the masked-out entries' targets
    do not enter the loss, so garbage there changes nothing, and the unmasked entries are fit."""
    from goodhartlab.models.gym_policy import GymPolicy, PolicySpec
    from goodhartlab.recipes.base_policies import behaviour_clone

    obs = torch.randn(256, 4, generator=torch.Generator().manual_seed(0))
    target = (0.5 * obs[:, :1]).clamp(-0.9, 0.9)
    mask = torch.zeros(256, 2, dtype=torch.bool)
    mask[:, 0] = True
    fits = []
    for garbage in (0.0, 0.99):
        actions = torch.cat([target, torch.full((256, 1), garbage)], 1)
        torch.manual_seed(0)
        policy = GymPolicy(PolicySpec(4, 2, "beta", [32], -1.0, 1.0))
        gen = torch.Generator().manual_seed(1)
        losses = behaviour_clone(policy, obs, actions, 150, 64, 3e-3, 0.0, gen, mask=mask)
        with torch.no_grad():
            fits.append(policy.sample(policy.dist_inputs(obs), None, greedy=True))
        assert losses[-1] < losses[0]
    assert torch.equal(fits[0], fits[1])  # the masked-out column's targets are ignored
    assert (fits[0][:, 0] - target[:, 0]).abs().mean() < 0.1


def test_action_distribution_term_is_the_scaled_mean_kl() -> None:
    from goodhartlab.models.gym_policy import GymPolicy, PolicySpec

    torch.manual_seed(0)
    policy = GymPolicy(PolicySpec(4, 3, "categorical", [8]))
    obs, base_logits = torch.randn(6, 4), torch.randn(6, 3)
    extra = orpo_step.make_ad_loss(policy, coef=0.5, gamma=0.9, divergence="kl")
    loss, metrics = extra({"obs": obs, "base_dist_inputs": base_logits}, None)
    p = torch.distributions.Categorical(logits=policy.dist_inputs(obs))
    kl = torch.distributions.kl_divergence(p, torch.distributions.Categorical(logits=base_logits))
    torch.testing.assert_close(loss, 0.5 / (1 - 0.9) * kl.mean())
    assert metrics["ad/kl"] == pytest.approx(float(kl.mean().detach()))


def test_coefficients_are_scaled_by_the_env_reward_scale() -> None:
    cfg = load_config(OrpoConfig, None, ["om_divergence_coeffs=[0.5]"])
    assert orpo.setup(cfg).om_coefs == [pytest.approx(0.5 * 0.05)]  # sqrt_chi2: tomato std
    cfg = load_config(OrpoConfig, None, ["om_divergence_type=kl", "om_divergence_coeffs=[-1.0]"])
    assert orpo.setup(cfg).om_coefs == [pytest.approx(-0.8)]  # kl: tomato per-step scale


def test_presets_load_and_toy_equals_defaults() -> None:
    for path in sorted((find_configs_dir() / "orpo").glob("*.yaml")):
        cfg = load_config(OrpoConfig, path)
        if path.stem == "toy":
            assert cfg == OrpoConfig()
    with pytest.raises(ConfigError, match="om_divergence_coeffs"):
        load_config(OrpoConfig, None, ["om_divergence_coeffs=[1.0, 2.0]"])


def test_reward_fun_true_is_text_on_the_command_line(capsys) -> None:
    """docs/orpo.md's `goodhart orpo reward_fun=true`: YAML reads a bare `true` as a bool, which a
    plain str field refused ('expected str, got true (bool)'); the choices accept it as text."""
    from goodhartlab.cli import main

    assert main(["validate", "orpo", "reward_fun=true", "om_divergence_coeffs=[0]"]) == 0
    assert "reward_fun: 'true'" in capsys.readouterr().out  # the resolved config: text
    assert main(["validate", "orpo", "reward_fun=bogus"]) == 2
    assert "bad choice 'bogus' (allowed: proxy, true)" in capsys.readouterr().err
