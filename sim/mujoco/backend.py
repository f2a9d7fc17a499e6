"""MuJoCo backend: compiles the processed URDF with MjSpec and adds servos, floor and objects in code."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np

from sim.backend import PhysicsBackend, Scene, check_length_scales
from sim.errors import SimError
from sim.randomization import EpisodeRandomization
from sim.robots.description import RobotDescription
from sim.robots.urdf import processed_urdf_text, read_joints

_BAD_STATE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQPOS,
)
_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
_WARN_A, _WARN_B, _WARN_C = (int(w) for w in _BAD_STATE_WARNINGS)
_mj_step = mujoco.mj_step


def _index(adr: np.ndarray) -> slice | np.ndarray:
    """A slice when the addresses are consecutive (a cheaper copy than fancy indexing, same values)."""
    if len(adr) and np.array_equal(adr, np.arange(adr[0], adr[0] + len(adr))):
        return slice(int(adr[0]), int(adr[0]) + len(adr))
    return adr


class MujocoBackend(PhysicsBackend):
    """The robot and scene in MuJoCo (implicit-fast integrator, 2 ms step by default)."""

    name = "mujoco"

    def __init__(
        self, robot: RobotDescription, scene: Scene, *, servo: bool = True, physics_dt_s: float = 0.002
    ) -> None:
        super().__init__(robot, scene)
        self.physics_dt_s = physics_dt_s
        text = processed_urdf_text(robot.urdf_path, robot.frozen_joints)
        # MuJoCo's URDF importer strips mesh directories and fuses fixed-joint links by default: keep both, so
        # the absolute mesh paths load and link names (e.g. the end effector) resolve. This loader directive is
        # the only MuJoCo-specific addition to the shared text.
        text = re.sub(
            r"(<robot[^>]*>)", r'\1<mujoco><compiler strippath="false" fusestatic="false"/></mujoco>', text, count=1
        )
        spec = mujoco.MjSpec.from_string(text)
        spec.option.timestep = physics_dt_s
        # implicitfast integrates the servo damping implicitly: stiff joint servos stay stable at 2 ms.
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        robot_bodies = [b for b in spec.bodies if b.name != "world"]
        for body in robot_bodies:
            # A position-controlled arm's controller compensates gravity (as Franka's and KUKA's do).
            body.gravcomp = 1.0 if servo else 0.0
        for geom in spec.geoms:
            # Robot geoms collide with the world and objects but never with each other (as in PyBullet,
            # whose URDF loader disables self-collision by default).
            geom.contype, geom.conaffinity = 1, 0
        limits = robot.limits()
        for i, jname in enumerate(robot.actuated):
            joint = spec.joint(jname)
            if robot.armature:
                joint.armature = robot.armature[i]
            act = spec.add_actuator()
            act.name, act.target = jname, jname
            act.trntype = mujoco.mjtTrn.mjTRN_JOINT
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-limits["effort"][i], limits["effort"][i]]
            if servo:
                kp, kd = robot.servo_kp[i], robot.servo_kd[i]
                act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
                act.gainprm[0] = kp
                act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
                act.biasprm[:3] = [0.0, -kp, -kd]
            else:
                act.gainprm[0] = 1.0
        if scene.floor:
            spec.worldbody.add_geom(
                name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3.0, 3.0, 0.1], contype=1, conaffinity=1
            )
        for obj in scene.objects:
            body = spec.worldbody.add_body(name=obj.name, pos=[0.0, 0.0, obj.half_extents_m[2]])
            body.add_freejoint()
            body.add_geom(
                name=obj.name,
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=list(obj.half_extents_m),
                mass=obj.mass_kg,
                friction=[obj.friction, 0.005, 0.0001],
                contype=1,
                conaffinity=1,
            )
        self.servo = servo
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in robot.joints])
        self._dadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in robot.joints])
        self._act_dadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in robot.actuated])
        self._obj_qadr = {o.name: m.jnt_qposadr[m.body(o.name).jntadr[0]] for o in scene.objects}
        self._obj_dadr = {o.name: m.jnt_dofadr[m.body(o.name).jntadr[0]] for o in scene.objects}
        self._nominal = {
            "body_mass": m.body_mass.copy(),
            "body_inertia": m.body_inertia.copy(),
            "geom_friction": m.geom_friction.copy(),
            "dof_damping": m.dof_damping.copy(),
            "gainprm": m.actuator_gainprm.copy(),
            "biasprm": m.actuator_biasprm.copy(),
        }
        self._robot_body_ids = np.array([m.body(b.name).id for b in robot_bodies])
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._state = np.zeros(mujoco.mj_stateSize(m, _STATE))
        # Hot-path caches: views into mjData (its buffers never move while it lives), body ids by name, and
        # slices for the joint addresses where they are consecutive.
        d = self.data
        self._qpos, self._qvel, self._xpos, self._xquat = d.qpos, d.qvel, d.xpos, d.xquat
        self._warnings = d.warning.number
        self._qsel, self._dsel = _index(self._qadr), _index(self._dadr)
        self._body_ids: dict[str, int] = {}
        self._act_idx = [robot.joints.index(j) for j in robot.actuated]
        self._force_steps_left = 0  # physics steps the applied external force still lasts
        self._pristine = {"body_inertia": m.body_inertia.copy(), "body_ipos": m.body_ipos.copy()}
        self._length_scales: dict[str, float] = {}
        self._applied: EpisodeRandomization | None = None  # the sample the model holds (None: not applied yet)
        mujoco.mj_forward(m, self.data)

    def _body_id(self, name: str) -> int:
        bid = self._body_ids.get(name)
        if bid is None:
            bid = self._body_ids[name] = int(self.model.body(name).id)
        return bid

    def joint_limits(self) -> dict[str, np.ndarray]:
        m = self.model
        ids = [m.joint(j).id for j in self.robot.joints]
        limited = np.array([bool(m.jnt_limited[i]) for i in ids])
        lower = np.where(limited, m.jnt_range[ids, 0], -np.inf)
        upper = np.where(limited, m.jnt_range[ids, 1], np.inf)
        effort = np.full(len(ids), np.inf)
        velocity = self.robot.limits(self.robot.joints)["velocity"]  # MuJoCo has no velocity-limit field
        for k, jname in enumerate(self.robot.joints):
            if jname in self.robot.actuated:
                effort[k] = m.actuator(jname).forcerange[1]
        return {"lower": lower, "upper": upper, "velocity": velocity, "effort": effort}

    def counts(self) -> dict[str, int]:
        return {
            "n_bodies": self.model.nbody,
            "n_geoms": self.model.ngeom,
            "n_joints": len(self.robot.joints),
            "n_actuated": len(self.robot.actuated),
        }

    def set_robot_state(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.data.qpos[self._qadr] = q
        self.data.qvel[self._dadr] = qd
        if self.servo:
            self.data.ctrl[:] = np.asarray(q)[self._act_idx]
        else:
            self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def robot_state(self) -> tuple[np.ndarray, np.ndarray]:
        q, qd = self._qpos[self._qsel], self._qvel[self._dsel]
        # A slice is a view (copy it); fancy indexing already returned a copy.
        return (q.copy() if q.base is not None else q), (qd.copy() if qd.base is not None else qd)

    def set_object_pose(self, name: str, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
        adr, dadr = self._obj(name)
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = quat_wxyz
        self.data.qvel[dadr : dadr + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        adr, _ = self._obj(name)
        return self.data.qpos[adr : adr + 3].copy(), self.data.qpos[adr + 3 : adr + 7].copy()

    def _obj(self, name: str) -> tuple[int, int]:
        if name not in self._obj_qadr:
            raise SimError(f"unknown object {name!r}; scene has {sorted(self._obj_qadr)}")
        return int(self._obj_qadr[name]), int(self._obj_dadr[name])

    def link_pose(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        bid = self._body_id(link)
        return self._xpos[bid].copy(), self._xquat[bid].copy()

    def jacobian(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        mujoco.mj_jacBody(self.model, self.data, self._jacp, self._jacr, self._body_id(link))
        return self._jacp[:, self._act_dadr].copy(), self._jacr[:, self._act_dadr].copy()

    def set_position_targets(self, q_target: np.ndarray) -> None:
        self.data.ctrl[:] = q_target

    def set_efforts(self, effort: np.ndarray) -> None:
        self.data.ctrl[:] = effort

    def apply_force(self, target: str, force_n: np.ndarray, physics_steps: int = 1) -> None:
        if physics_steps < 1:
            raise SimError(f"physics_steps must be >= 1, got {physics_steps}")
        # xfrc_applied acts at the body's centre of mass (the PyBullet backend applies it there too).
        self.data.xfrc_applied[self._body_id(target), :3] = force_n
        self._force_steps_left = int(physics_steps)

    def step(self, n: int) -> int:
        m, d, w = self.model, self.data, self._warnings
        warn = w.tolist()  # one read of the warning counters
        before = warn[_WARN_A] + warn[_WARN_B] + warn[_WARN_C]
        if n > 0 and self._force_steps_left:
            k = min(n, self._force_steps_left)
            _mj_step(m, d, k)
            self._force_steps_left -= k
            if not self._force_steps_left:
                d.xfrc_applied[:] = 0.0  # the push is over
            n -= k
        if n > 0:
            _mj_step(m, d, n)  # exactly n single steps, in one call
        warn = w.tolist()
        bad: int = warn[_WARN_A] + warn[_WARN_B] + warn[_WARN_C] - before
        # MuJoCo's BADQPOS/BADQVEL warnings catch a non-finite state at the start of the next physics step; the
        # state after the last one is checked here. A finite sum proves every entry finite (Python's float sum: no
        # numpy dispatch, and an overflow gives inf rather than a RuntimeWarning); only a non-finite one, which huge
        # finite entries can also give, needs the entry-wise check.
        qpos, qvel = self._qpos, self._qvel
        if not math.isfinite(sum(qpos.tolist()) + sum(qvel.tolist())) and not (
            np.isfinite(qpos).all() and np.isfinite(qvel).all()
        ):
            bad += 1
        return bad

    def apply_randomization(self, sample: EpisodeRandomization) -> None:
        if sample is self._applied:
            # The model already holds exactly these values (samples are immutable), and mj_setConst already ran
            # on them: writing them again and recomputing the derived constants would change nothing.
            return
        m, nom = self.model, self._nominal
        m.body_mass[:] = nom["body_mass"] * sample.mass_scale
        m.body_inertia[:] = nom["body_inertia"] * sample.mass_scale[:, None]
        m.geom_friction[:] = nom["geom_friction"]
        m.geom_friction[:, 0] *= sample.friction_scale
        m.dof_damping[:] = nom["dof_damping"]
        m.dof_damping[self._dadr] *= sample.joint_damping_scale
        m.actuator_gainprm[:] = nom["gainprm"]
        m.actuator_biasprm[:] = nom["biasprm"]
        m.actuator_gainprm[:, 0] *= sample.actuator_gain_scale
        m.actuator_biasprm[:, 1] *= sample.actuator_gain_scale
        m.actuator_biasprm[:, 2] *= sample.actuator_gain_scale
        mujoco.mj_setConst(m, self.data)
        self._applied = sample

    def set_link_length_scale(self, scales: Mapping[str, float]) -> None:
        m = self.model
        # The links PyBullet can stretch too: every joint's child link (not the base, not scene objects).
        wanted = check_length_scales(scales, (j.child_link for j in read_joints(self.robot.urdf_path).values()))
        if wanted == self._length_scales:
            return  # the model already holds exactly this geometry
        ipos, inertia = self._pristine["body_ipos"].copy(), self._pristine["body_inertia"].copy()
        for name, f in wanted.items():
            bid = self._body_id(name)
            ipos[bid] *= f
            inertia[bid] *= f * f
        m.body_ipos[:] = ipos
        # The stretched inertia becomes the nominal one that mass randomization scales; re-apply the sample the model
        # holds so the result is exactly what a fresh model with this geometry would get.
        self._nominal["body_inertia"] = inertia
        self._length_scales = wanted
        sample, self._applied = self._applied, None
        if sample is not None:
            self.apply_randomization(sample)
        else:
            m.body_inertia[:] = inertia
            mujoco.mj_setConst(m, self.data)
        mujoco.mj_forward(m, self.data)

    def model_parameters(self) -> dict[str, np.ndarray]:
        m = self.model
        return {
            "body_mass_kg": m.body_mass.copy(),
            "body_com_m": m.body_ipos.copy(),
            "body_inertia_kg_m2": m.body_inertia.copy(),
            "joint_damping": m.dof_damping[self._dadr].copy(),
            "friction": m.geom_friction[:, 0].copy(),
        }

    def reset_world(self) -> None:
        self._force_steps_left = 0
        mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)

    def save_state(self) -> Any:
        mujoco.mj_getState(self.model, self.data, self._state, _STATE)
        return self._state.copy()

    def restore_state(self, snapshot: Any) -> None:
        mujoco.mj_setState(self.model, self.data, np.asarray(snapshot), _STATE)
        mujoco.mj_forward(self.model, self.data)
