"""Pandemic env: rewards by hand, spec semantics, hand-made epidemics, batched = single, BC."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import goodhartlab.envs  # noqa: F401  (registers the envs)
from goodhartlab.envs import ENVS
from goodhartlab.envs import pandemic_sim as sim
from goodhartlab.envs.pandemic import (
    SCHEDULES,
    PandemicEnv,
    PandemicVecEnv,
    StageSchedules,
    combine,
    reward_terms,
)

LOWER, STAY, RAISE = 0, 1, 2


def test_check_env_and_registry() -> None:
    env = gym.make("goodhartlab/Pandemic-v0", horizon=12)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (24, 1, 13) and obs.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(3)
    info = ENVS["pandemic"]
    assert (info.horizon, info.reward_std, info.kl_reward_scale) == (192, 0.08, 0.06)
    assert info.discriminator_reward_clip == 100.0


def test_reward_terms_by_hand() -> None:
    critical = np.array([[0.01, 0.02, 0.03]] * 5)
    prev_infected = np.array([0.0, 0.0025, 0.006, 0.0, 0.0])
    stage, prev_stage = np.array([1, 1, 1, 4, 0]), np.array([0, 0, 0, 4, 0])
    action = np.array([RAISE, RAISE, RAISE, RAISE, LOWER])
    terms = reward_terms(critical, prev_infected, stage, prev_stage, action)
    np.testing.assert_allclose(terms["critical"], -0.02)
    # raising below 0.5% ill costs ((0.005 - ICD) / 0.005)^2; above it, or without a raise, 0
    np.testing.assert_allclose(terms["political"], [-1.0, -0.25, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(terms["lower_stage"], [-0.125, -0.125, -0.125, -1.0, 0.0])
    np.testing.assert_allclose(terms["smooth"], [-1, -1, -1, 0, 0])
    true, proxy = combine(terms)
    np.testing.assert_allclose(
        proxy, -0.2 - 0.1 * np.array([0.125, 0.125, 0.125, 1, 0]) - 0.01 * np.array([1, 1, 1, 0, 0])
    )
    np.testing.assert_allclose(true - proxy, [-10.0, -2.5, 0.0, 0.0, 0.0])
    faithful = reward_terms(critical, prev_infected, stage, prev_stage, action, True)
    np.testing.assert_allclose(faithful["lower_stage"], [-0.354] * 4 + [0.0])  # by action


def test_stage_moves_by_one_and_is_clipped() -> None:
    env = PandemicEnv(horizon=12)
    env.reset(seed=1)
    stages = [
        env.step(a)[4]["stage"] for a in [LOWER, RAISE, RAISE, STAY, RAISE, RAISE, RAISE, LOWER]
    ]
    assert stages == [0, 1, 2, 2, 3, 4, 4, 3]


def test_proxy_and_true_differ_only_by_the_political_term_on_raises_at_low_infection() -> None:
    vec = PandemicVecEnv(6, horizon=60)
    vec.reset(seed=3)
    rng = np.random.default_rng(0)
    prev_infected, prev_stage, raised_low = vec.prev_infected.copy(), vec.stage.copy(), 0
    for _ in range(60):
        *_, info = vec.step(rng.integers(0, 3, size=6))
        gap = info["true_reward"] - info["proxy_reward"]
        np.testing.assert_allclose(gap, 10 * info["reward_political"])
        expected = (info["stage"] > prev_stage) & (prev_infected < 0.005)
        assert np.array_equal(gap < 0, expected)
        raised_low += expected.sum()
        prev_infected, prev_stage = info["true_infected"].copy(), info["stage"].copy()
    assert raised_low > 0  # the case was exercised


def test_no_infection_spreads_from_an_empty_infected_set() -> None:
    city = sim.PandemicSim(4)
    city.rngs = [np.random.default_rng(i) for i in range(4)]
    city.reset_rows(np.ones(4, bool))
    city.state[:] = sim.SUSCEPTIBLE
    for _ in range(40):
        samples = city.step_day(np.zeros(4, np.int64))
        assert np.all(samples.critical == 0) and np.all(samples.infected == 0)
    assert np.all(city.state == sim.SUSCEPTIBLE)


def test_an_infectious_person_infects_and_stage_4_lowers_contacts_and_spread() -> None:
    city = sim.PandemicSim(8)
    city.rngs = [np.random.default_rng(i) for i in range(8)]
    city.reset_rows(np.ones(8, bool))
    u = np.stack([rng.random((sim.N_ROWS, sim.N_PERSONS)) for rng in city.rngs])
    public, total = [], []
    for stage in range(5):
        stages = np.full(8, stage)
        plan = sim.plan_day(city.pop, city.state, stages, city.day, u)
        public.append(sim.contact_weight(plan, stages, public_only=True))
        total.append(sim.contact_weight(plan, stages))
    public, total = np.array(public), np.array(total)
    assert np.all(np.diff(public, axis=0) < 0)  # every stage mixes less outside homes
    assert np.all(public[4] < 0.2 * public[0]) and np.all(total[4] < 0.8 * total[0])
    ever = {}
    for stage in (0, 4):
        city.rngs = [np.random.default_rng(i) for i in range(8)]
        city.reset_rows(np.ones(8, bool))
        for _ in range(40):
            city.step_day(np.full(8, stage))
        ever[stage] = (city.state != sim.SUSCEPTIBLE).sum(axis=1)
    assert np.all(ever[0] > sim.INITIAL_EXPOSED)  # it spreads when open
    assert ever[4].mean() < 0.3 * ever[0].mean()


def test_batched_env_equals_single_envs_including_autoreset() -> None:
    n, horizon, steps = 3, 8, 20
    actions = np.random.default_rng(0).integers(0, 3, size=(steps, n))
    vec = PandemicVecEnv(n, horizon=horizon)
    singles = [PandemicEnv(horizon=horizon) for _ in range(n)]
    obs, _ = vec.reset(seed=11)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=11 + i)[0], obs[i])
    for tick in actions:
        obs, rewards, terminated, truncated, info = vec.step(tick)
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(int(tick[i]))
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
            assert (r, te, tr) == (rewards[i], terminated[i], truncated[i])
            assert truncated.dtype == terminated.dtype == bool
            assert inf["true_reward"] == info["true_reward"][i]
    assert truncated.any() or vec.sim.day.min() < horizon


def test_horizon_truncates_unless_faithful() -> None:
    for faithful in (False, True):
        env = PandemicEnv(horizon=3, faithful_terminated_at_horizon=faithful)
        env.reset(seed=0)
        ends = [env.step(STAY)[2:4] for _ in range(3)]
        assert ends[:2] == [(False, False), (False, False)]
        assert ends[2] == ((True, False) if faithful else (False, True))


def test_observation_rows() -> None:
    env = PandemicEnv(horizon=12)
    obs, _ = env.reset(seed=2)
    assert np.allclose(obs[:, 0, 1], 0) and np.allclose(obs[:, 0, [6, 11]], 1)  # stage 0, none
    for _ in range(3):
        obs, *_, info = env.step(RAISE)
    rows = obs[-3:, 0]
    np.testing.assert_allclose(rows[:, 0] * 8760, [2 * 24 + 7, 2 * 24 + 15, 2 * 24 + 23], rtol=1e-6)
    assert np.all(rows[:, 1] == 3) and info["stage"] == 3
    np.testing.assert_allclose(rows[:, 3:8].sum(axis=1), 1, atol=1e-6)  # alpha fractions
    np.testing.assert_allclose(rows[:, 8:13].sum(axis=1), 1, atol=1e-6)  # delta fractions
    np.testing.assert_array_equal(obs[-6:-3, 0, 1], 2)  # the previous day, shifted up


def test_stage_schedules_follow_their_targets_and_the_faithful_sign_bug() -> None:
    names = ["S4", "S0-4-0", "italian", "S0"]
    vec = PandemicVecEnv(4, horizon=40)
    ctrl = StageSchedules(4, names=names)
    obs, _ = vec.reset(seed=0)
    stages = []
    for _ in range(40):
        obs, *_, info = vec.step(ctrl(obs))
        stages.append(info["stage"])
    stages = np.array(stages)  # (day, copy): the stage in force on each day
    assert stages[:4, 0].tolist() == [1, 2, 3, 4] and np.all(stages[4:, 0] == 4)
    assert np.all(stages[4:30, 1] == 4) and np.all(stages[34:, 1] == 0)
    assert stages[3:8, 2].tolist() == [1] * 5 and stages[8:13, 2].tolist() == [2] * 5
    assert stages[13, 2] == 3
    assert np.all(stages[:, 3] == 0)
    obs, _ = vec.reset(seed=0)
    inverted = StageSchedules(4, names=names, faithful_action_sign=True)(obs)
    assert inverted.tolist() == [LOWER, LOWER, STAY, STAY]  # the seed's: "lower" to go up
    assert len(SCHEDULES) == 10
    with pytest.raises(ValueError, match="unknown schedules"):
        StageSchedules(2, names=["S9"])


def test_schedule_noise_replaces_a_fraction_of_actions() -> None:
    vec = PandemicVecEnv(400, horizon=5)
    obs, _ = vec.reset(seed=0)
    clean = StageSchedules(400)(obs)
    noisy = StageSchedules(400, eps=0.3, seed=1)(obs)
    changed = np.mean(noisy != clean)
    assert 0.13 < changed < 0.27  # 0.3 * 2/3 of the random draws differ


def test_bc_clones_the_pooled_stage_schedules(tmp_path) -> None:
    """`goodhart orpo algo=bc env=pandemic`: the clone picks the schedules' actions on new data."""
    import torch

    from goodhartlab.config import dump_config, find_configs_dir, load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.models.gym_policy import load_gym_policy
    from goodhartlab.recipes import orpo
    from goodhartlab.recipes.base_policies import collect_controller_data
    from goodhartlab.runs import RunDir

    overrides = ["algo=bc", "env_horizon=40", "bc.episodes=20", "bc.epochs=40"]
    overrides += ["bc.controller_eps=0.0", "eval.episodes=4", "bc.schedules=null"]
    cfg = load_config(OrpoConfig, find_configs_dir() / "orpo" / "pandemic.yaml", overrides)
    run_dir = RunDir.prepare(tmp_path / "bc", dump_config(cfg))
    results = orpo.run(cfg, run_dir, resume=False)
    assert results["bc_loss"][-1] < 0.5 * results["bc_loss"][0]
    policy = load_gym_policy(run_dir.file("policy"))
    vec = ENVS["pandemic"].make_vec(10, horizon=40)
    obs, actions, _ = collect_controller_data(vec, "pandemic", StageSchedules(10), 40, seed=99)
    with torch.no_grad():
        predicted = policy.dist_inputs(obs).argmax(-1)
    assert obs.shape == (400, 312)
    assert (predicted == actions).float().mean() > 0.9


def test_bc_schedules_pick_the_pooled_schedules() -> None:
    """`bc.schedules` reaches the controller; only pandemic's controller takes names."""
    from goodhartlab.config import load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.errors import ConfigError

    controller = ENVS["pandemic"].make_controller(4, 0, 0.0, ["S0", "swedish"])
    assert controller.targets[:, 5].tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="unknown schedules"):
        ENVS["pandemic"].make_controller(2, 0, 0.0, ["S9"])
    with pytest.raises(ValueError, match="has no named variants"):
        ENVS["tomato"].make_controller(2, 0, 0.0, ["S0"])
    with pytest.raises(ConfigError, match=r"bc\.schedules: glucose's controller has no schedules"):
        load_config(OrpoConfig, None, ["env=glucose", "bc.schedules=[S0]"])


def test_orpo_setup_scales_coefficients_and_slices_the_last_row() -> None:
    import torch

    from goodhartlab.config import load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.models.gym_policy import GymPolicy
    from goodhartlab.recipes import orpo

    cfg = load_config(OrpoConfig, None, ["env=pandemic", "om_divergence_coeffs=[0.5]"])
    st = orpo.setup(cfg)
    assert st.om_coefs == [pytest.approx(0.5 * 0.08)]  # sqrt_chi2: sigma of base rewards
    assert (st.spec.obs_dim, st.spec.action_dim, st.spec.family) == (312, 3, "categorical")
    kl = load_config(OrpoConfig, None, ["env=pandemic", "action_dist_divergence_coeff=2.0"])
    assert orpo.setup(kl).ad_coef == pytest.approx(2.0 * 0.06)  # kl: per-step reward scale
    vec = PandemicVecEnv(2, horizon=5)
    obs, _ = vec.reset(seed=0)
    obs, *_ = vec.step(np.array([RAISE, STAY]))
    encoded = torch.as_tensor(ENVS["pandemic"].encode(obs))
    state = ENVS["pandemic"].discriminator_state(encoded)
    np.testing.assert_array_equal(state.numpy(), obs[:, -1, 0])  # the latest sample, 13 features
    _, discs, _ = orpo.make_models(cfg, st, [GymPolicy(st.spec)])
    assert discs[0].in_dim == 13 + 3  # state + one-hot action


def test_orpo_runs_on_pandemic_with_the_bc_base(tmp_path) -> None:
    """`goodhart orpo --config pandemic` wiring at a tiny size: BC base, OM term, evaluation."""
    from goodhartlab.config import dump_config, find_configs_dir, load_config
    from goodhartlab.config.orpo_schema import OrpoConfig
    from goodhartlab.recipes import orpo
    from goodhartlab.runs import RunDir

    overrides = ["iterations=2", "num_envs=2", "base_num_envs=2", "env_horizon=10"]
    overrides += ["rollout_steps=10", "bc.episodes=10", "bc.epochs=2", "eval.episodes=3"]
    cfg = load_config(OrpoConfig, find_configs_dir() / "orpo" / "pandemic.yaml", overrides)
    run_dir = RunDir.prepare(tmp_path / "run", dump_config(cfg))
    results = orpo.run(cfg, run_dir, resume=False)
    rows = run_dir.read_metrics()
    assert len(rows) == 2 and all("om/sqrt_chi2/0" in row for row in rows)
    assert results["om_coefs"] == [pytest.approx(0.2 * 0.08)]
    assert results["eval"]["true"]["n"] == 3
    assert results["eval"]["true"]["mean"] <= results["eval"]["proxy"]["mean"] + 1e-9
