"""The built-in links, one file each: e-stop, watchdogs, plausibility of the robot's state, input checks, the
joint-limit clamp, the workspace box."""

from robot_rl.safety.links.estop import EStopLink
from robot_rl.safety.links.input_checks import NonFiniteLink, ShapeLink
from robot_rl.safety.links.joint_limits import LIMIT_KEYS, JointLimits, JointLimitsLink
from robot_rl.safety.links.plausibility import PLAUSIBILITY_KEYS, PlausibilityLink
from robot_rl.safety.links.watchdogs import CommandWatchdogLink, ObservationWatchdogLink
from robot_rl.safety.links.workspace import ForwardKinematics, WorkspaceLink, workspace_violation

__all__ = [
    "LIMIT_KEYS",
    "PLAUSIBILITY_KEYS",
    "CommandWatchdogLink",
    "EStopLink",
    "ForwardKinematics",
    "JointLimits",
    "JointLimitsLink",
    "NonFiniteLink",
    "ObservationWatchdogLink",
    "PlausibilityLink",
    "ShapeLink",
    "WorkspaceLink",
    "workspace_violation",
]
