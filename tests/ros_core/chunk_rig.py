"""A one-joint velocity robot for chunk-execution tests: a real `ControlStep` with a real safety chain, whose
observation carries the tick number, so a test can tell which observation a chunk was planned from."""

from __future__ import annotations

from robot_rl.core.robot import CommandInterface
from robot_rl.safety import SafetyConfig, build_chain
from ros_nodes.core.chunk_executor import ChunkExecutionConfig
from ros_nodes.core.control_step import ControlStep
from ros_nodes.core.observations import ObservationAssembler, ObservationLayout

PERIOD = 0.02
"""Control period of the rig, s."""
JOINTS = ("j",)
LAYOUT = ObservationLayout(keys=("joint_pos", "tick"), sizes=(1, 1), joint_names=JOINTS)
"""Joint position, then the tick number (an `/observations/tick` topic)."""
COMMAND = CommandInterface("joint_velocity", "rad/s", JOINTS, (-1.0,), (1.0,))
VEL_LIMIT = 0.5
"""The chain's velocity limit, rad/s."""


def make_step(
    policy: object,
    *,
    execution: ChunkExecutionConfig | None = None,
    replan_every: int = 0,
    period_s: float = PERIOD,
) -> ControlStep:
    """A reset control step around `policy` (position limits far away, acceleration practically unlimited)."""
    config = SafetyConfig.for_joints(JOINTS, "velocity", period_s, [-100.0], [100.0], [VEL_LIMIT], [1e6])
    step = ControlStep(
        policy,  # type: ignore[arg-type]
        ObservationAssembler(LAYOUT),
        COMMAND,
        build_chain(config),
        execution=execution,
        replan_every=replan_every,
        period_s=period_s,
    )
    step.reset()
    return step


def feed(step: ControlStep, k: int, period_s: float = PERIOD) -> None:
    """Fresh joint state and tick observation for tick k (arriving at k periods)."""
    t = k * period_s
    assert step.assembler.update_joint_state(["j"], [0.0], [0.0], arrival_s=t) is None
    assert step.assembler.update_observation("tick", [float(k)], arrival_s=t) is None
