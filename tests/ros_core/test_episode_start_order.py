"""Unstamped observations at a robot-reset episode start: judged by arrival, in the order the robot publishes a
step (observations, joint state, done), the new episode starts from its own step at once and never from the old
episode's last one (see `ObservationAssembler.require_fresh`)."""

from __future__ import annotations

import numpy as np

from ros_nodes.core.episode_session import EpisodeSession
from tests.ros_core.chunk_rig import PERIOD, make_step


class _Last:
    chunk_size, execution_horizon, obs_history = 1, 0, 1

    def __init__(self) -> None:
        self.seen: list[float] = []

    def reset(self) -> None: ...

    def plan(self, observation: np.ndarray) -> np.ndarray:
        self.seen.append(float(observation[1]))
        return np.zeros((1, 1))


def _step_burst(asm: object, k: int, t: float) -> None:
    """Robot step k as the simulated robot publishes it: the task observation, then the stamped joint state."""
    assert asm.update_observation("tick", [float(k)], arrival_s=t) is None  # type: ignore[attr-defined]
    assert asm.update_joint_state(["j"], [0.0], [0.0], arrival_s=t, header_stamp_s=t) is None  # type: ignore[attr-defined]


def test_in_publication_order_the_new_episode_starts_from_its_own_first_step_without_waiting() -> None:
    policy = _Last()
    step = make_step(policy)
    session = EpisodeSession(step, robot_resets_on_done=True)
    session.begin()
    for k in range(3):
        _step_burst(step.assembler, k, k * PERIOD)
        session.tick(k * PERIOD + 1e-4)
    session.on_episode_done(2 * PERIOD + 2e-4)  # after step 2's messages: they are the old episode's
    _step_burst(step.assembler, 3, 3 * PERIOD)
    record = session.tick(3 * PERIOD + 1e-4).record
    assert not np.isnan(record.policy_action).any() and policy.seen == [0.0, 1.0, 2.0, 3.0]
    assert step.assembler.episode_start_waits == 0
