"""The LAC robustness protocol (Han et al. 2020): a policy under model perturbations, pushes, noise and latency.

For every perturbation kind (`robot_rl.train.robustness_perturb`) and every level of it, the same N seeded episodes
run (the seeds of `robot-rl eval`, identical for every level and every policy, so rows and runs compare), and each
level reports its failure rate, success rate, mean episode cost and mean return. Everything is seeded: the same
config, policy and seeds give identical numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from robot_rl.core.config import config_to_json
from robot_rl.core.specs import PolicySpec
from robot_rl.train.envs import episode_seed, make_env, make_env_for
from robot_rl.train.robustness_perturb import KINDS, EpisodeSetup, get_kind
from sim.env import RobotTaskEnv

ActFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class RobustnessConfig:
    """Which perturbations, at which levels, over how many seeded episodes."""

    perturbations: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """(kind, levels) pairs in report order; empty levels = the kind's defaults for the task; no pairs at all = every
    kind that can act on the task, at its default levels. The nominal level is always added."""
    episodes: int = 10
    """Seeded episodes per (kind, level)."""
    seed: int = 0
    """Evaluation seed: episode i of every level resets with `episode_seed(seed, i, stream=1)`, as `robot-rl eval`."""
    impulse_time_s: float | None = None
    """Episode time at which the push starts, s (rounded to a control step); None = 2 s cart-pole, 1 s arms."""
    impulse_body: str = ""
    """Link or object pushed, at its centre of mass; empty = the cart-pole's pole or the arm's end effector."""
    impulse_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    """World-frame direction of the push (normalized; +x is along the cart-pole's track)."""
    length_link: str = "pole"
    """Link the `pole_length` kind stretches."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.impulse_time_s is not None and not (math.isfinite(self.impulse_time_s) and self.impulse_time_s >= 0):
            raise ValueError(f"impulse_time_s must be finite and >= 0, got {self.impulse_time_s}")
        direction = np.asarray(self.impulse_direction, np.float64)
        if direction.shape != (3,) or not np.all(np.isfinite(direction)) or not np.any(direction):
            raise ValueError(f"impulse_direction must be 3 finite numbers, not all 0, got {self.impulse_direction}")
        seen: set[str] = set()
        for kind, levels in self.perturbations:
            k = get_kind(kind)
            if kind in seen:
                raise ValueError(f"perturbation kind {kind!r} is listed twice; give all its levels once")
            seen.add(kind)
            for level in levels:
                k.check_level(level)


def parse_perturbation(text: str) -> tuple[str, tuple[float, ...]]:
    """`"KIND:LEVEL,LEVEL,..."` (or a bare `"KIND"`: its default levels) as (kind, levels); ValueError if invalid."""
    name, _, rest = text.partition(":")
    kind = get_kind(name.strip())
    levels: list[float] = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"{kind.name}: level {item!r} is not a number ({kind.summary})") from None
        levels.append(kind.check_level(value))
    if rest.strip() and not levels:
        raise ValueError(f"{text!r}: no levels after ':'; write KIND:LEVEL,LEVEL,... or just KIND")
    return kind.name, tuple(levels)


@dataclass(frozen=True)
class LevelResult:
    """One (kind, level) row of the report."""

    kind: str
    """Perturbation kind."""
    level: float
    """Its level, in `unit`."""
    unit: str
    """Unit of the level."""
    episodes: int
    """Episodes run."""
    failure_rate: float
    """Fraction of episodes that died: `terminated` without success (the pole fell, a collision), or diverged."""
    success_rate: float
    """Fraction with `info["is_success"]` at the last step."""
    diverged_rate: float
    """Fraction whose physics diverged (counted in `failure_rate` too)."""
    mean_cost: float | None
    """Mean over episodes of the summed `info["cost"]`; None where the env reports no cost."""
    mean_return: float
    """Mean undiscounted return."""
    mean_length_steps: float
    """Mean episode length in control steps."""


@dataclass(frozen=True)
class RobustnessReport:
    """Every row of one policy's robustness evaluation, with what was run."""

    env_id: str
    """Gymnasium id."""
    backend: str
    """Physics engine the episodes ran in."""
    config: RobustnessConfig
    """The protocol as run (kinds with their levels resolved)."""
    rows: tuple[LevelResult, ...]
    """One row per (kind, level), kinds in config order, levels ascending."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN never appears: a missing cost is null)."""
        return {
            "env_id": self.env_id,
            "backend": self.backend,
            "config": config_to_json(self.config),
            "rows": [config_to_json(r) for r in self.rows],
        }

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        head = f"{'kind':<12} {'level':>8} {'unit':<16} {'failure':>8} {'success':>8} {'cost':>10} {'return':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            cost = f"{r.mean_cost:10.2f}" if r.mean_cost is not None else f"{'-':>10}"
            lines.append(
                f"{r.kind:<12} {r.level:>8g} {r.unit:<16} {r.failure_rate:>8.2f} {r.success_rate:>8.2f} {cost} "
                f"{r.mean_return:>10.2f}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class _Episode:
    ret: float
    cost: float | None
    steps: int
    failed: bool
    success: bool
    diverged: bool


def run_robustness(
    act: ActFn,
    env_id: str,
    config: RobustnessConfig,
    *,
    backend: str = "",
    spec: PolicySpec | None = None,
    on_reset: Callable[[npt.NDArray[np.float32]], object] | None = None,
    reseed: Callable[[int], object] | None = None,
    on_start: Callable[[int], object] | None = None,
    progress: Callable[[int], object] | None = None,
) -> RobustnessReport:
    """Run the protocol with `act(obs) -> physical action` on a robot_rl/* suite env.

    Args:
        act: the policy (e.g. `OnnxPolicy.act`).
        env_id: a robot_rl/* suite id.
        config: kinds, levels, episodes, seed.
        backend: physics engine ("" = the env's default).
        spec: the policy's spec; the env is then made for it (its command interface, checked sizes and joints).
        on_reset: called with the first observation of every episode (e.g. `OnnxPolicy.reset`).
        reseed: called with the episode's seed before it starts, so a stochastic policy draws the same noise in
            that episode at every level (e.g. `OnnxPolicy.reseed`).
        on_start: called with the number of episodes to run, once the levels are resolved (a progress bar's total).
        progress: called with 1 after every episode (e.g. a progress bar's `update`).

    Raises:
        ValueError: a non-suite env, or a kind that cannot act on this task (with the reason).
    """
    env, raw = _suite_env(env_id, backend, spec)
    try:
        plan = resolve_levels(config, raw)
        if on_start is not None:
            on_start(config.episodes * sum(len(levels) for _, levels in plan))
        rows = [
            _run_level(env, raw, act, kind_name, level, config, on_reset, reseed, progress)
            for kind_name, levels in plan
            for level in levels
        ]
        resolved = dataclasses.replace(config, perturbations=plan)
        return RobustnessReport(env_id=env_id, backend=raw.backend_name, config=resolved, rows=tuple(rows))
    finally:
        env.close()


def robustness_plan(
    env_id: str, config: RobustnessConfig, *, backend: str = "", spec: PolicySpec | None = None
) -> tuple[tuple[tuple[str, tuple[float, ...]], ...], str]:
    """The (kind, levels) pairs `run_robustness` would run, and the physics engine's name, without running any.

    Raises:
        ValueError: as `run_robustness`.
    """
    env, raw = _suite_env(env_id, backend, spec)
    try:
        return resolve_levels(config, raw), raw.backend_name
    finally:
        env.close()


def run_levels(
    act: ActFn,
    env_id: str,
    config: RobustnessConfig,
    cells: Sequence[tuple[str, float]],
    *,
    backend: str = "",
    spec: PolicySpec | None = None,
    on_reset: Callable[[npt.NDArray[np.float32]], object] | None = None,
    reseed: Callable[[int], object] | None = None,
) -> tuple[LevelResult, ...]:
    """The rows of the given (kind, level) cells, exactly as `run_robustness` computes them (a share of a parallel
    run: every cell runs the same seeded episodes and a level never leaks into the next, so cells are independent)."""
    env, raw = _suite_env(env_id, backend, spec)
    try:
        return tuple(_run_level(env, raw, act, kind, level, config, on_reset, reseed, None) for kind, level in cells)
    finally:
        env.close()


def _suite_env(env_id: str, backend: str, spec: PolicySpec | None) -> tuple[Any, RobotTaskEnv]:
    env = make_env_for(spec, env_id, backend) if spec is not None else make_env(env_id, backend=backend)
    raw = env.unwrapped
    if not isinstance(raw, RobotTaskEnv):
        env.close()
        raise ValueError(f"{env_id} is not a robot_rl/* suite env: the robustness protocol perturbs its physics")
    return env, raw


def _run_level(
    env: Any,
    raw: RobotTaskEnv,
    act: ActFn,
    kind_name: str,
    level: float,
    config: RobustnessConfig,
    on_reset: Callable[[npt.NDArray[np.float32]], object] | None,
    reseed: Callable[[int], object] | None,
    progress: Callable[[int], object] | None,
) -> LevelResult:
    kind = get_kind(kind_name)
    setup = kind.setup(level, raw, config)
    episodes = []
    for i in range(config.episodes):
        seed = episode_seed(config.seed, i, stream=1)
        if reseed is not None:
            reseed(seed)
        episodes.append(_rollout(env, act, seed, setup, on_reset))
        if progress is not None:
            progress(1)
    return _summarize(kind_name, level, kind.unit, episodes)


def resolve_levels(config: RobustnessConfig, env: RobotTaskEnv) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """The (kind, levels) pairs to run on `env`: defaults filled in, nominal added, ascending.

    Raises:
        ValueError: a requested kind that cannot act on this env, with the reason.
    """
    if config.perturbations:
        requested: Sequence[tuple[str, tuple[float, ...]]] = config.perturbations
        for name, _ in requested:
            reason = get_kind(name).unsupported(env, config)
            if reason:
                raise ValueError(f"perturbation {name!r} cannot act on this task: {reason}")
    else:  # every kind that can act on this task
        requested = [(name, ()) for name, kind in KINDS.items() if kind.unsupported(env, config) is None]
    plan = []
    for name, levels in requested:
        kind = get_kind(name)
        chosen = levels or kind.default_levels(env)
        plan.append((name, tuple(sorted({*(kind.check_level(v) for v in chosen), kind.nominal}))))
    return tuple(plan)


def _rollout(
    env: Any,
    act: ActFn,
    seed: int,
    setup: EpisodeSetup,
    on_reset: Callable[[npt.NDArray[np.float32]], object] | None,
) -> _Episode:
    raw = env.unwrapped
    obs, info = env.reset(seed=seed, options=setup.reset_options or None)
    if on_reset is not None:
        on_reset(np.asarray(obs, np.float32))
    push = setup.impulse
    total, cost, has_cost, steps = 0.0, 0.0, False, 0
    terminated = truncated = False
    while not (terminated or truncated):
        action = act(np.asarray(obs, np.float32))
        if push is not None and steps == push.step:
            # Held for every physics substep of this control step (the env applies it during `step`).
            raw.backend.apply_force(push.body, np.asarray(push.force_n), physics_steps=raw.n_substeps)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        if "cost" in info:
            cost += float(info["cost"])
            has_cost = True
        steps += 1
    success = bool(info.get("is_success", False))
    diverged = bool(info.get("diverged", False))
    return _Episode(
        ret=total,
        cost=cost if has_cost else None,
        steps=steps,
        failed=(terminated and not success) or diverged,
        success=success,
        diverged=diverged,
    )


def _summarize(kind: str, level: float, unit: str, episodes: list[_Episode]) -> LevelResult:
    costs = [e.cost for e in episodes if e.cost is not None]
    return LevelResult(
        kind=kind,
        level=level,
        unit=unit,
        episodes=len(episodes),
        failure_rate=float(np.mean([e.failed for e in episodes])),
        success_rate=float(np.mean([e.success for e in episodes])),
        diverged_rate=float(np.mean([e.diverged for e in episodes])),
        mean_cost=float(np.mean(costs)) if len(costs) == len(episodes) else None,
        mean_return=float(np.mean([e.ret for e in episodes])),
        mean_length_steps=float(np.mean([e.steps for e in episodes])),
    )
