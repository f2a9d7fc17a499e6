"""Robot descriptions: which URDF, which joints the agent commands, where the end effector is, servo gains."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.errors import unknown_name
from sim.robots.urdf import JointInfo, read_joints, resolve


@dataclass(frozen=True)
class RobotDescription:
    """A robot as both backends build it from one URDF shipped with pybullet_data."""

    name: str
    """Registry name, e.g. "panda"."""
    urdf: str
    """URDF path relative to the pybullet_data folder."""
    joints: tuple[str, ...]
    """Every moving joint, in observation order (actuated and passive)."""
    actuated: tuple[str, ...]
    """Joints the agent commands, in action order (a subset of `joints`)."""
    ee_link: str
    """Link whose pose is the end-effector pose ("" for robots without one)."""
    home: tuple[float, ...]
    """Joint positions (in `joints` order) the robot starts from."""
    servo_kp: tuple[float, ...]
    """Position-servo stiffness per actuated joint (N·m/rad or N/m)."""
    servo_kd: tuple[float, ...]
    """Position-servo damping per actuated joint (N·m·s/rad or N·s/m)."""
    armature: tuple[float, ...] = ()
    """Reflected rotor inertia per actuated joint (kg·m²); empty = none. Real gear motors have it and it keeps
    a stiff servo on a light distal link numerically stable at a 2 ms physics step."""
    frozen_joints: tuple[str, ...] = ()
    """URDF joints made fixed for this robot (e.g. fingers kept closed)."""
    base_position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Where the robot base sits in the world frame."""
    effort_override: dict[str, float] = field(default_factory=dict)
    """Effort limits used where the URDF gives none or an unusable one (joint name -> N or N·m)."""
    acceleration_limit_rad_s2: tuple[float, ...] = ()
    """The maker's joint acceleration limits per actuated joint (rad/s² or m/s²; empty = unknown). URDFs carry
    none; the scripted experts keep to them, so their demonstrations stay executable behind the deploy safety
    chain's acceleration limit (an expert that jumps to full speed in one tick is clipped there, and a chunked
    policy that imitated it runs its chunk open-loop off the planned path)."""

    def __post_init__(self) -> None:
        n_act = len(self.actuated)
        for label, seq in (("servo_kp", self.servo_kp), ("servo_kd", self.servo_kd)):
            if len(seq) != n_act:
                raise ValueError(f"{self.name}: {label} needs {n_act} values, got {len(seq)}")
        if self.armature and len(self.armature) != n_act:
            raise ValueError(f"{self.name}: armature needs {n_act} values, got {len(self.armature)}")
        accel = self.acceleration_limit_rad_s2
        if accel and (len(accel) != n_act or min(accel) <= 0):
            raise ValueError(f"{self.name}: acceleration_limit_rad_s2 needs {n_act} positive values, got {accel}")
        if len(self.home) != len(self.joints):
            raise ValueError(f"{self.name}: home needs {len(self.joints)} values, got {len(self.home)}")
        missing = set(self.actuated) - set(self.joints)
        if missing:
            raise ValueError(f"{self.name}: actuated joints {sorted(missing)} are not in joints")

    @property
    def urdf_path(self) -> str:
        """Absolute path of the URDF."""
        return resolve(self.urdf)

    def joint_info(self) -> dict[str, JointInfo]:
        """Limits of every joint in `joints`, read from the URDF (with `effort_override` applied)."""
        all_joints = read_joints(self.urdf_path)
        out = {}
        for name in self.joints:
            info = all_joints[name]
            if name in self.effort_override:
                info = JointInfo(**{**info.__dict__, "effort": self.effort_override[name]})
            out[name] = info
        return out

    def limits(self, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Arrays `lower`, `upper`, `velocity`, `effort` for `names` (default: actuated joints), in that order."""
        info = self.joint_info()
        names = self.actuated if names is None else names
        return {
            key: np.array([getattr(info[n], key) for n in names], dtype=np.float64)
            for key in ("lower", "upper", "velocity", "effort")
        }


_PANDA_ARM = tuple(f"panda_joint{i}" for i in range(1, 8))
_IIWA_ARM = tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))

ROBOTS: dict[str, RobotDescription] = {
    "panda": RobotDescription(
        name="panda",
        urdf="franka_panda/panda.urdf",
        joints=_PANDA_ARM,
        actuated=_PANDA_ARM,
        ee_link="panda_grasptarget",
        # Franka's "ready" pose: gripper above the table, pointing down.
        home=(0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
        servo_kp=(600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0),
        servo_kd=(50.0, 50.0, 50.0, 50.0, 20.0, 15.0, 5.0),
        armature=(0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1),
        # Fingers stay closed: the push task uses the closed gripper as a pusher.
        frozen_joints=("panda_finger_joint1", "panda_finger_joint2"),
        # Franka's published joint acceleration limits (the deploy safety configs use the same).
        acceleration_limit_rad_s2=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    ),
    "iiwa": RobotDescription(
        name="iiwa",
        urdf="kuka_iiwa/model.urdf",
        joints=_IIWA_ARM,
        actuated=_IIWA_ARM,
        ee_link="lbr_iiwa_link_7",
        home=(0.0, 0.6, 0.0, -1.3, 0.0, 1.2, 0.0),
        servo_kp=(800.0, 800.0, 600.0, 600.0, 300.0, 200.0, 100.0),
        servo_kd=(60.0, 60.0, 50.0, 50.0, 25.0, 20.0, 10.0),
        armature=(0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1),
    ),
    "cartpole": RobotDescription(
        name="cartpole",
        urdf="cartpole.urdf",
        joints=("slider_to_cart", "cart_to_pole"),
        actuated=("slider_to_cart",),
        ee_link="",
        home=(0.0, 0.0),
        servo_kp=(0.0,),
        servo_kd=(0.0,),
        # The URDF's 1000 N would let a policy teleport the cart; 20 N is a realistic belt drive for 1 kg.
        effort_override={"slider_to_cart": 60.0},
    ),
}


def get_robot(name: str) -> RobotDescription:
    """The registered robot `name`; a SimError with suggestions otherwise."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise unknown_name("robot", name, ROBOTS) from None


def is_unlimited(lower: float, upper: float) -> bool:
    """True for a joint without position limits (continuous)."""
    return math.isinf(lower) and math.isinf(upper)
