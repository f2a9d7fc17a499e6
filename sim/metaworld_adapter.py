"""Meta-World v3 tasks as plain Gymnasium envs with our contract (seeded variations, reward terms, is_success).

Meta-World's own entry points (`metaworld.MT1`, `gym.make("Meta-World/MT1", ...)`) pre-sample 50 task variations
with the *global* NumPy RNG and stack six wrappers on top. This adapter instead drives one Sawyer env directly
in Meta-World's seeded mode: `reset(seed=s)` draws the goal/object positions from the env's own generator, so a
seed alone reproduces an episode and unseeded resets keep drawing fresh variations from that same stream.

`metaworld` (and with it MuJoCo) is imported only when an env is constructed, so importing this module or calling
`register_metaworld_envs()` stays cheap.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.errors import SimError

METAWORLD_TASKS: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
)
"""The Meta-World tasks registered as `robot_rl/MetaWorld-<task>`; each has a scripted expert in Meta-World."""

GYM_ID_PREFIX = "robot_rl/MetaWorld-"
"""Gymnasium id of a registered task: `GYM_ID_PREFIX + task` (e.g. `robot_rl/MetaWorld-reach-v3`)."""

_ENTRY_POINT = "sim.metaworld_adapter:MetaWorldEnv"
# A string, not the class: gymnasium imports it only when an env is made, which keeps metaworld lazy.

_POLICY_GAIN_WARNING = r"Constant\(s\) may be too high"
# Meta-World's scripted policies warn on every step whose P-controller output leaves [-1, 1]; the expert clips
# (exactly what the env would do), so the warning is noise in demo collection.


def metaworld_task_names() -> tuple[str, ...]:
    """Every Meta-World v3 task name the installed package knows (imports metaworld)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(ALL_V3_ENVIRONMENTS.keys())


def _check_task_name(task: str, known: tuple[str, ...]) -> None:
    """Raise a SimError naming the closest task names and the full list when `task` is not a v3 task."""
    if task in known:
        return
    close = difflib.get_close_matches(task, known, n=3, cutoff=0.5)
    hint = f"did you mean {close}? " if close else ""
    raise SimError(f"unknown Meta-World task {task!r}; {hint}known v3 tasks: {sorted(known)}")


@dataclass(frozen=True)
class MetaWorldExpert:
    """Meta-World's scripted policy for one task, returning actions inside the env's action box.

    The scripted policies are memoryless P-controllers over the observation (they read the goal from it, so they
    need the goal-observable observations this adapter produces).
    """

    task: str
    """Meta-World task name, e.g. "reach-v3"."""
    policy: Any
    """The `metaworld.policies` instance (has `get_action(obs) -> np.ndarray`)."""
    obs_dim: int
    """Expected observation length (39 for every v3 task)."""

    def reset(self) -> None:
        """Start a new episode (a no-op: the scripted policies keep no state between steps)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The expert action for one observation `[obs_dim]` → `[4]` float32 in [-1, 1] (dx, dy, dz, gripper)."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (self.obs_dim,):
            raise SimError(f"{self.task} expert expects one observation of shape ({self.obs_dim},), got {obs.shape}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_POLICY_GAIN_WARNING, category=UserWarning)
            action = np.asarray(self.policy.get_action(obs), dtype=np.float64)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


class MetaWorldEnv(gym.Env[np.ndarray, np.ndarray]):
    """One Meta-World v3 task (goal observable, as in MT1) behind the simulation suite's env contract.

    Observation: `[39]` float64 — hand xyz (m), gripper opening (0..1), object poses (padded), the same 18 values
    from the previous step, and the goal xyz (m). Action: `[4]` float32 in [-1, 1] — end-effector xyz delta
    (scaled by Meta-World to ≤ 1 cm per step) and gripper effort.

    `step` never terminates (Meta-World has no terminal states; success is reported in `info["is_success"]`) and
    truncates after `max_episode_steps`.

    Success follows Meta-World's evaluation protocol: an episode succeeds if the task's success flag was 1 *at any
    step*, not only at the end (a pushed puck may roll on past the goal). `info["is_success"]` therefore latches:
    once the flag has been 1 it stays True until the next reset, so the suite's "success = the last step's
    `is_success`" rule gives Meta-World's figure. The raw flag of the step is `info["success_now"]`.
    """

    backend = "mujoco"
    """Physics engine (Meta-World is MuJoCo only)."""
    # Class-level because gymnasium.make reads `render_modes` from the class; gymnasium.Env declares it as a plain
    # (not ClassVar) attribute, hence the noqa. __init__ replaces it with an instance copy whose fps comes from dt.
    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 80}  # noqa: RUF012

    def __init__(
        self,
        task: str = "reach-v3",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        camera_name: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        """Build the Meta-World env for `task`.

        Args:
            task: Meta-World v3 task name, e.g. "reach-v3".
            max_episode_steps: Steps before `truncated=True`; None = Meta-World's `max_path_length` (500).
            render_mode: None, "human", "rgb_array" or "depth_array" (passed to Meta-World).
            camera_name: MuJoCo camera to render from (Meta-World's default when None), e.g. "corner".
            width: Render width in pixels.
            height: Render height in pixels.

        Raises:
            SimError (a ValueError): unknown task name, bad `max_episode_steps` or render mode.
        """
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        _check_task_name(task, tuple(ALL_V3_ENVIRONMENTS.keys()))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise SimError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        # Any: Meta-World's private attributes are set below, and its typing is partial.
        env_cls: Any = ALL_V3_ENVIRONMENTS[task]
        inner: Any = env_cls(render_mode=render_mode, camera_name=camera_name, width=width, height=height)
        if max_episode_steps is None:
            max_episode_steps = int(inner.max_path_length)
        if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1:
            inner.close()
            raise SimError(f"max_episode_steps must be a positive int, got {max_episode_steps!r}")

        # Put the env in the state MT1's task machinery would, minus the pre-sampled goal list:
        # goal visible in the observation, task "set", and fresh variations drawn from the env's own seeded
        # generator on every reset (Meta-World's `seeded_rand_vec` mode) instead of the global np.random.
        inner._partially_observable = False
        # The observation box is a cached property computed for the goal-hidden default; drop it so it is
        # recomputed with the goal bounds (Meta-World clips step observations to it).
        inner.__dict__.pop("sawyer_observation_space", None)
        inner._set_task_called = True
        inner._freeze_rand_vec = False
        inner.seeded_rand_vec = True
        # The inner env reports truncation at (and refuses steps past) max_path_length: make it ours.
        inner.max_path_length = max_episode_steps
        self._inner = inner

        self.task = task
        """Meta-World task name."""
        self.max_episode_steps = max_episode_steps
        """Steps per episode before truncation."""
        self.render_mode = render_mode
        self.dt = float(inner.dt)
        """Control period in s (MuJoCo timestep × frame_skip = 2.5 ms × 5 = 12.5 ms, i.e. 80 Hz)."""
        # An instance copy, so a future Meta-World with another frame skip cannot disagree with `dt`.
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}
        obs_box = inner.sawyer_observation_space
        self._obs_box = spaces.Box(obs_box.low, obs_box.high, dtype=np.float64)
        self._act_box = spaces.Box(-1.0, 1.0, shape=inner.action_space.shape, dtype=np.float32)
        self.observation_space = self._obs_box
        self.action_space = self._act_box
        self._needs_reset = True
        self._succeeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; `seed` fixes the task variation (goal/object positions) and everything after it."""
        super().reset(seed=seed)
        # Meta-World's reset ignores its seed argument; its variations come from `inner.np_random`. Sharing our
        # generator makes `reset(seed=s)` reproduce the variation and unseeded resets continue the same stream.
        self._inner.np_random = self.np_random
        obs, inner_info = self._inner.reset()
        self._needs_reset = False
        self._succeeded = False
        return np.asarray(obs, dtype=np.float64), dict(inner_info)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one `[4]` action for one control period (`dt`); see the class docstring for the outputs."""
        if self._needs_reset:
            raise RuntimeError(f"{self.task}: call reset() before step() (at start and after truncation)")
        act = self._checked_action(action)
        obs, reward, _terminated, truncated, mw_info = self._inner.step(act)
        info: dict[str, Any] = dict(mw_info)
        info["success_now"] = bool(mw_info["success"])
        self._succeeded = self._succeeded or info["success_now"]
        info["is_success"] = self._succeeded  # latched: Meta-World counts success at any step of the episode
        for key, value in mw_info.items():
            # Meta-World reports its reward's components as `<term>_reward` (grasp, in_place, unscaled total).
            if key.endswith("_reward") and isinstance(value, int | float | np.number):
                info[f"reward/{key.removesuffix('_reward')}"] = float(value)
        self._needs_reset = bool(truncated)
        # Meta-World has no terminal states: reaching the goal is success, not termination.
        return np.asarray(obs, dtype=np.float64), float(reward), False, bool(truncated), info

    def _checked_action(self, action: np.ndarray) -> np.ndarray:
        """The action as float32 in the action box; raises on wrong shape or non-finite values (never clips NaN)."""
        try:
            raw = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SimError(f"{self.task}: action must be numeric with shape {self.action_space.shape}: {exc}") from None
        if raw.shape != self.action_space.shape:
            raise SimError(
                f"{self.task}: action must have shape {self.action_space.shape} (dx, dy, dz, gripper), "
                f"got shape {raw.shape}"
            )
        if not np.all(np.isfinite(raw)):
            raise SimError(f"{self.task}: action must be finite, got {raw.tolist()}")
        # Meta-World clips xyz itself but hands the gripper value to MuJoCo's ctrlrange; clip all four so the
        # declared box is the effective one whichever component is out of range.
        return np.clip(raw, self._act_box.low, self._act_box.high).astype(np.float32)

    def make_expert(self) -> MetaWorldExpert:
        """Meta-World's scripted policy for this task (call `expert.reset()` per episode, `expert.act(obs)`)."""
        from metaworld.policies import ENV_POLICY_MAP

        if self.task not in ENV_POLICY_MAP:
            raise SimError(f"Meta-World has no scripted policy for {self.task!r}")
        policy_cls: Any = ENV_POLICY_MAP[self.task]  # typed as the abstract base in Meta-World
        return MetaWorldExpert(task=self.task, policy=policy_cls(), obs_dim=int(self._obs_box.shape[0]))

    @property
    def goal(self) -> np.ndarray:
        """The current episode's goal position `[3]` in m (also the last 3 observation entries)."""
        return np.array(self._inner._target_pos, dtype=np.float64)

    def render(self) -> Any:
        """Meta-World's rendering in the `render_mode` given at construction (None when it is None)."""
        if self.render_mode is None:
            return None
        return self._inner.render()

    def close(self) -> None:
        """Release the MuJoCo model and any renderer."""
        self._inner.close()


def register_metaworld_envs() -> None:
    """Register every `METAWORLD_TASKS` task as `robot_rl/MetaWorld-<task>` (idempotent; imports no metaworld).

    The env truncates itself after `max_episode_steps` (default 500), so no gymnasium TimeLimit is registered;
    `gymnasium.make(id, max_episode_steps=N)` still adds one, which shortens episodes for N < 500.
    """
    for task in METAWORLD_TASKS:
        env_id = GYM_ID_PREFIX + task
        if env_id in gym.registry:
            continue
        gym.register(id=env_id, entry_point=_ENTRY_POINT, kwargs={"task": task})
