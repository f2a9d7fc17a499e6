"""PyBullet backend: loads the same processed URDF (DIRECT mode, one physics client per env)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import pybullet as pb

from sim.backend import BoxObject, PhysicsBackend, Scene, check_length_scales
from sim.errors import SimError
from sim.randomization import EpisodeRandomization
from sim.robots.description import RobotDescription
from sim.robots.urdf import processed_urdf_text, stretch_link_inertials

# PyBullet's position servo is a velocity-level constraint motor, not a torque PD: its gains are unitless
# error-reduction factors. These give well-damped tracking comparable to the MuJoCo servos; the remaining
# difference between the two servo laws is part of what the sim-to-sim check measures.
_POSITION_GAIN = 0.3
_VELOCITY_GAIN = 1.0


class PybulletBackend(PhysicsBackend):
    """The robot and scene in PyBullet (1/240 s step by default)."""

    name = "pybullet"

    def __init__(
        self,
        robot: RobotDescription,
        scene: Scene,
        *,
        servo: bool = True,
        physics_dt_s: float = 1.0 / 240.0,
        link_length_scale: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(robot, scene)
        self.physics_dt_s = physics_dt_s
        self.cid = pb.connect(pb.DIRECT)
        c = self.cid
        pb.setTimeStep(physics_dt_s, physicsClientId=c)
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=c)
        text = processed_urdf_text(robot.urdf_path, robot.frozen_joints)
        # Bullet cannot move a link's centre of mass after loading: a stretched model is loaded stretched.
        self._length_scales = dict(link_length_scale or {})
        text = stretch_link_inertials(text, self._length_scales)
        # loadURDF reads a file; mesh paths in the text are absolute, so a temporary copy loads identically.
        fd, path = tempfile.mkstemp(suffix=".urdf", prefix=f"robot_rl_{robot.name}_")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            self.body = pb.loadURDF(
                path, basePosition=list(robot.base_position_m), useFixedBase=True,
                flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c,
            )
        finally:
            os.unlink(path)
        self._index: dict[str, int] = {}
        self._link_index: dict[str, int] = {}
        for j in range(pb.getNumJoints(self.body, physicsClientId=c)):
            info = pb.getJointInfo(self.body, j, physicsClientId=c)
            self._index[info[1].decode()] = j
            self._link_index[info[12].decode()] = j
        self._jidx = [self._index[n] for n in robot.joints]
        self._aidx = [self._index[n] for n in robot.actuated]
        self._movable = [j for j in range(pb.getNumJoints(self.body, physicsClientId=c))
                         if pb.getJointInfo(self.body, j, physicsClientId=c)[2] != pb.JOINT_FIXED]
        self.servo = servo
        self._effort = robot.limits()["effort"]
        # PyBullet enables a velocity motor on every joint by default; passive joints must swing freely and
        # effort-controlled joints must feel only our effort.
        passive = [j for j in self._jidx if j not in self._aidx or not self.servo]
        if passive:
            pb.setJointMotorControlArray(self.body, passive, pb.VELOCITY_CONTROL, forces=[0.0] * len(passive),
                                         physicsClientId=c)
        for j in self._jidx:
            # PyBullet gives every link a small linear/angular velocity damping MuJoCo does not have: remove it,
            # so the only damping is the joint damping the URDF declares (which both engines read).
            pb.changeDynamics(self.body, j, linearDamping=0.0, angularDamping=0.0, physicsClientId=c)
        self._nominal_damping = [float(pb.getJointInfo(self.body, j, physicsClientId=c)[6]) for j in self._jidx]
        # getJointInfo keeps reporting the URDF's damping after changeDynamics: remember what was set.
        self._damping = np.array(self._nominal_damping)
        self.objects: dict[str, int] = {}
        if scene.floor:
            plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
            self.floor = pb.createMultiBody(0.0, plane, physicsClientId=c)
        for obj in scene.objects:
            self._create_object(obj)
        self._targets = np.array([robot.home[robot.joints.index(n)] for n in robot.actuated])
        self._efforts = np.zeros(len(robot.actuated))
        self._gain_scale = np.ones(len(robot.actuated))
        self._nominal_mass = {
            (b, link): pb.getDynamicsInfo(b, link, physicsClientId=c)[0]
            for b, link in self._all_links()
        }
        # changeDynamics(mass=...) would recompute the inertia from the collision shape, silently replacing the
        # URDF's inertia: the nominal inertia is therefore always passed along with a mass.
        self._nominal_inertia = {
            (b, link): tuple(pb.getDynamicsInfo(b, link, physicsClientId=c)[2])
            for b, link in self._all_links()
        }
        self._nominal_friction = {
            (b, link): pb.getDynamicsInfo(b, link, physicsClientId=c)[1]
            for b, link in self._all_links()
        }
        self._pending_force: tuple[int, int, np.ndarray] | None = None
        self._force_steps_left = 0  # physics steps the pending external force still lasts
        self._sample: EpisodeRandomization | None = None  # the randomization sample last applied
        self._poisoned = False

    def _create_object(self, obj: BoxObject) -> int:
        c = self.cid
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(obj.half_extents_m), physicsClientId=c)
        uid = pb.createMultiBody(obj.mass_kg, shape, basePosition=[0.0, 0.0, obj.half_extents_m[2]],
                                 physicsClientId=c)
        pb.changeDynamics(uid, -1, lateralFriction=obj.friction, linearDamping=0.0, angularDamping=0.0,
                          physicsClientId=c)
        self.objects[obj.name] = int(uid)
        return int(uid)

    def _all_links(self) -> list[tuple[int, int]]:
        c = self.cid
        links = [(self.body, -1)] + [(self.body, j) for j in range(pb.getNumJoints(self.body, physicsClientId=c))]
        return links + [(uid, -1) for uid in self.objects.values()]

    def joint_limits(self) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {"lower": [], "upper": [], "velocity": [], "effort": []}
        for j, name in zip(self._jidx, self.robot.joints, strict=True):
            info = pb.getJointInfo(self.body, j, physicsClientId=self.cid)
            lower, upper = float(info[8]), float(info[9])
            if lower > upper:  # PyBullet's convention for "no limit" (continuous joints)
                lower, upper = -np.inf, np.inf
            out["lower"].append(lower)
            out["upper"].append(upper)
            out["velocity"].append(float(info[11]) or np.inf)
            effort = float(info[10]) or np.inf
            if name in self.robot.effort_override:
                effort = self.robot.effort_override[name]
            out["effort"].append(effort)
        return {k: np.array(v) for k, v in out.items()}

    def counts(self) -> dict[str, int]:
        return {
            "n_bodies": len(self._all_links()), "n_geoms": len(self._all_links()),
            "n_joints": len(self.robot.joints), "n_actuated": len(self.robot.actuated),
        }

    def set_robot_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        for j, qi, qdi in zip(self._jidx, q, qd, strict=True):
            pb.resetJointState(self.body, j, float(qi), float(qdi), physicsClientId=self.cid)
        act = [self.robot.joints.index(n) for n in self.robot.actuated]
        if self.servo:
            self.set_position_targets(np.asarray(q)[act])
        else:
            self.set_efforts(np.zeros(len(act)))

    def robot_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = pb.getJointStates(self.body, self._jidx, physicsClientId=self.cid)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        uid = self._obj(name)
        w, x, y, z = (float(v) for v in quat_wxyz)
        pb.resetBasePositionAndOrientation(uid, [float(v) for v in pos], [x, y, z, w], physicsClientId=self.cid)
        pb.resetBaseVelocity(uid, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=self.cid)

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        pos, (x, y, z, w) = pb.getBasePositionAndOrientation(self._obj(name), physicsClientId=self.cid)
        return np.array(pos), np.array([w, x, y, z])

    def _obj(self, name: str) -> int:
        if name not in self.objects:
            raise SimError(f"unknown object {name!r}; scene has {sorted(self.objects)}")
        return self.objects[name]

    def link_pose(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        state = pb.getLinkState(self.body, self._link_index[link], computeForwardKinematics=True,
                                physicsClientId=self.cid)
        x, y, z, w = state[5]
        return np.array(state[4]), np.array([w, x, y, z])

    def jacobian(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        states = pb.getJointStates(self.body, self._movable, physicsClientId=self.cid)
        q = [s[0] for s in states]
        zeros = [0.0] * len(q)
        # localPosition is relative to the URDF link frame, so the frame origin is [0, 0, 0].
        jp, jr = pb.calculateJacobian(self.body, self._link_index[link], [0.0, 0.0, 0.0], q, zeros, zeros,
                                      physicsClientId=self.cid)
        cols = [self._movable.index(j) for j in self._aidx]
        return np.asarray(jp)[:, cols], np.asarray(jr)[:, cols]

    def set_position_targets(self, q_target: np.ndarray) -> None:
        self._targets = np.array(q_target, dtype=np.float64)
        n = len(self._aidx)
        pb.setJointMotorControlArray(
            self.body, self._aidx, pb.POSITION_CONTROL, targetPositions=list(self._targets),
            targetVelocities=[0.0] * n, forces=list(self._effort),
            positionGains=list(_POSITION_GAIN * self._gain_scale), velocityGains=[_VELOCITY_GAIN] * n,
            physicsClientId=self.cid,
        )

    def set_efforts(self, effort: np.ndarray) -> None:
        self._efforts = np.array(effort, dtype=np.float64)

    def apply_force(self, target: str, force_n: np.ndarray, physics_steps: int = 1) -> None:
        if physics_steps < 1:
            raise SimError(f"physics_steps must be >= 1, got {physics_steps}")
        self._force_steps_left = int(physics_steps)
        if target in self.objects:
            self._pending_force = (self.objects[target], -1, np.asarray(force_n, dtype=np.float64))
        else:
            self._pending_force = (self.body, self._link_index[target], np.asarray(force_n, dtype=np.float64))

    def step(self, n: int) -> int:
        c = self.cid
        for _ in range(n):
            if not self.servo:
                # TORQUE_CONTROL forces are cleared after every stepSimulation, so they are re-applied each step.
                pb.setJointMotorControlArray(self.body, self._aidx, pb.TORQUE_CONTROL,
                                             forces=list(self._efforts * self._gain_scale), physicsClientId=c)
            if self._pending_force is not None:
                uid, link, force = self._pending_force
                # At the centre of mass, as MuJoCo's xfrc_applied (a base's position is its centre of mass; a
                # link's is getLinkState's first entry). Bullet clears external forces after every step.
                pos = (pb.getBasePositionAndOrientation(uid, physicsClientId=c)[0] if link == -1
                       else pb.getLinkState(self.body, link, physicsClientId=c)[0])
                pb.applyExternalForce(uid, link, list(force), list(pos), pb.WORLD_FRAME, physicsClientId=c)
                self._force_steps_left -= 1
                if self._force_steps_left <= 0:
                    self._pending_force = None
            pb.stepSimulation(physicsClientId=c)
        q, qd = self.robot_state()
        bad = int(not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))))
        for name in self.objects:
            pos, quat = self.object_pose(name)
            bad += int(not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))))
        self._poisoned = self._poisoned or bad > 0
        return bad

    def apply_randomization(self, sample: EpisodeRandomization) -> None:
        c = self.cid
        self._sample = sample
        for k, (b, link) in enumerate(self._all_links()):
            kwargs: dict[str, Any] = {"lateralFriction": self._nominal_friction[(b, link)] * sample.friction_scale[k]}
            if self._nominal_mass[(b, link)] > 0:  # mass 0 marks a static link in PyBullet: keep it static
                s = float(sample.mass_scale[k])
                kwargs["mass"] = self._nominal_mass[(b, link)] * s
                kwargs["localInertiaDiagonal"] = [v * s for v in self._nominal_inertia[(b, link)]]
            pb.changeDynamics(b, link, physicsClientId=c, **kwargs)
        for j, d, s in zip(self._jidx, self._nominal_damping, sample.joint_damping_scale, strict=True):
            pb.changeDynamics(self.body, j, jointDamping=d * s, physicsClientId=c)
        self._damping = np.array(self._nominal_damping) * sample.joint_damping_scale
        self._gain_scale = np.asarray(sample.actuator_gain_scale, dtype=np.float64).copy()
        if self.servo:
            self.set_position_targets(self._targets)

    def set_link_length_scale(self, scales: Mapping[str, float]) -> None:
        wanted = check_length_scales(scales, self._link_index)
        if wanted == self._length_scales:
            return  # the world already holds exactly this geometry
        sample = self._sample
        self._rebuild(wanted)
        if sample is not None:
            self.apply_randomization(sample)

    def _rebuild(self, length_scales: dict[str, float]) -> None:
        """A fresh world (new physics client) built from the description, with these link stretches."""
        self.close()
        self.__init__(  # type: ignore[misc]
            self.robot, self.scene, servo=self.servo, physics_dt_s=self.physics_dt_s, link_length_scale=length_scales
        )

    def model_parameters(self) -> dict[str, np.ndarray]:
        c = self.cid
        infos = [pb.getDynamicsInfo(b, link, physicsClientId=c) for b, link in self._all_links()]
        return {
            "body_mass_kg": np.array([i[0] for i in infos]),
            "body_com_m": np.array([i[3] for i in infos], dtype=np.float64).reshape(-1, 3),
            "body_inertia_kg_m2": np.array([i[2] for i in infos], dtype=np.float64).reshape(-1, 3),
            "joint_damping": self._damping.copy(),
            "friction": np.array([i[1] for i in infos]),
        }

    def reset_world(self) -> None:
        if self._poisoned:
            # NaN reached Bullet's internal state (even the fixed base pose): only a fresh world is trustworthy.
            self._rebuild(self._length_scales)
            return
        # Bullet keeps persistent contact manifolds (with warm-start impulses) per body pair, and neither
        # teleporting nor restoreState clears them; rebuilding the movable objects does, which is what makes
        # `reset(seed)` reproducible. The robot is teleported by the task.
        c = self.cid
        for obj in self.scene.objects:
            old = self.objects[obj.name]
            pb.removeBody(old, physicsClientId=c)
            uid = self._create_object(obj)
            for key in (self._nominal_mass, self._nominal_inertia, self._nominal_friction):
                key[(uid, -1)] = key.pop((old, -1))
        self._pending_force = None
        self._force_steps_left = 0

    def save_state(self) -> Any:
        return (pb.saveState(physicsClientId=self.cid), self._targets.copy(), self._efforts.copy(),
                self._gain_scale.copy())

    def restore_state(self, snapshot: Any) -> None:
        state_id, targets, efforts, gains = snapshot
        pb.restoreState(stateId=state_id, physicsClientId=self.cid)
        self._gain_scale = gains.copy()
        self._efforts = efforts.copy()
        if self.servo:
            self.set_position_targets(targets)

    def close(self) -> None:
        if getattr(self, "cid", None) is not None and pb.isConnected(self.cid):
            pb.disconnect(self.cid)
        self.cid = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the module may already be gone
            pass
