"""RobotTaskEnv: robot + task + backend as one Gymnasium env with named observations and joint-level actions.

Observation order (recorded by `policy_spec()` and hence in the export manifest):
`joint_pos` and `joint_vel` (by joint name, in the robot description's order), then `ee_pos` (m) and
`ee_quat` (w, x, y, z) where the robot has an end effector, then the task's own entries.
"""

from __future__ import annotations

import copy
import importlib
import math
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.core.robot import CommandInterface, JointLimits, ObservationEntry, RobotInterface
from sim.backend import PhysicsBackend
from sim.control import ActionInterface, make_interface
from sim.errors import SimError, unknown_name
from sim.randomization import ActionDelay, DomainRandomization, EpisodeRandomization, StepNuisance, sample_episode
from sim.robots.description import get_robot
from sim.robots.urdf import read_joints
from sim.tasks import make_task

BACKENDS = ("mujoco", "pybullet")
_ENTRY_UNITS = {
    "ee_pos": "m",
    "ee_quat": "",
    "target_pos": "m",
    "target_rel": "m",
    "object_pos": "m",
    "object_quat": "",
    "goal_pos": "m",
    "object_rel_goal": "m",
}
"""Units of the named observation entries (joint entries take theirs from the URDF joint types)."""


def _clip_ufunc() -> Any:
    """numpy's clip ufunc itself: `np.clip` ends in exactly this call, after several layers of Python dispatch."""
    for module in ("numpy._core.umath", "numpy.core.umath"):  # numpy >= 2, numpy 1.x
        try:
            return importlib.import_module(module).clip
        except (ImportError, AttributeError):
            continue
    return np.clip


_clip = _clip_ufunc()


# Each engine's customary step; the env shortens it just enough to divide the control period exactly.
MAX_PHYSICS_DT_S = {"mujoco": 0.002, "pybullet": 1.0 / 240.0}


def make_backend(name: str, robot: Any, scene: Any, *, servo: bool, physics_dt_s: float) -> PhysicsBackend:
    """A physics backend by name (each engine is imported only when asked for)."""
    if name == "mujoco":
        from sim.mujoco.backend import MujocoBackend

        return MujocoBackend(robot, scene, servo=servo, physics_dt_s=physics_dt_s)
    if name == "pybullet":
        from sim.pybullet.backend import PybulletBackend

        return PybulletBackend(robot, scene, servo=servo, physics_dt_s=physics_dt_s)
    raise unknown_name("backend", name, BACKENDS)


class RobotTaskEnv(gym.Env[np.ndarray, np.ndarray]):
    """A robot task in MuJoCo or PyBullet.

    Args:
        task: task name ("reach", "push", "cartpole_balance").
        robot: robot name; default: the task's default robot.
        backend: "mujoco" or "pybullet".
        interface: "joint_position", "joint_velocity" or "joint_effort"; default: the task's.
        randomization: domain randomization and nuisances (off by default).
        max_steps: episode length in control steps (truncation); default: the task's.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        task: str = "reach",
        robot: str | None = None,
        backend: str = "mujoco",
        interface: str | None = None,
        randomization: DomainRandomization | None = None,
        max_steps: int | None = None,
    ) -> None:
        self.task = make_task(task)
        self.robot = get_robot(robot or self.task.default_robot)
        if not self.task.supports_robot(self.robot.name):
            raise SimError(f"task {task!r} is not defined for robot {self.robot.name!r}")
        if backend not in BACKENDS:
            raise unknown_name("backend", backend, BACKENDS)
        iface_name = interface or self.task.default_interface
        servo = iface_name != "joint_effort"
        if servo and not any(self.robot.servo_kp):
            raise SimError(f"robot {self.robot.name!r} has no position servo; use interface 'joint_effort'")
        urdf_joints = read_joints(self.robot.urdf_path)
        prismatic = np.array([urdf_joints[j].type == "prismatic" for j in self.robot.actuated])
        self.interface: ActionInterface = make_interface(iface_name, self.robot.limits(), prismatic)
        self.randomization = randomization or DomainRandomization()
        self.backend_name = backend
        self.control_dt_s = 1.0 / self.task.control_hz
        self.n_substeps = int(np.ceil(self.control_dt_s / MAX_PHYSICS_DT_S[backend] - 1e-9))
        self.backend = make_backend(
            backend, self.robot, self.task.scene(), servo=servo, physics_dt_s=self.control_dt_s / self.n_substeps
        )
        self.dt = self.control_dt_s  # Gymnasium MuJoCo convention: `dt` is the control period
        self.metadata = {"render_modes": [], "render_fps": round(self.task.control_hz)}
        if max_steps is not None and max_steps < 1:
            raise SimError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps = int(max_steps or self.task.max_steps)
        self._limits = self.robot.limits()
        self._act_idx = np.array([self.robot.joints.index(j) for j in self.robot.actuated])
        self._all_actuated = self.robot.actuated == self.robot.joints  # then q[_act_idx] would only copy q

        shapes: dict[str, tuple[int, ...]] = {
            "joint_pos": (len(self.robot.joints),),
            "joint_vel": (len(self.robot.joints),),
        }
        if self.robot.ee_link:
            shapes.update({"ee_pos": (3,), "ee_quat": (4,)})
        shapes.update(self.task.observation_shapes())
        self.observation_shapes = shapes
        obs_dim = int(sum(np.prod(s) for s in shapes.values()))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float64)
        n_act = len(self.robot.actuated)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)

        self._counts = {**self.backend.counts(), "obs_dim": obs_dim}
        # One immutable no-op sample for every unrandomized episode (the backend then skips re-applying it).
        self._nominal_episode = EpisodeRandomization.nominal(**self._counts)
        self._episode = self._nominal_episode
        self._delay = ActionDelay()
        self._nuisance = StepNuisance(self.randomization, np.random.default_rng(0))
        self._dr_rng = np.random.default_rng(0)
        self._task_rng = np.random.default_rng(0)
        self._target = np.zeros(n_act)
        self._steps = 0
        self._last_obs = np.zeros(obs_dim)
        self.diverged_count = 0
        self.impulse_count = 0
        self._needs_reset = True
        # Step-invariant pieces of the hot path (computed exactly as the per-step expressions they replace).
        self._obs_keys = tuple(shapes)
        self._action_shape = self.action_space.shape
        self._lead = 2.0 * np.abs(self.interface.physical_high) * self.control_dt_s
        self._reward_keys: dict[str, str] = {}
        self._plain_obs = True  # no observation bias or noise this episode (see `_sync_episode`)
        self._length_scale: dict[str, float] = {}  # links stretched this episode (reset option)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. `options` (this episode only; the next reset without them is nominal again):
        `"randomization"`: a `DomainRandomization` used instead of the env's own; `"link_length_scale"`: link
        name -> factor, links stretched as `PhysicsBackend.set_link_length_scale` describes."""
        super().reset(seed=seed)
        dr, lengths = self._episode_options(options)
        # Three independent streams from the episode seed: task layout, episode randomization, per-step
        # nuisances. Turning randomization on therefore never changes which targets an episode gets.
        task_seq, dr_seq, step_seq = np.random.SeedSequence(int(self.np_random.integers(2**63))).spawn(3)
        self._task_rng = np.random.default_rng(task_seq)
        self._nuisance = StepNuisance(dr, np.random.default_rng(step_seq))
        if dr.enabled:
            self._dr_rng = np.random.default_rng(dr_seq)
            self._episode = sample_episode(dr, self._dr_rng, **self._counts)
        else:  # nothing would be drawn from the episode stream
            self._episode = self._nominal_episode
        self._sync_episode()
        # Every reset sets the geometry (nominal without the option), so a stretched link never leaks into the
        # next episode; the backend skips the work when nothing changes.
        self.backend.set_link_length_scale(lengths)
        self._length_scale = lengths
        self.backend.reset_world()
        self.backend.apply_randomization(self._episode)
        self.task.reset(self.backend, self._task_rng)
        q, _ = self.backend.robot_state()
        self._target = q[self._act_idx].copy()
        hold = self._hold_action()
        self._delay.reset(self._episode.action_latency_steps, hold)
        self._steps = 0
        self._needs_reset = False
        obs = self._observe()
        return obs, {"is_success": False, "diverged": False, "diverged_count": self.diverged_count}

    def _episode_options(self, options: dict[str, Any] | None) -> tuple[DomainRandomization, dict[str, float]]:
        """The randomization and link stretches `reset(options=...)` asks for (the env's own / none by default)."""
        opts = dict(options or {})
        unknown = sorted(set(opts) - {"randomization", "link_length_scale"})
        if unknown:
            raise SimError(f"unknown reset options {unknown}; known: ['link_length_scale', 'randomization']")
        dr = opts.get("randomization", self.randomization)
        if not isinstance(dr, DomainRandomization):
            raise SimError(f"reset option 'randomization' must be a DomainRandomization, got {type(dr).__name__}")
        lengths = opts.get("link_length_scale", {})
        if not isinstance(lengths, dict):
            raise SimError(f"reset option 'link_length_scale' must be a dict link -> factor, got {lengths!r}")
        return dr, dict(lengths)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise SimError("step() called before reset() or after the episode ended; call reset()")
        a = self._validate(action)
        # Without latency the queue would hand back this very action (already validated, and a fresh array).
        applied = self._delay.push(a) if self._episode.action_latency_steps else a
        self._command(applied)
        nuisance = self._nuisance
        if nuisance.active:
            force = nuisance.impulse()
            if force is not None:
                self.impulse_count += 1
                target = self.task.scene().objects[0].name if self.task.scene().objects else self.robot.ee_link
                if target:
                    self.backend.apply_force(target, force)
            n_substeps = nuisance.substeps(self.n_substeps)
        else:  # no jitter, noise or impulses: nothing to draw
            n_substeps = self.n_substeps
        bad = self.backend.step(n_substeps)
        self._steps += 1
        info: dict[str, Any] = {"applied_action": applied}
        if bad:
            # A numerically broken state is never a success and never silently reset: the episode ends here,
            # as a truncation (it is not a terminal state of the task), with the last finite observation.
            self.diverged_count += 1
            self._needs_reset = True
            info.update(
                {"is_success": False, "diverged": True, "diverged_count": self.diverged_count, "physics_warnings": bad}
            )
            return self._last_obs.copy(), 0.0, False, True, info
        obs = self._observe()
        outcome = self.task.evaluate(self.backend)
        terms = outcome.reward_terms
        reward = float(sum(terms.values()))
        keys = self._reward_keys
        for k, v in terms.items():
            key = keys.get(k)
            if key is None:
                key = keys[k] = f"reward/{k}"
            info[key] = v
        info.update(outcome.extra)
        info["is_success"] = bool(outcome.success)
        info["diverged"] = False
        info["diverged_count"] = self.diverged_count
        terminated = bool(outcome.terminated)
        truncated = (not terminated) and self._steps >= self.max_steps
        self._needs_reset = terminated or truncated
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ helpers
    def _validate(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._action_shape:
            raise SimError(f"action must have shape {self._action_shape}, got {a.shape}")
        # A finite sum proves every entry finite (Python's float sum: no numpy call, and an overflow gives inf
        # rather than a RuntimeWarning); only a non-finite one, which huge finite entries can also give, needs
        # the entry-wise check.
        if not math.isfinite(sum(a.tolist())) and not np.isfinite(a).all():
            raise SimError(f"action contains NaN or Inf: {a}; refusing to step (it would never be clipped)")
        clipped: np.ndarray = _clip(a, -1.0, 1.0)  # a new array, never the caller's
        return clipped

    def _command(self, action: np.ndarray) -> None:
        phys = self.interface.to_physical(action)
        lo, hi = self._limits["lower"], self._limits["upper"]
        if self.interface.name == "joint_position":
            self._target = _clip(phys, lo, hi)
            self.backend.set_position_targets(self._target)
        elif self.interface.name == "joint_velocity":
            q, _ = self.backend.robot_state()
            q_act = q if self._all_actuated else q[self._act_idx]
            # Integrate the velocity command into a position target (what a velocity-commanded joint servo does);
            # the target may lead the measured position by at most two periods of travel (`_lead`), so a blocked
            # arm does not wind up a large error that snaps free later.
            lead = self._lead
            self._target = _clip(_clip(self._target + phys * self.control_dt_s, q_act - lead, q_act + lead), lo, hi)
            self.backend.set_position_targets(self._target)
        else:
            self.backend.set_efforts(phys)

    def _hold_action(self) -> np.ndarray:
        """The normalized action that keeps the robot where it is (used before delayed actions arrive)."""
        if self.interface.name == "joint_position":
            return self.interface.to_normalized(self._target)
        return np.zeros(len(self.robot.actuated))

    def observation_dict(self) -> dict[str, np.ndarray]:
        """The current observation as named arrays (noise-free, no bias)."""
        q, qd = self.backend.robot_state()
        out = {"joint_pos": q, "joint_vel": qd}
        if self.robot.ee_link:
            out["ee_pos"], out["ee_quat"] = self.backend.link_pose(self.robot.ee_link)
        out.update(self.task.observe(self.backend))
        return out

    def _observe(self) -> np.ndarray:
        named = self.observation_dict()
        # axis=None flattens each entry (C order) before joining, as reshape(-1) did.
        obs = np.concatenate([named[k] for k in self._obs_keys], axis=None, dtype=np.float64)
        if self._plain_obs:
            # A zero bias and zero noise: obs + 0 + 0 is obs + 0 exactly (it only turns -0.0 into +0.0).
            obs += 0.0
        else:
            obs = obs + self._episode.obs_bias + self._nuisance.obs_noise(obs.shape)
        self._last_obs = obs
        return obs.copy()

    def _sync_episode(self) -> None:
        """Refresh what the hot path derives from the current episode sample and step nuisances."""
        self._plain_obs = not self._nuisance.noise_active and not self._episode.obs_bias.any()

    # ------------------------------------------------------------------ specs, state, experts
    def robot_interface(self) -> RobotInterface:
        """What this env's observations and actions mean on the robot (recorded in every run and bundle)."""
        urdf_joints = read_joints(self.robot.urdf_path)

        def unit(joints: tuple[str, ...]) -> str:
            kinds = {"m" if urdf_joints[j].type == "prismatic" else "rad" for j in joints}
            return kinds.pop() if len(kinds) == 1 else "m|rad"

        pos_unit = unit(self.robot.joints)
        units = {"joint_pos": pos_unit, "joint_vel": f"{pos_unit}/s", **_ENTRY_UNITS}
        lim = self.robot.limits()
        cmd = self.interface
        return RobotInterface(
            robot=self.robot.name,
            joint_names=tuple(self.robot.joints),
            observation=tuple(
                ObservationEntry(k, tuple(int(d) for d in v), units.get(k, ""))
                for k, v in self.observation_shapes.items()
            ),
            command=CommandInterface(
                type=cmd.name,
                units=cmd.units,
                joints=tuple(self.robot.actuated),
                physical_low=tuple(float(x) for x in cmd.physical_low),
                physical_high=tuple(float(x) for x in cmd.physical_high),
            ),
            # The deployed safety chain's default limits (a real robot's parameter YAML may tighten them).
            limits=JointLimits(
                position_lower=tuple(float(x) for x in lim["lower"]),
                position_upper=tuple(float(x) for x in lim["upper"]),
                velocity=tuple(float(x) for x in lim["velocity"]),
                effort=tuple(float(x) for x in lim["effort"]),
            ),
            task=self.task.name,
            backend=self.backend_name,
            urdf=f"pybullet_data:{self.robot.urdf}",
            ee_link=self.robot.ee_link,
        )

    def get_state(self) -> dict[str, Any]:
        """A snapshot of everything that determines the future (physics, task goals, queues, RNG streams)."""
        return {
            "physics": self.backend.save_state(),
            "task": copy.deepcopy(self.task.get_state()),
            "target": self._target.copy(),
            "steps": self._steps,
            "delay": copy.deepcopy(self._delay),
            "nuisance": copy.deepcopy(self._nuisance),
            "episode": self._episode,
            "length_scale": dict(self._length_scale),
            "last_obs": self._last_obs.copy(),
            "needs_reset": self._needs_reset,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Return exactly to a `get_state` snapshot of this env instance."""
        self._episode = state["episode"]
        self._length_scale = dict(state.get("length_scale", {}))
        self.backend.set_link_length_scale(self._length_scale)
        self.backend.apply_randomization(self._episode)
        self.backend.restore_state(state["physics"])
        self.task.set_state(copy.deepcopy(state["task"]))
        self._target = state["target"].copy()
        self._steps = state["steps"]
        self._delay = copy.deepcopy(state["delay"])
        self._nuisance = copy.deepcopy(state["nuisance"])
        self._last_obs = state["last_obs"].copy()
        self._needs_reset = state["needs_reset"]
        self._sync_episode()

    @property
    def commanded_target(self) -> np.ndarray:
        """The joint position target the servo is currently tracking (actuated joints)."""
        return self._target.copy()

    def action_for_joint_target(self, q_target: np.ndarray) -> np.ndarray:
        """The normalized action that moves the actuated joints toward `q_target` this step (for experts)."""
        lo, hi = self._limits["lower"], self._limits["upper"]
        q_target = np.clip(q_target, lo, hi)
        if self.interface.name == "joint_position":
            return self.interface.to_normalized(q_target).astype(np.float32)
        if self.interface.name == "joint_velocity":
            v = (q_target - self._target) / self.control_dt_s
            return self.interface.to_normalized(v).astype(np.float32)
        raise SimError("action_for_joint_target needs a position or velocity interface")

    def make_expert(self) -> Any:
        """The task's scripted expert for this env (reach, push: IK waypoints; cart-pole: linear feedback)."""
        from sim.experts import make_expert

        return make_expert(self)
