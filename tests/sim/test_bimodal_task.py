"""The multimodal task (robot_rl/PandaReachAround-v0): its expert is really bimodal, both ways succeed, and the
average of the two ways fails — in both engines. This is the task that shows why generative policies exist."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from robot_rl.data.datasets.sources.expert import expert_episodes
from sim.env import RobotTaskEnv
from sim.reach_around_expert import ReachAroundExpert
from sim.registry import register_envs
from sim.tasks.reach_around import PILLAR_CENTER_M, PILLAR_HALF_EXTENTS_M, point_box_distance

# Explicit, not `import sim`: under pytest, `tests/` is on sys.path and `sim` resolves to the tests/sim folder.
register_envs()

ENV_ID = "robot_rl/PandaReachAround-v0"
BACKENDS = ("mujoco", "pybullet")
N_EPISODES = 20


def _run(env: RobotTaskEnv, act: Any, seed: int) -> dict[str, Any]:
    """One episode; the fingertip's y as it passes the pillar's centre line tells which way it went."""
    obs, _ = env.reset(seed=seed)
    passing_y, best_dx = 0.0, np.inf
    actions, observations = [], [obs]
    for _ in range(env.max_steps):
        action = act(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        tip, _ = env.backend.link_pose(env.robot.ee_link)
        if abs(tip[0] - PILLAR_CENTER_M[0]) < best_dx:
            best_dx, passing_y = abs(tip[0] - PILLAR_CENTER_M[0]), float(tip[1])
        if terminated or truncated:
            break
    return {
        "route": env.task.route,  # type: ignore[attr-defined]
        "passing_y": passing_y,
        "success": info["is_success"],
        "terminated": terminated,
        "info": info,
        "actions": np.stack(actions),
        "obs": np.stack(observations),
    }


def _expert_episodes(backend: str) -> list[dict[str, Any]]:
    env = RobotTaskEnv(task="reach_around", backend=backend)
    expert = env.make_expert()
    out = []
    for seed in range(N_EPISODES):
        expert.reset()
        out.append(_run(env, expert.act, seed))
    env.close()
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_expert_is_bimodal_and_both_ways_succeed(backend: str) -> None:
    episodes = _expert_episodes(backend)
    for ep in episodes:
        # The lateral position beside the pillar tells the way taken, well clear of the midline.
        assert np.sign(ep["passing_y"]) == ep["route"] and abs(ep["passing_y"]) > 0.1, ep["passing_y"]
    for route in (1, -1):
        way = [ep for ep in episodes if ep["route"] == route]
        assert len(way) >= 5, f"{backend}: route {route} taken in only {len(way)} of {N_EPISODES} episodes"
        rate = np.mean([ep["success"] for ep in way])
        assert rate >= 0.9, f"{backend}: route {route} succeeds in {rate:.2f} of its episodes"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_average_of_the_two_ways_drives_into_the_pillar(backend: str) -> None:
    """The mean of a left and a right expert action (what an MSE regressor learns at the fork) fails."""
    env = RobotTaskEnv(task="reach_around", backend=backend)
    left, right = ReachAroundExpert(env, route=1), ReachAroundExpert(env, route=-1)
    failures = 0
    for seed in range(10):
        left.reset()
        right.reset()
        ep = _run(env, lambda obs: (left.act(obs) + right.act(obs)) / 2, seed)
        if not ep["success"]:
            failures += 1
        if ep["terminated"]:  # contact ends the episode as a failure, with the penalty
            assert ep["info"]["reward/collision"] < 0 and ep["info"]["pillar_clearance_m"] <= 0
            assert not ep["success"]
    env.close()
    assert failures >= 8, f"{backend}: the averaged expert reached the target in {10 - failures} of 10 episodes"


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_reproduces_route_and_trajectory(backend: str) -> None:
    runs = []
    for _ in range(2):
        env = RobotTaskEnv(task="reach_around", backend=backend)
        expert = env.make_expert()
        expert.reset()
        runs.append(_run(env, expert.act, seed=7))
        env.close()
    a, b = runs
    assert a["route"] == b["route"]
    np.testing.assert_array_equal(a["obs"], b["obs"])
    np.testing.assert_array_equal(a["actions"], b["actions"])


def test_observation_does_not_reveal_the_route() -> None:
    """The route is the expert's choice, drawn after the layout: no observation entry carries it, and it is not the
    side the target or the start pose leans to (both ways occur on either side of each)."""
    env = RobotTaskEnv(task="reach_around", backend="mujoco")
    assert set(env.observation_shapes) == {"joint_pos", "joint_vel", "ee_pos", "ee_quat", "target_pos", "target_rel"}
    routes: dict[tuple[str, bool], set[int]] = {}
    for seed in range(40):
        env.reset(seed=seed)
        named = env.observation_dict()
        for entry in ("target_pos", "ee_pos"):
            routes.setdefault((entry, bool(named[entry][1] > 0)), set()).add(env.task.route)  # type: ignore[attr-defined]
    env.close()
    assert len(routes) == 4
    for (entry, leans_left), seen in routes.items():
        assert seen == {1, -1}, f"with {entry} leaning {'left' if leans_left else 'right'} only route {seen} occurs"


def test_engines_agree_on_the_layout() -> None:
    mj = RobotTaskEnv(task="reach_around", backend="mujoco")
    pb = RobotTaskEnv(task="reach_around", backend="pybullet")
    for seed in range(5):
        mj.reset(seed=seed)
        pb.reset(seed=seed)
        np.testing.assert_array_equal(mj.task.target, pb.task.target)  # type: ignore[attr-defined]
        assert mj.task.route == pb.task.route  # type: ignore[attr-defined]
        np.testing.assert_allclose(mj.observation_dict()["ee_pos"], pb.observation_dict()["ee_pos"], atol=1e-3)
        clear_mj = mj.task.pillar_clearance_m(mj.backend)  # type: ignore[attr-defined]
        clear_pb = pb.task.pillar_clearance_m(pb.backend)  # type: ignore[attr-defined]
        assert clear_mj == pytest.approx(clear_pb, abs=1e-3) and clear_mj > 0.03
    mj.close()
    pb.close()


def test_pillar_distance_is_zero_inside_and_euclidean_outside() -> None:
    center, half = PILLAR_CENTER_M, PILLAR_HALF_EXTENTS_M
    offsets = np.array([[0.0, 0.0, 0.0], [half[0] + 0.1, 0.0, 0.0], [half[0] + 0.03, half[1] + 0.04, 0.0]])
    points = center + offsets  # inside; 10 cm in front of a face; 3 cm and 4 cm past an edge
    np.testing.assert_allclose(point_box_distance(points, center, half), [0.0, 0.1, 0.05])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dataset_expert_records_the_task_quickly(backend: str) -> None:
    """`robot-rl dataset expert` needs nothing task-specific: the generic expert source records it, and an
    expert episode costs well under a second of CPU."""
    start = time.process_time()
    spec, episodes = expert_episodes(ENV_ID, 4, seed=0, backend=backend)
    cpu_s_per_episode = (time.process_time() - start) / 4
    assert spec.env_id == ENV_ID and spec.robot is not None and spec.robot.task == "reach_around"
    assert all(ep.success for ep in episodes)
    assert cpu_s_per_episode < 0.5, f"{backend}: {cpu_s_per_episode:.2f} s of CPU per expert episode"


def test_registered_id_builds_in_both_engines() -> None:
    for backend in BACKENDS:
        env = gym.make(ENV_ID, backend=backend)
        assert env.unwrapped.task.name == "reach_around"  # type: ignore[attr-defined]
        env.close()
