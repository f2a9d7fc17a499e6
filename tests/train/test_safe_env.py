"""Safe exploration: the training env behind the robot's safety chain (`TrainConfig.safety`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_rl.algos.sac.config import SACConfig
from robot_rl.train.config import TrainConfig
from robot_rl.train.envs import make_env
from robot_rl.train.loop import train
from robot_rl.train.safe_env import safety_filtered

ENV = "robot_rl/PandaReach-v0"


def _box_yaml(tmp_path: Path) -> Path:
    """A policy-node YAML whose workspace box is a thin slab around the start pose: most motion is held."""
    path = tmp_path / "box.yaml"
    safety = {"workspace_lower_m": [-1.0, -1.0, -1.0], "workspace_upper_m": [0.40, 1.0, 1.5]}
    path.write_text(yaml.safe_dump({"/**/policy_node": {"ros__parameters": {"safety": safety}}}))
    return path


def test_unchanged_actions_pass_and_the_info_says_so() -> None:
    env = safety_filtered(make_env(ENV, backend="mujoco"), "manifest")
    try:
        env.reset(seed=0)
        _, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
        assert info["safety_held"] is False and info["safety_changed_by"] == () and info["safety_correction"] == 0.0
        assert env.summary()["steps"] == 1 and env.summary()["held_steps"] == 0
    finally:
        env.close()


def test_the_chain_holds_what_the_yaml_forbids(tmp_path: Path) -> None:
    env = safety_filtered(make_env(ENV, backend="mujoco"), str(_box_yaml(tmp_path)))
    try:
        env.reset(seed=0)
        forward = np.zeros(env.action_space.shape, np.float32)
        forward[[1, 3]] = 0.6  # shoulder and elbow: the hand reaches out along +x (from about 0.32 m)
        for _ in range(20):
            env.step(forward)
        ee_x = env.unwrapped.backend.link_pose(env.unwrapped.robot.ee_link)[0][0]
        assert env.held > 0 and env.summary()["counters"].get("workspace", 0) == env.held
        assert ee_x <= 0.40 + 0.02  # one step's travel of slack past the box: the check is on the next position
    finally:
        env.close()


def test_a_non_suite_env_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a robot_rl/\\* suite env"):
        safety_filtered(make_env("Pendulum-v1"), "manifest")


def test_training_with_safety_writes_its_counts(tmp_path: Path) -> None:
    cfg = TrainConfig(
        env=ENV, backend="mujoco", total_steps=300, learning_starts=100, eval_every=0, eval_episodes=1,
        checkpoint_every=0, out_dir=tmp_path, run_name="safe", progress=False, tensorboard=False,
        safety=str(_box_yaml(tmp_path)),
    )  # fmt: skip
    train(cfg, "sac", SACConfig())
    counts = json.loads((tmp_path / "safe" / "safety.json").read_text())
    assert counts["steps"] == 300 and counts["held_steps"] > 0 and counts["counters"]["workspace"] > 0
    assert counts["episodes"] >= 1 and 0 <= counts["failed_episodes"] <= counts["episodes"]


def test_a_cbf_chain_keeps_exploration_off_the_pillar(tmp_path: Path) -> None:
    """Full speed at the reach-around pillar: the limits alone let the gripper hit it, the cbf link does not."""
    links = ["estop", "observation_watchdog", "command_watchdog", "plausibility", "shape", "non_finite", "cbf",
             "joint_limits", "workspace"]  # fmt: skip
    cbf = {"capsules_m": [0.48, 0.0, 0.0, 0.48, 0.0, 0.35, 0.04], "point_radius_m": 0.05, "margin_m": 0.02,
           "time_budget_s": 0.02}  # fmt: skip
    path = tmp_path / "cbf.yaml"
    path.write_text(yaml.safe_dump({"/**/policy_node": {"ros__parameters": {"safety": {"links": links, "cbf": cbf}}}}))
    failed = {}
    for source in ("manifest", str(path)):
        env = safety_filtered(make_env("robot_rl/PandaReachAround-v0", backend="mujoco"), source)
        try:
            raw = env.unwrapped
            for episode in range(2):
                env.reset(seed=episode)
                done = False
                while not done:  # the IK step toward the pillar's axis, at the action bound
                    ee, _ = raw.backend.link_pose(raw.robot.ee_link)
                    jp, _ = raw.backend.jacobian(raw.robot.ee_link)
                    dq = np.linalg.pinv(jp) @ np.array([0.48 - ee[0], -ee[1], 0.0])
                    action = (dq / (np.abs(dq).max() + 1e-9)).astype(np.float32)
                    _, _, terminated, truncated, _ = env.step(action)
                    done = terminated or truncated
            failed[source] = env.summary()["failed_episodes"]
        finally:
            env.close()
    assert failed["manifest"] == 2 and failed[str(path)] == 0
