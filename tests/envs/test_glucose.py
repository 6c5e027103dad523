"""Glucose env: patient steady state, integrator accuracy, rewards, seeding, batched = single."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import goodhartlab.envs  # noqa: F401  (registers the envs)
from goodhartlab.envs import ENVS
from goodhartlab.envs import glucose_patient as patient
from goodhartlab.envs.glucose import (
    ACTION_SCALE,
    GlucoseEnv,
    GlucoseVecEnv,
    expected_cost_reward,
    magni_reward,
)

BASAL_ACTION = patient.IDEAL_BASAL / ACTION_SCALE  # = 1 / 43.2
BG0 = 138.56  # adult#001 basal glucose, mg/dL


def simulate_minutes(
    minutes: int, insulin: float, meal_g: float, dt: float, bolus: float = 1.0
) -> np.ndarray:
    """BG after every minute: a meal announced at minute 30, insulin x bolus in minutes 40-99."""
    x = patient.ADULT_001_X0[:, None].copy()
    stomach = patient.Stomach.empty(1)
    bgs = []
    for minute in range(minutes):
        served = np.array([meal_g / 5.0 if 30 <= minute < 35 else 0.0])
        cho, dbar = stomach.eat(served, x, faithful_dbar_units=False)
        rate = np.array([insulin * (bolus if 40 <= minute < 100 else 1.0)])
        for _ in range(round(1 / dt)):
            x = patient.rk4_step(x, cho, rate, dbar, dt)
        bgs.append(patient.subcutaneous_glucose(x)[0])
    return np.array(bgs)


def test_basal_steady_state_and_drift_without_insulin() -> None:
    steady = simulate_minutes(600, patient.IDEAL_BASAL, 0.0, 1.0)
    assert np.abs(steady - BG0).max() < 1e-6
    no_insulin = simulate_minutes(600, 0.0, 0.0, 1.0)
    assert np.all(np.diff(no_insulin[10:]) > 0) and no_insulin[-1] > 200  # rises without insulin


def test_rk4_one_minute_matches_fine_integration() -> None:
    coarse = simulate_minutes(480, patient.IDEAL_BASAL, 80.0, 1.0, bolus=5.0)
    fine = simulate_minutes(480, patient.IDEAL_BASAL, 80.0, 1.0 / 16, bolus=5.0)
    assert coarse.max() > 200  # the meal really moves glucose
    assert np.abs(coarse - fine).max() < 1e-3


def test_eating_rate_and_dbar() -> None:
    stomach = patient.Stomach.empty(1)
    x = np.zeros((13, 1))
    eaten, dbars = [], []
    for minute in range(20):
        cho, dbar = stomach.eat(np.array([14.0 if minute < 5 else 0.0]), x, False)
        eaten.append(cho[0])
        dbars.append(dbar[0])
    assert eaten == [5.0] * 14 + [0.0] * 6  # 70 g announced, eaten at 5 g/min
    assert dbars[0] == 5000.0 and dbars[13] == 70000.0  # grams so far, in mg
    _, dbar_faithful = patient.Stomach.empty(1).eat(np.array([14.0]), x, True)
    assert dbar_faithful[0] == 5.0  # the seed adds grams to milligrams


def test_env_holds_basal_until_breakfast() -> None:
    env = GlucoseEnv()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 48) and np.allclose(obs[0], BG0) and np.allclose(obs[1], 0.021122675)
    for _ in range(59):  # 5 h: the earliest breakfast time
        obs, reward, *_, info = env.step(np.array([BASAL_ACTION], np.float32))
    assert abs(info["bg"] - BG0) < 1e-3 and abs(obs[0, -1] - BG0) < 1e-3
    assert info["insulin"] == pytest.approx(patient.IDEAL_BASAL, rel=1e-6)
    assert reward == pytest.approx(-0.32 * info["insulin"], rel=1e-6)


def test_magni_reward_hand_values() -> None:
    bg = np.array([139.0, 70.0, 350.0, 40.0, 600.0])
    expected = [-3.2745573e-05, -25.004845822, -43.145434136, -84.339628356, -106.482697124]
    np.testing.assert_allclose(magni_reward(bg), expected, rtol=1e-8)
    assert magni_reward(np.array([0.5]))[0] == magni_reward(np.array([1.0]))[0]


def test_proxy_reward_hand_values() -> None:
    bg = np.array([65.0, 70.0, 300.0])
    insulin = np.array([0.1, 0.1, 0.0])
    np.testing.assert_allclose(
        expected_cost_reward(bg, insulin), [-0.16042465753, -0.032, 0.0], atol=1e-10
    )


def test_meal_scenario_statistics() -> None:
    rng = np.random.default_rng(0)
    days = [patient.draw_day_meals(rng) for _ in range(2000)]
    times = np.array([d[0] for d in days])
    amounts = np.array([d[1] for d in days])
    assert np.all(times >= patient.MEAL_TIME_LOW_MIN) and np.all(
        times <= patient.MEAL_TIME_HIGH_MIN
    )
    assert abs((amounts[:, 0] > 0).mean() - 0.95) < 0.02
    assert abs((amounts[:, 1] > 0).mean() - 0.3) < 0.04
    assert abs(amounts[amounts[:, 4] > 0, 4].mean() - 97.7) < 1.5
    served = patient.announced_carbs(
        np.array([[100, 0, 0, 0, 0, 0]]), np.array([[50.0, 0, 0, 0, 0, 0]]), np.array([104])
    )
    assert served[0] == 10.0


def test_seed_determinism() -> None:
    actions = np.random.default_rng(1).uniform(0, 0.1, size=(150, 1)).astype(np.float32)

    def trajectory(seed: int) -> np.ndarray:
        env = GlucoseEnv()
        env.reset(seed=seed)
        return np.array([env.step(a)[4]["bg"] for a in actions])

    np.testing.assert_array_equal(trajectory(5), trajectory(5))
    assert not np.allclose(trajectory(5), trajectory(6))


def test_batched_equals_one_at_a_time() -> None:
    n, steps = 3, 300  # crosses breakfast, lunch and midnight
    actions = np.random.default_rng(2).uniform(0, 0.1, size=(steps, n, 1)).astype(np.float32)
    vec = ENVS["glucose"].make_vec(n, reward_fun="true")
    singles = [GlucoseEnv(reward_fun="true") for _ in range(n)]
    obs, _ = vec.reset(seed=10)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=10 + i)[0], obs[i])
    for t in range(steps):
        obs, rewards, _, _, infos = vec.step(actions[t])
        for i, env in enumerate(singles):
            o, r, _, _, info = env.step(actions[t, i])
            np.testing.assert_allclose(obs[i], o, rtol=1e-12)
            assert rewards[i] == pytest.approx(r, rel=1e-12)
            assert infos["proxy_reward"][i] == pytest.approx(info["proxy_reward"], rel=1e-12)
    assert np.all(infos["true_reward"] * 1e-3 == rewards)


def test_termination_penalty_and_autoreset() -> None:
    vec = GlucoseVecEnv(2, reward_fun="proxy")
    reset_obs, _ = vec.reset(seed=0)
    vec._x[12, 0] = vec._x[3, 0] = 1200.0 * patient.ADULT_001["Vg"]  # BG far above 1000
    obs, rewards, terminated, truncated, infos = vec.step(np.zeros((2, 1), np.float32))
    assert terminated.tolist() == [True, False] and not truncated.any()
    assert rewards[0] == pytest.approx(infos["proxy_reward"][0] - 100.0)
    assert infos["_final_obs"].tolist() == [True, False]
    # CGM reads at minutes 3 (clipped to 400) and holds; minutes 1-2 still hold the old reading
    assert infos["final_obs"][0, 0, -1] == pytest.approx((2 * BG0 + 3 * 400.0) / 5, rel=1e-6)
    np.testing.assert_array_equal(obs[0], reset_obs[0])


def test_truncation_at_horizon() -> None:
    env = GlucoseEnv(horizon=3)
    env.reset(seed=0)
    flags = [env.step(np.array([0.02], np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_check_env_and_make() -> None:
    check_env(GlucoseEnv(), skip_render_check=True)
    env = gym.make(ENVS["glucose"].gym_id, reward_fun="true")
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_glucose_encoding_normalizes_like_the_seed_and_the_discriminator_sees_the_last_cgm() -> (
    None
):
    obs = np.zeros((1, 2, 48), np.float32)
    obs[0, 0, -1], obs[0, 1, -1] = 200.0, 0.05
    info = ENVS["glucose"]
    flat = info.encode(obs)
    assert flat.shape == (1, 96)
    assert flat[0, 47] == pytest.approx(1.0) and flat[0, 95] == pytest.approx(0.5)
    assert info.discriminator_state(flat).tolist() == [[pytest.approx(1.0)]]
