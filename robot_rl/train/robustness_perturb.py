"""Perturbation kinds of the robustness protocol (Han et al. 2020, "Actor-critic reinforcement learning for control
with stability guarantee", the robustness and generalization experiments): one small class per kind, registered
by name, so a new kind is one class plus `@register_kind`.

A kind turns a level into an `EpisodeSetup`: reset options for the suite env (`sim.env.RobotTaskEnv.reset`: a
`DomainRandomization` with a degenerate range, so the model scales and nuisances reuse the randomization code of
both backends, or stretched links) and, for `impulse`, a push the rollout applies at a fixed control step. Every
reset re-applies the model from the nominal one, so a level never leaks into the next episode.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sim.randomization import DomainRandomization
from sim.robots.urdf import read_joints

if TYPE_CHECKING:
    from robot_rl.train.robustness import RobustnessConfig
    from sim.env import RobotTaskEnv


@dataclass(frozen=True)
class Impulse:
    """A push held for one whole control step."""

    body: str
    """Link or object it acts on, at its centre of mass."""
    force_n: tuple[float, float, float]
    """World-frame force, N."""
    step: int
    """Index of the control step during which it acts (step i spans [i·dt, (i+1)·dt) of episode time)."""


@dataclass(frozen=True)
class EpisodeSetup:
    """What one (kind, level) does to every episode it runs."""

    reset_options: dict[str, Any] = field(default_factory=dict)
    """Options for `RobotTaskEnv.reset` (empty: the nominal episode)."""
    impulse: Impulse | None = None
    """A push at a fixed time, or None."""


class PerturbationKind(abc.ABC):
    """One kind of perturbation: its name, unit, nominal level, level check and what a level does."""

    name: ClassVar[str]
    """Registry name (the `--perturb KIND:...` spelling)."""
    unit: ClassVar[str]
    """Unit of a level, for tables and JSON."""
    nominal: ClassVar[float]
    """The level that leaves the env as it is."""
    summary: ClassVar[str]
    """One line for help texts and errors."""

    def check_level(self, level: float) -> float:
        """`level` as a float if valid for this kind; ValueError naming the valid range otherwise."""
        value = float(level)
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f"{self.name}: a level must be a finite number >= 0 ({self.summary}), got {level!r}")
        return value

    def unsupported(self, env: RobotTaskEnv, config: RobustnessConfig) -> str | None:
        """Why this kind cannot act on `env` (None when it can)."""
        return None

    @abc.abstractmethod
    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        """Levels used when none are given (the nominal one included)."""

    @abc.abstractmethod
    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        """What `level` does to an episode of `env`."""


KINDS: dict[str, PerturbationKind] = {}
"""Registered perturbation kinds by name, in registration order (the order of a report)."""


def register_kind(cls: type[PerturbationKind]) -> type[PerturbationKind]:
    """Class decorator: register one instance of a perturbation kind under its `name`."""
    if cls.name in KINDS:
        raise ValueError(f"perturbation kind {cls.name!r} is already registered")
    KINDS[cls.name] = cls()
    return cls


def get_kind(name: str) -> PerturbationKind:
    """The registered kind `name`; ValueError listing the valid ones otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown perturbation kind {name!r}; valid kinds: {', '.join(KINDS)}") from None


def _scales(level: float) -> tuple[float, float]:
    return (level, level)  # a degenerate range draws exactly `level` for every body / joint / geom


def _positive(kind: PerturbationKind, level: float) -> float:
    value = float(level)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{kind.name}: a level must be a finite factor > 0 ({kind.summary}), got {level!r}")
    return value


@register_kind
class MassKind(PerturbationKind):
    """Every body's mass and rotational inertia × level."""

    name, unit, nominal = "mass", "x", 1.0
    summary = "factor on every body's mass and inertia"

    def check_level(self, level: float) -> float:
        return _positive(self, level)  # a massless free body is singular in both engines

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        return EpisodeSetup({"randomization": DomainRandomization(mass_scale=_scales(level))})


@register_kind
class PoleLengthKind(PerturbationKind):
    """The length link (the cart-pole's pole) stretched: centre of mass × level from its joint, inertia × level²."""

    name, unit, nominal = "pole_length", "x", 1.0
    summary = "factor on the pole's length (centre-of-mass distance x f, inertia x f^2, same mass)"

    def check_level(self, level: float) -> float:
        return _positive(self, level)

    def unsupported(self, env: RobotTaskEnv, config: RobustnessConfig) -> str | None:
        links = sorted({j.child_link for j in read_joints(env.robot.urdf_path).values()})
        if config.length_link not in links:
            return f"robot {env.robot.name!r} has no link {config.length_link!r} to stretch (its links: {links})"
        return None

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        return EpisodeSetup({"link_length_scale": {config.length_link: level}})


@register_kind
class DampingKind(PerturbationKind):
    """Every joint's viscous damping × level (the URDF's `<dynamics damping>`)."""

    name, unit, nominal = "damping", "x", 1.0
    summary = "factor on every joint's damping"

    def unsupported(self, env: RobotTaskEnv, config: RobustnessConfig) -> str | None:
        if not np.any(env.backend.model_parameters()["joint_damping"]):
            # A factor on zero damping changes nothing: refuse rather than report flat rows as robustness.
            return f"robot {env.robot.name!r} has no joint damping to scale (0 in its URDF)"
        return None

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.0, 0.5, 1.0, 2.0, 4.0)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        return EpisodeSetup({"randomization": DomainRandomization(joint_damping_scale=_scales(level))})


@register_kind
class FrictionKind(PerturbationKind):
    """Every contact geom's sliding friction × level (these robots' URDFs declare no joint friction)."""

    name, unit, nominal = "friction", "x", 1.0
    summary = "factor on the sliding friction of every contact"

    def unsupported(self, env: RobotTaskEnv, config: RobustnessConfig) -> str | None:
        if not env.task.scene().objects:
            # Robot geoms never collide with each other (sim/mujoco/backend.py) and the arms' tasks keep them off the
            # floor: without an object to slide, the factor would change nothing but the table's rows.
            return f"task {env.task.name!r} has no object to slide: friction cannot act (use e.g. PandaPush)"
        return None

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.25, 0.5, 1.0, 1.5, 2.0)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        return EpisodeSetup({"randomization": DomainRandomization(friction_scale=_scales(level))})


@register_kind
class ImpulseKind(PerturbationKind):
    """A push of `level` N along the configured direction, on the configured body, for one control step."""

    name, unit, nominal = "impulse", "N", 0.0
    summary = "force in N held for one control step at the impulse time"

    def unsupported(self, env: RobotTaskEnv, config: RobustnessConfig) -> str | None:
        body = impulse_body(env, config)
        if not body:
            return f"robot {env.robot.name!r} has no end effector: pass an impulse body"
        step = impulse_step(env, config)
        if step >= env.max_steps:
            return (
                f"the impulse at {impulse_time_s(env, config)} s comes after the episode ends "
                f"({env.max_steps * env.control_dt_s:g} s)"
            )
        return None

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        if env.task.name == "cartpole_balance":
            # On the 0.1 kg pole: from about 10 N the LQR expert's cart already runs off the ±5 m track.
            return (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)
        return (0.0, 50.0, 100.0, 150.0, 200.0)  # on a servoed arm's end effector

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        if level == 0.0:
            return EpisodeSetup()  # nominal: no push at all (not a zero force)
        d = np.asarray(config.impulse_direction, np.float64)
        force = level * d / np.linalg.norm(d)
        return EpisodeSetup(
            impulse=Impulse(
                body=impulse_body(env, config),
                force_n=(float(force[0]), float(force[1]), float(force[2])),
                step=impulse_step(env, config),
            )
        )


@register_kind
class ObsNoiseKind(PerturbationKind):
    """Persistent zero-mean Gaussian noise on every observation entry, std = level (seeded by the episode seed)."""

    name, unit, nominal = "obs_noise", "std (obs units)", 0.0
    summary = "std of Gaussian noise added to every observation entry, in its own units"

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.0, 0.01, 0.02, 0.05)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        return EpisodeSetup({"randomization": DomainRandomization(obs_noise_std=level)})


@register_kind
class LatencyKind(PerturbationKind):
    """Actions delayed by `level` control periods.

    A FIFO (`sim.randomization.ActionDelay`) that starts filled with the hold action: zero effort or velocity, or
    the current position target for position commands. The first `level` steps therefore hold the robot, and the
    policy's action of step t is applied at step t + level.
    """

    name, unit, nominal = "latency", "control periods", 0.0
    summary = "whole control periods of action delay"

    def check_level(self, level: float) -> float:
        value = super().check_level(level)
        if value != int(value):
            raise ValueError(f"{self.name}: a level must be a whole number of control periods, got {level!r}")
        return value

    def default_levels(self, env: RobotTaskEnv) -> tuple[float, ...]:
        return (0.0, 1.0, 2.0, 3.0)

    def setup(self, level: float, env: RobotTaskEnv, config: RobustnessConfig) -> EpisodeSetup:
        k = int(level)
        return EpisodeSetup({"randomization": DomainRandomization(action_latency_steps=(k, k))})


def impulse_body(env: RobotTaskEnv, config: RobustnessConfig) -> str:
    """The body pushed: the configured one, else the cart-pole's pole or the robot's end effector."""
    if config.impulse_body:
        return config.impulse_body
    return "pole" if env.task.name == "cartpole_balance" else env.robot.ee_link


def impulse_time_s(env: RobotTaskEnv, config: RobustnessConfig) -> float:
    """When the push starts: the configured time, else 2 s for the cart-pole and 1 s for the arms."""
    if config.impulse_time_s is not None:
        return config.impulse_time_s
    return 2.0 if env.task.name == "cartpole_balance" else 1.0


def impulse_step(env: RobotTaskEnv, config: RobustnessConfig) -> int:
    """The control step whose period starts at the impulse time (rounded to the nearest control step)."""
    return round(impulse_time_s(env, config) / env.control_dt_s)
