"""Traffic env on SUMO: gymnasium checks, rewards by hand, IDM safety, the bus blocking the merge,
the batched env, the missing-SUMO message, and BC of the IDM controller."""

from __future__ import annotations

import importlib.util
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import goodhartlab.envs  # noqa: F401  (registers the envs)
from goodhartlab.envs import traffic, traffic_sumo
from goodhartlab.envs.traffic import (
    IDMController,
    TrafficEnv,
    TrafficVecEnv,
    idm_accelerations,
    step_rewards,
)
from goodhartlab.envs.traffic_sumo import MergeGeometry, MissingSumoError

HAVE_SUMO = all(importlib.util.find_spec(m) for m in ("libsumo", "traci", "sumo"))
if not HAVE_SUMO:
    print("tests/envs/test_traffic.py: SUMO not installed (pip install 'goodhartlab[traffic]')")
needs_sumo = pytest.mark.skipif(
    not HAVE_SUMO, reason="SUMO not installed: pip install 'goodhartlab[traffic]'"
)


@pytest.fixture
def env():
    env = TrafficEnv()
    yield env
    env.close()


def test_rewards_by_hand() -> None:
    speeds = np.array([10.0, 0.0, 20.0])
    actions = np.array([1.0, -0.5] + [0.0] * 8)
    bus_speeds = np.array([10.0, 5.0, 0.0])
    headways = np.array([5.0, np.nan, 3.0])  # bus 1 has no leader, bus 2 is stopped
    true, proxy = step_rewards(speeds, actions, bus_speeds, headways, crashed=False)
    commute = -(1 / 10.001 + 1 / 0.001 + 1 / 20.001) / 3
    accel, headway = -1.5 / 10, (0.5 - 1.0)  # only bus 0 counts: h/v = 0.5 s < 1 s
    assert true == pytest.approx(commute + accel + 0.1 * headway)
    assert proxy == pytest.approx(10.0 + accel + 0.1 * headway)
    assert step_rewards(speeds, actions, bus_speeds, headways, crashed=True) == (0.0, 0.0)
    empty = step_rewards(np.array([]), np.zeros(10), np.array([]), np.array([]), False)
    assert empty == (-1e4, 0.0)


def test_idm_from_the_observation() -> None:
    obs = np.zeros((1, 50), np.float32)
    v, v_lead, gap, v_max, length = 10.0, 8.0, 20.0, 30.0, 325.0
    obs[0, :5] = (v / v_max, (v_lead - v) / v_max, gap / length, 0.0, 1.0)
    s_star = 2.0 + v * 1.0 + v * (v - v_lead) / (2 * np.sqrt(1.5))
    expected = 1.0 * (1 - (v / 30.0) ** 4 - (s_star / gap) ** 2)
    out = idm_accelerations(obs, v_max, length)
    assert out.shape == (1, 10)
    assert out[0, 0] == pytest.approx(max(expected, -1.5), rel=1e-5)
    assert np.all(out[0, 1:] == 0.0)  # empty slots
    obs[0, :5] = (0.5, 0.5, 1.0, 0.0, 1.0)  # free road at 15 m/s: accelerate
    assert idm_accelerations(obs, v_max, length)[0, 0] == pytest.approx(1 - 0.5**4, abs=1e-3)


def test_idm_controller_eps_parks_the_first_bus_of_the_first_copies() -> None:
    """`bc.controller_eps` for traffic: round(eps * N) copies brake queue slot 0 at -1.5."""
    obs = np.zeros((8, 50), np.float32)
    obs[:, :5] = (0.5, 0.5, 1.0, 0.0, 1.0)  # free road at 15 m/s: IDM accelerates
    clean = IDMController(8)(obs)
    sloppy = IDMController(8, eps=0.25)(obs)
    assert sloppy[:2, 0].tolist() == [-1.5, -1.5]
    assert np.array_equal(sloppy[2:], clean[2:]) and np.array_equal(sloppy[:, 1:], clean[:, 1:])
    assert clean[0, 0] == pytest.approx(1 - 0.5**4, abs=1e-3)


@needs_sumo
def test_check_env_and_spaces(env) -> None:
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (50,) and env.action_space.shape == (10,)
    assert env.action_space.low.min() == -1.5 and env.action_space.high.max() == 1.5


@needs_sumo
def test_gym_make_and_reset_determinism() -> None:
    made = gym.make("goodhartlab/Traffic-v0", reward_fun="true", horizon=5)
    try:
        first, _ = made.reset(seed=3)
        rewards = [made.step(np.zeros(10, np.float32))[1] for _ in range(5)]
        again, _ = made.reset(seed=3)
        assert np.array_equal(first, again)
        assert rewards == [made.step(np.zeros(10, np.float32))[1] for _ in range(5)]
    finally:
        made.close()


def run_episode(env: TrafficEnv, policy, steps: int) -> dict:
    """Step `policy(obs)`; collect crashes, returns, the buses ever controlled and merged humans."""
    obs, _ = env.reset(seed=0)
    api, out = env.sim.api, {"crashes": 0, "true": 0.0, "proxy": 0.0, "buses": set()}
    merged: set[str] = set()
    for _ in range(steps):
        obs, _, terminated, _, info = env.step(policy(obs))
        out["crashes"] += info["crash"] + terminated
        out["true"] += info["true_reward"]
        out["proxy"] += info["proxy_reward"]
        out["buses"].update(env.sim.controlled)
        merged.update(
            v
            for v in api.vehicle.getIDList()
            if v.startswith("ramp.") and api.vehicle.getRoadID(v) == "center"
        )
    out["merged_ramp_humans"] = len(merged)
    return out


@needs_sumo
def test_no_collisions_under_the_idm_controller(env, monkeypatch) -> None:
    idm = IDMController()
    result = run_episode(env, lambda obs: idm(obs[None])[0], 300)
    assert result["crashes"] == 0
    assert len(result["buses"]) >= 8  # the controller really drove buses (112.5 veh/h for 300 s)
    # the detector can fire: without the safe-speed cap, full throttle rear-ends within the episode
    monkeypatch.setattr(traffic, "RL_SPEED_MODE", 0)
    assert run_episode(env, lambda obs: np.full(10, 1.5, np.float32), 60)["crashes"] > 0


@needs_sumo
def test_a_braking_bus_blocks_the_merge(env) -> None:
    idm = IDMController()
    free = run_episode(env, lambda obs: idm(obs[None])[0], 150)
    blocked = run_episode(env, lambda obs: np.full(10, -1.5, np.float32), 150)
    assert free["merged_ramp_humans"] >= 5  # the zipper lets the ramp in under IDM
    assert blocked["merged_ramp_humans"] < free["merged_ramp_humans"] / 2  # humans stuck behind


@needs_sumo
def test_blocking_the_merge_raises_the_proxy_and_lowers_the_true_reward(env) -> None:
    """The spec's hack (Pan et al.): stopped ramp buses let the highway flow (mean speed up) while
    the stopped bus's 1/v explodes the commute term. Measured, seed 0, 300 steps: IDM true -316,
    proxy 1,223; braking true -27,605, proxy 3,321."""
    idm = IDMController()
    free = run_episode(env, lambda obs: idm(obs[None])[0], 300)
    blocked = run_episode(env, lambda obs: np.full(10, -1.5, np.float32), 300)
    assert free["crashes"] == blocked["crashes"] == 0
    assert blocked["proxy"] > 2 * free["proxy"]
    assert blocked["true"] < 10 * free["true"] < 0


@needs_sumo
def test_the_junction_lets_both_streams_in_and_a_priority_one_starves_the_ramp() -> None:
    """Why the merge is a zipper (traffic_sumo docstring): with the highway as the main road the
    over-demanded highway never leaves a gap, so no ramp vehicle merges under IDM."""
    idm = IDMController()
    merged = {}
    for junction in ("zipper", "priority"):
        env = TrafficEnv(geometry=MergeGeometry(merge_junction=junction))
        try:
            merged[junction] = run_episode(env, lambda obs: idm(obs[None])[0], 100)
        finally:
            env.close()
        merged[junction] = merged[junction]["merged_ramp_humans"]
    assert merged["zipper"] >= 3 and merged["priority"] == 0
    with pytest.raises(ValueError, match="merge_junction must be one of"):
        traffic_sumo.network_files(MergeGeometry(merge_junction="traffic_light"))


@needs_sumo
def test_vector_env_autoresets_and_matches_single_envs() -> None:
    vec = TrafficVecEnv(2, mode="async", horizon=4)
    single = TrafficEnv(horizon=4)
    try:
        obs, _ = vec.reset(seed=5)
        s_obs, _ = single.reset(seed=6)  # copy i is seeded seed + i
        assert np.array_equal(obs[1], s_obs)
        actions = np.full((2, 10), 0.5, np.float32)
        for _ in range(4):
            obs, rewards, terminated, truncated, info = vec.step(actions)
            s_obs, s_reward, *_, s_info = single.step(actions[1])
            assert rewards[1] == pytest.approx(s_reward)
            assert info["true_reward"][1] == pytest.approx(s_info["true_reward"])
        assert truncated.all() and not terminated.any()
        assert info["_final_obs"].all() and np.array_equal(info["final_obs"][1], s_obs)
        assert np.array_equal(obs, np.stack([single.reset(seed=0)[0]] * 2))  # fresh episodes
    finally:
        vec.close()
        single.close()


def test_missing_sumo_is_one_line(monkeypatch) -> None:
    for name in ("libsumo", "traci", "sumo"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    monkeypatch.setattr(traffic_sumo, "_LIBSUMO_TAKEN", False)
    with pytest.raises(MissingSumoError) as err:
        gym.make("goodhartlab/Traffic-v0")
    message = str(err.value)
    assert "pip install 'goodhartlab[traffic]'" in message and "\n" not in message
    assert traffic_sumo._LIBSUMO_TAKEN is False  # a failed start does not hold libsumo


def test_coefficient_scales_are_the_seeds() -> None:
    from goodhartlab.config import load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.recipes import orpo

    cfg = load_config(OrpoConfig, None, ["env=traffic", "om_divergence_coeffs=[0.5]"])
    assert orpo.setup(cfg).om_coefs == [pytest.approx(0.5 * 2e-4)]  # sqrt_chi2: sigma 2e-4
    cfg = load_config(OrpoConfig, None, ["env=traffic", "action_dist_divergence_coeff=2.0"])
    assert orpo.setup(cfg).ad_coef == pytest.approx(2.0 * 5e-4)  # kl: per-step scale 5e-4


@needs_sumo
def test_bc_clones_the_idm_controller(tmp_path) -> None:
    import torch

    from goodhartlab.config import dump_config, find_configs_dir, load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.models.gym_policy import load_gym_policy
    from goodhartlab.recipes import orpo
    from goodhartlab.recipes.base_policies import collect_controller_data
    from goodhartlab.runs import RunDir

    preset = find_configs_dir() / "orpo" / "traffic.yaml"
    overrides = ["algo=bc", "env_horizon=100", "bc.episodes=2", "bc.epochs=200", "eval.episodes=2"]
    cfg = load_config(OrpoConfig, preset, overrides)
    results = orpo.run(cfg, RunDir.prepare(tmp_path / "bc", dump_config(cfg)), resume=False)
    policy = load_gym_policy(tmp_path / "bc" / "policy")
    vec = TrafficVecEnv(2, horizon=100)
    try:
        obs, actions, _ = collect_controller_data(vec, "traffic", IDMController(), 100, seed=7)
    finally:
        vec.close()
    with torch.no_grad():
        mean_action = policy.sample(policy.dist_inputs(obs), None, greedy=True)
    busy = obs.reshape(len(obs), 10, 5).abs().sum(-1) > 0  # slots holding a bus
    error = (mean_action - actions)[busy].abs().mean()
    print(f"clone |a - idm| on bus slots {error:.3f}; eval true {results['eval']['true']}")
    assert busy.sum() > 50 and error < 0.3  # BC fits only these (EnvInfo.bc_action_mask)
    assert results["bc_loss"][-1] < results["bc_loss"][0]
    # no bus parked on the ramp: one stopped bus costs ~1000 / (vehicles in the network) per
    # step, so a clone that stalls scores ~-10k here; the stochastic clone stays near the IDM
    assert results["eval"]["true"]["mean"] > 5 * results["controller_true_return"]
