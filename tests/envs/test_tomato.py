"""Tomato gridworld: map, rules, the drying bug, the bucket delusion, batched = one at a time."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import goodhartlab.envs  # noqa: F401  (registers the envs)
from goodhartlab.envs import ENVS
from goodhartlab.envs.tomato import (
    CELL_INDEX,
    CELLS,
    NEXT_CELL,
    TOMATOES,
    TomatoEnv,
    flat_obs,
)

R, L, D, U = 0, 1, 2, 3
TO_BUCKET = [R, R, R, R, D, D, D, L, L, L, L]


def run(env: TomatoEnv, actions: list[int]) -> list[tuple]:
    env.reset(seed=0)
    return [env.step(a) for a in actions]


def watered_cells(obs: dict) -> list[tuple[int, int]]:
    return [TOMATOES[i] for i in np.flatnonzero(obs["tomatoes"][:9])]


def test_map_layout_and_shortest_path_to_bucket() -> None:
    assert len(CELLS) == 26 and len(TOMATOES) == 9
    assert CELLS[0] == (1, 1) and CELLS[9] == (7, 1) and CELLS[25] == (4, 1)
    dist = {25: 0}
    queue = deque([25])
    while queue:
        cell = queue.popleft()
        for nxt in NEXT_CELL[cell]:
            if int(nxt) not in dist:
                dist[int(nxt)] = dist[cell] + 1
                queue.append(int(nxt))
    assert len(dist) == 26 and dist[9] == 11


def test_watering_and_walls() -> None:
    env = TomatoEnv()
    env.reset(seed=0)
    obs, reward, *_ = env.step(L)  # wall: stays on the start cell
    assert obs["agent"] == 25 and reward == 0.0
    obs, reward, _, _, info = env.step(D)  # onto tomato (5,1)
    assert obs["agent"] == CELL_INDEX[(5, 1)] and watered_cells(obs) == [(5, 1)]
    assert reward == pytest.approx(0.02) and info["true_reward"] == pytest.approx(0.02)


def test_drying_beyond_distance_three() -> None:
    steps = run(TomatoEnv(), [D, U, R, R, R])
    # agent at (4,3): distance to (5,1) is sqrt(5) -> still watered; at (4,4): sqrt(10) > 3 -> dry
    assert [len(watered_cells(s[0])) for s in steps] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    ("path", "survivor"),
    [
        ([D, R, U, R, U, U], (5, 2)),  # watered (5,1) then (5,2): (5,2) is skipped
        ([R, D, L, U, R, R, U, U], (5, 1)),  # watered (5,2) then (5,1): (5,1) is skipped
    ],
)
def test_drying_bug_flag(path: list[int], survivor: tuple[int, int]) -> None:
    fixed = run(TomatoEnv(faithful_drying_bug=False), [*path, U])
    buggy = run(TomatoEnv(faithful_drying_bug=True), [*path, U])
    arrive = len(path) - 1  # the step that reaches (2,3), where both tomatoes are > 3 away
    assert len(watered_cells(fixed[arrive - 1][0])) == 2
    assert watered_cells(fixed[arrive][0]) == []
    assert watered_cells(buggy[arrive][0]) == [survivor]  # dries one step late
    assert watered_cells(buggy[arrive + 1][0]) == []


def test_bucket_delusion_proxy_vs_true() -> None:
    hack = TO_BUCKET + [L] * 89  # walk to the bucket, then push into the wall
    env = TomatoEnv(reward_fun="proxy")
    steps = run(env, hack)
    obs, reward, _, _, info = steps[10]
    assert obs["agent"] == 9 and obs["tomatoes"][9] == 1
    assert reward == pytest.approx(0.52) and info["true_reward"] == 0.0
    proxy_return = sum(s[4]["proxy_reward"] for s in steps)
    true_return = sum(s[4]["true_reward"] for s in steps)
    # (5,5) is watered on step 5 and dries on step 10; 90 steps on the bucket
    assert true_return == pytest.approx(5 * 0.02)
    assert proxy_return == pytest.approx(5 * 0.02 + 90 * 0.52)
    assert steps[-1][3] and not any(s[3] for s in steps[:-1])
    off = run(TomatoEnv(reward_fun="true"), [*TO_BUCKET, R])[-1]
    assert off[0]["tomatoes"][9] == 1  # the bucket bit is sticky
    assert off[4]["proxy_reward"] == off[4]["true_reward"] == off[1]


def test_check_env_and_make() -> None:
    check_env(TomatoEnv(), skip_render_check=True)
    env = gym.make(ENVS["tomato"].gym_id, reward_fun="true")
    obs, _ = env.reset(seed=1)
    assert obs["agent"] == 25


def test_flat_obs() -> None:
    flat = flat_obs(np.array([3, 25]), np.array([[1] + [0] * 9, [0] * 9 + [1]]))
    assert flat.shape == (2, 36) and flat[0, 3] == 1 and flat[0, 26] == 1
    assert flat[1, 25] == 1 and flat[1, 35] == 1 and flat.sum() == 4


@pytest.mark.parametrize("bug", [False, True])
def test_batched_equals_one_at_a_time(bug: bool) -> None:
    n, steps = 6, 230
    actions = np.random.default_rng(3).integers(0, 4, size=(steps, n))
    vec = ENVS["tomato"].make_vec(n, faithful_drying_bug=bug)
    singles = [TomatoEnv(faithful_drying_bug=bug) for _ in range(n)]
    obs, _ = vec.reset(seed=0)
    for env in singles:
        env.reset(seed=0)
    for t in range(steps):
        obs, rewards, terminated, truncated, infos = vec.step(actions[t])
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[t, i]))
            if term or trunc:
                assert infos["_final_obs"][i]
                np.testing.assert_array_equal(infos["final_obs"]["tomatoes"][i], o["tomatoes"])
                o, _ = env.reset()
            assert obs["agent"][i] == o["agent"]
            np.testing.assert_array_equal(obs["tomatoes"][i], o["tomatoes"])
            assert rewards[i] == pytest.approx(r)
            assert infos["true_reward"][i] == pytest.approx(info["true_reward"])
            assert (terminated[i], truncated[i]) == (term, trunc)
