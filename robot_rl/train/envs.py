"""Creating Gymnasium environments with clear errors, and reading their PolicySpec."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec


class EnvError(ValueError):
    """The requested environment does not exist or is not usable for continuous control."""


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """`gym.make` with a helpful message for unknown ids and unsupported spaces."""
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, DeprecatedEnv, ...
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=5, cutoff=0.5)
        hint = f"; did you mean one of {close}?" if close else "; `robot-rl envs` lists the known ids"
        raise EnvError(f"unknown environment id {env_id!r} ({exc}){hint}") from None
    except ImportError as exc:
        raise EnvError(f"environment {env_id!r} needs a package that is not installed: {exc}") from None
    _check_spaces(env_id, env)
    return env


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
    fps = env.metadata.get("render_fps") or 0
    dt = getattr(env.unwrapped, "dt", None)
    control_hz = float(1.0 / dt) if dt else float(fps or 1.0)
    return PolicySpec(
        observation=ObservationSpec.flat(int(np.prod(obs_space.shape))),
        action=ActionSpec(
            low=tuple(float(x) for x in act_space.low.reshape(-1)),
            high=tuple(float(x) for x in act_space.high.reshape(-1)),
            names=_actuator_names(env, int(np.prod(act_space.shape))),
        ),
        control_hz=control_hz,
        extra={"env_id": env_id},
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


def list_continuous_envs() -> list[tuple[str, int, int]]:
    """(id, obs_dim, act_dim) of every registered env that makes with Box observations and actions."""
    out = []
    for env_id in sorted(gym.registry.keys()):
        if env_id.startswith(("GymV2", "phys2d", "tabular")):
            continue
        try:
            env = make_env(env_id)
        except Exception:  # anything that does not build is simply not listed
            continue
        obs_shape = env.observation_space.shape or (0,)
        act_shape = env.action_space.shape or (0,)
        out.append((env_id, int(np.prod(obs_shape)), int(np.prod(act_shape))))
        env.close()
    return out
