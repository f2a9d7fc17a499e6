"""Sim evaluation behind the deployment safety chain (S5): filter on → no executed command beyond the limits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.train.evaluate import evaluate
from robot_rl.train.safe_eval import default_safety_config, limit_violations, safe_actor


def test_chain_in_the_loop_removes_every_limit_violation(reach_bundle: Path) -> None:
    policy = OnnxPolicy.load(reach_bundle)
    robot = policy.spec.robot
    # A tight acceleration limit (0.1 rad/s of change per 50 ms step) so that the raw policy breaks it.
    config = dataclasses.replace(
        default_safety_config(robot, policy.spec.control_hz), acceleration_limit_rad_s2=(2.0,) * 7
    )
    # Off: the raw policy's physical commands, checked against the same limits.
    raw: list[list[np.ndarray]] = []

    def unfiltered(obs: np.ndarray) -> np.ndarray:
        a = policy.act(obs)
        raw[-1].append(a.astype(np.float64))
        return a

    evaluate(unfiltered, "robot_rl/PandaReach-v0", 2, 0, on_reset=lambda obs: raw.append([]))
    off = limit_violations(raw, config, config.control_period_s)
    actor = safe_actor(policy.act, robot, config)
    res = evaluate(actor, "robot_rl/PandaReach-v0", 2, 0, on_reset=actor.reset)
    on = limit_violations(actor.executed, config, config.control_period_s)
    assert on["steps"] == off["steps"] == sum(res.lengths)
    assert off["acceleration"] > 0, off  # a random policy jerks: the check can fail
    assert on["velocity"] == 0 and on["acceleration"] == 0, on
    assert actor.chain.counters["acceleration_limit"] > 0


def test_eval_cli_with_safety(reach_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--policy", str(reach_bundle), "--episodes", "1", "--safety", "manifest"]) == 0
    out = capsys.readouterr().out
    assert "behind the safety chain" in out and "beyond the velocity/acceleration limits: 0/0" in out
    assert main(["eval", "--policy", str(reach_bundle), "--episodes", "1", "--safety", "/nonexistent.yaml"]) != 0
