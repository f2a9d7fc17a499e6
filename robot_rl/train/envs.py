"""Creating Gymnasium environments with clear errors, and reading their PolicySpec."""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.core.robot import RobotInterface
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec


class EnvError(ValueError):
    """The requested environment does not exist or is not usable for continuous control."""


def make_env(env_id: str, backend: str = "", **kwargs: Any) -> gym.Env[Any, Any]:
    """`gym.make` with a helpful message for unknown ids and unsupported spaces.

    `backend` ("mujoco" or "pybullet") applies to the robot_rl/* simulation suite; empty = the env's default.
    """
    import sim  # noqa: F401 - registers the robot_rl/* ids

    if backend:
        if not env_id.startswith("robot_rl/") or "MetaWorld" in env_id:
            raise EnvError(f"{env_id!r} has a single physics backend; --backend applies to robot_rl/* suite envs")
        kwargs["backend"] = backend
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, DeprecatedEnv, ...
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=5, cutoff=0.5)
        hint = f"; did you mean one of {close}?" if close else "; `robot-rl envs` lists the known ids"
        raise EnvError(f"unknown environment id {env_id!r} ({exc}){hint}") from None
    except ImportError as exc:
        raise EnvError(f"environment {env_id!r} needs a package that is not installed: {exc}") from None
    except ValueError as exc:  # e.g. sim.errors.SimError for an unknown backend
        raise EnvError(f"cannot make {env_id!r}: {exc}") from None
    _check_spaces(env_id, env)
    robot = robot_interface_of(env)
    return PhysicalActions(env, robot) if robot is not None else env


def make_env_for(
    spec: PolicySpec, env_id: str = "", backend: str = "", label: str = "the policy", **kwargs: Any
) -> gym.Env[Any, Any]:
    """The env a policy with `spec` runs in, checked against it.

    `env_id` defaults to the one the policy was trained on. A robot policy's env is made with the policy's command
    interface (a position-controlled policy is evaluated in a position-controlled env, never in the default one).

    Raises:
        EnvError: no env id recorded or given, unknown id, or an env whose sizes, joints, robot or command differ.
    """
    env_id = env_id or spec.env_id
    if not env_id:
        raise EnvError(f"{label} records no env; pass --env")
    robot = spec.robot
    if robot is not None and env_id.startswith("robot_rl/") and "MetaWorld" not in env_id:
        kwargs.setdefault("interface", robot.command.type)
    env = make_env(env_id, backend=backend, **kwargs)
    try:
        check_policy_fits_env(spec, policy_spec_for(env, env_id), env_id, label)
    except EnvError:
        env.close()
        raise
    return env


def check_policy_fits_env(policy: PolicySpec, env: PolicySpec, env_id: str, label: str = "the policy") -> None:
    """Refuse an env whose observation/action sizes, joints, robot or command interface differ from the policy's.

    Raises:
        EnvError: with both sides of the first difference.
    """
    if policy.observation.dim != env.observation.dim or policy.action.dim != env.action.dim:
        raise EnvError(
            f"{label} expects observations of size {policy.observation.dim} and produces {policy.action.dim} "
            f"actions, but {env_id} has {env.observation.dim} and {env.action.dim}"
        )
    if policy.action.names and env.action.names and policy.action.names != env.action.names:
        raise EnvError(f"{label} commands joints {policy.action.names}, but {env_id} has {env.action.names}")
    mine, theirs = policy.robot, env.robot
    if mine is not None and theirs is not None:
        if mine.robot != theirs.robot:
            raise EnvError(f"{label} was trained for robot {mine.robot!r}, but {env_id} is a {theirs.robot!r}")
        if mine.command.type != theirs.command.type:
            raise EnvError(f"{label} commands {mine.command.type}, but {env_id} takes {theirs.command.type}")


def robot_interface_of(env: gym.Env[Any, Any]) -> RobotInterface | None:
    """The typed robot interface of a robot_rl/* suite env (through any wrappers), else None."""
    make = getattr(env.unwrapped, "robot_interface", None)
    return make() if callable(make) else None


class PhysicalActions(gym.ActionWrapper[Any, Any, Any]):
    """A suite env seen with physical actions (rad, rad/s, N*m): the convention of every deployable policy.

    The suite's envs take normalized actions in [-1, 1]; this wrapper maps the physical command back with the one
    affine map of `robot_rl.core.robot`, so training, bundle evaluation, `eval --safety` and the ROS node all hand
    the same physical command to the same robot.
    """

    def __init__(self, env: gym.Env[Any, Any], robot: RobotInterface) -> None:
        super().__init__(env)
        self.robot = robot
        self.command = robot.command
        self.action_space = gym.spaces.Box(
            np.asarray(robot.command.physical_low, np.float32),
            np.asarray(robot.command.physical_high, np.float32),
            dtype=np.float32,
        )

    def action(self, action: Any) -> Any:
        return self.command.to_normalized(action).astype(np.float32)


def _check_spaces(env_id: str, env: gym.Env[Any, Any]) -> None:
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise EnvError(f"{env_id}: continuous (Box) actions required, got {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        env.close()
        raise EnvError(f"{env_id}: Box observations required, got {env.observation_space}")
    low, high = env.action_space.low, env.action_space.high
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        env.close()
        raise EnvError(f"{env_id}: action bounds must be finite, got low={low} high={high}")


def policy_spec_for(env: gym.Env[Any, Any], env_id: str) -> PolicySpec:
    """The PolicySpec of a Box/Box Gymnasium env (control rate from `metadata['render_fps']`)."""
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, gym.spaces.Box) and isinstance(act_space, gym.spaces.Box)
    robot = robot_interface_of(env)
    fps = env.metadata.get("render_fps") or 0
    dt = getattr(env.unwrapped, "dt", None)
    control_hz = float(1.0 / dt) if dt else float(fps or 1.0)
    return PolicySpec(
        observation=ObservationSpec.flat(int(np.prod(obs_space.shape))),
        action=ActionSpec(
            # a robot's exact (float64) physical range, not its float32 Box rounding
            low=robot.command.physical_low if robot else tuple(float(x) for x in act_space.low.reshape(-1)),
            high=robot.command.physical_high if robot else tuple(float(x) for x in act_space.high.reshape(-1)),
            names=robot.command.joints if robot else _actuator_names(env, int(np.prod(act_space.shape))),
            units=robot.command.units if robot else "",
        ),
        control_hz=control_hz,
        env_id=env_id,
        robot=robot,
    )


def _actuator_names(env: gym.Env[Any, Any], act_dim: int) -> tuple[str, ...]:
    """MuJoCo actuator (or driven joint) names in action order where the env exposes its model, else ()."""
    model = getattr(env.unwrapped, "model", None)
    nu = getattr(model, "nu", None)
    if model is None or nu != act_dim:
        return ()
    names = []
    for i in range(nu):
        actuator = model.actuator(i)
        name = str(actuator.name)
        if not name and int(actuator.trntype[0]) == 0:  # mjTRN_JOINT: name it after the joint it drives
            name = str(model.joint(int(actuator.trnid[0])).name)
        names.append(name)
    return tuple(names) if all(names) and len(set(names)) == len(names) else ()


def episode_seed(seed: int, episode: int, stream: int = 0) -> int:
    """A reset seed for episode `episode` of run `seed` (stream 0 = training, 1 = evaluation)."""
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


@dataclass(frozen=True)
class EnvListing:
    """One row of `robot-rl envs`."""

    env_id: str
    """Gymnasium id."""
    backends: tuple[str, ...]
    """Physics engines it runs in."""
    obs_dim: int
    """Flat observation size."""
    act_dim: int
    """Action size."""
    observation: str
    """Named observation layout where the env declares one (robot_rl/* suite), else the Box shape."""
    action: str
    """Action meaning: interface, units and joints (suite), else the Box bounds."""


def list_continuous_envs() -> list[EnvListing]:
    """Every registered env that makes with Box observations and actions, with its backends and specs."""
    import sim  # noqa: F401 - registers the robot_rl/* ids

    out = []
    for env_id in sorted(gym.registry.keys()):
        if env_id.startswith(("GymV2", "phys2d", "tabular")):
            continue
        try:
            with warnings.catch_warnings():  # deprecation chatter of old versions is not what the user asked for
                warnings.simplefilter("ignore")
                env = make_env(env_id)
        except Exception:  # anything that does not build is simply not listed
            continue
        obs_dim = int(np.prod(env.observation_space.shape or (0,)))
        act_dim = int(np.prod(env.action_space.shape or (0,)))
        robot = robot_interface_of(env)
        if robot is not None:
            backends: tuple[str, ...] = ("mujoco", "pybullet")
            observation = " ".join(f"{e.name}{list(e.shape)}" for e in robot.observation)
            cmd = robot.command
            action = f"{cmd.type} [{cmd.units}]: {', '.join(cmd.joints)}"
        else:
            module = str(getattr(env.unwrapped, "__module__", ""))
            uses_mujoco = "mujoco" in module or getattr(env.unwrapped, "backend", "") == "mujoco"
            backends = ("mujoco",) if uses_mujoco else ("-",)
            observation = f"Box{tuple(env.observation_space.shape or ())}"
            assert isinstance(env.action_space, gym.spaces.Box)
            lo, hi = env.action_space.low.min(), env.action_space.high.max()
            action = f"Box{tuple(env.action_space.shape or ())} in [{lo:g}, {hi:g}]"
        out.append(EnvListing(env_id, backends, obs_dim, act_dim, observation, action))
        env.close()
    return out
