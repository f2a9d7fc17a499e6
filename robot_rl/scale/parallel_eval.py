"""Parallel evaluation of an ONNX bundle on Ray (`robot-rl eval BUNDLE --ray`), identical to the serial evaluation.

The seeded episodes of `robot-rl eval` (episode i always resets with `episode_seed(seed, i, stream=1)`) are split
into contiguous shares, one Ray task (1 CPU) each; with `--robustness` the (kind, level) cells of the LAC protocol
are split instead (every cell runs the same seeded episodes and re-seeds the policy per episode, so cells are
independent). Each task loads the bundle itself from its path (the bundle directory must be readable at the same
path on every node of a cluster) and the shares are merged in order, so the result equals the serial one exactly.

A bundle that draws sampler noise (a diffusion/flow bundle, or one on such a base) consumes one noise generator
across the episodes of a serial `eval` run (`OnnxPolicy.reset` does not re-seed), so its episodes are not
independent: it runs as a single task, which keeps the result identical.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robot_rl.scale.ray_env import init_ray

if TYPE_CHECKING:
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.evaluate import EvalResult
    from robot_rl.train.robustness import LevelResult, RobustnessConfig, RobustnessReport

Cell = tuple[str, float]


def split_contiguous(n: int, parts: int) -> list[tuple[int, int]]:
    """`n` items as at most `parts` contiguous (first, count) shares in order, sizes differing by at most one."""
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    shares, first = [], 0
    for k in range(parts):
        count = base + (1 if k < extra else 0)
        shares.append((first, count))
        first += count
    return shares


def draws_noise(policy: OnnxPolicy) -> bool:
    """Whether the bundle (or a base it runs on) draws noise from its generator, which a serial run carries over
    from one episode to the next."""
    if policy.noise_shape is not None:
        return True
    return policy.base is not None and draws_noise(policy.base)


def merge_results(parts: Sequence[EvalResult]) -> EvalResult:
    """The shares of one evaluation, in episode order, as one result."""
    from robot_rl.train.evaluate import EvalResult

    return EvalResult(
        returns=tuple(r for p in parts for r in p.returns),
        lengths=tuple(n for p in parts for n in p.lengths),
        successes=tuple(s for p in parts for s in p.successes),
        final_distances_m=tuple(d for p in parts for d in p.final_distances_m),
    )


def _start(address: str, workers: int) -> Any:
    """Ray: a local one with `workers` CPUs (0 = all cores), or the cluster at `address`."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    return init_ray(address, num_cpus=(workers or None) if not address else None)


def _task_count(ray: Any, workers: int) -> int:
    return workers or max(1, int(ray.cluster_resources().get("CPU", 1)))


def _eval_share(bundle: str, env_id: str, first: int, episodes: int, seed: int, backend: str) -> EvalResult:
    """One Ray task: episodes `first ..` of the run, exactly as `robot_rl.cli.eval_bundle` runs them."""
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.evaluate import evaluate

    policy = OnnxPolicy.load(bundle)
    return evaluate(
        policy.act, env_id, episodes, seed, backend=backend, on_reset=policy.reset, spec=policy.spec, first=first
    )


def eval_bundle_ray(
    bundle: Path, env: str, episodes: int, seed: int, backend: str = "", *, workers: int = 0, address: str = ""
) -> tuple[EvalResult, str]:
    """`robot_rl.cli.eval_bundle` on Ray: the same (EvalResult, env id), the episodes split over `workers` tasks.

    Args:
        bundle: bundle directory (loaded by every task from this path).
        env: Gymnasium env id; empty = the manifest's.
        episodes: seeded episodes.
        seed: evaluation seed.
        backend: physics engine of a robot_rl/* env ("" = its default).
        workers: Ray tasks (0 = the cluster's CPUs); a local Ray is started with this many CPUs (0 = all cores).
        address: "" = a local Ray on loopback; "HOST:PORT" or "auto" joins a running cluster.

    Raises:
        RayUnavailable: Ray is missing or cannot be started or joined.
        ValueError: the manifest records no env and none is given.
    """
    from robot_rl.export.runtime import OnnxPolicy

    ray = _start(address, workers)
    policy = OnnxPolicy.load(bundle)
    env_id = env or policy.spec.env_id
    if not env_id:
        raise ValueError(f"{bundle}: the manifest records no env; pass --env")
    tasks = _task_count(ray, workers)
    if draws_noise(policy) and tasks > 1 and episodes > 1:
        tasks = 1
        print(
            f"{bundle} draws sampler noise across episodes: evaluating it in one Ray task to match the serial run",
            file=sys.stderr,
        )
    remote = ray.remote(num_cpus=1)(_eval_share)
    path = os.fspath(Path(bundle).resolve())
    refs = [remote.remote(path, env_id, first, n, seed, backend) for first, n in split_contiguous(episodes, tasks)]
    return merge_results(ray.get(refs)), env_id


def _robust_share(
    bundle: str, env_id: str, config: RobustnessConfig, cells: list[Cell], backend: str
) -> tuple[LevelResult, ...]:
    """One Ray task: the rows of `cells`, exactly as `robot_rl.cli`'s serial robustness run computes them."""
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.robustness import run_levels

    policy = OnnxPolicy.load(bundle)

    def on_reset(first_obs: Any) -> None:
        policy.reset(first_obs)

    return run_levels(
        policy.act, env_id, config, cells, backend=backend, spec=policy.spec, on_reset=on_reset, reseed=policy.reseed
    )


def robustness_ray(
    bundle: Path,
    env_id: str,
    config: RobustnessConfig,
    *,
    backend: str = "",
    workers: int = 0,
    address: str = "",
) -> RobustnessReport:
    """The LAC robustness report of `robot-rl eval --robustness`, its (kind, level) cells split over Ray tasks.

    Args:
        bundle: bundle directory (loaded by every task from this path).
        env_id: a robot_rl/* suite id.
        config: kinds, levels, episodes, seed.
        backend: physics engine ("" = the env's default).
        workers: Ray tasks (0 = the cluster's CPUs); a local Ray is started with this many CPUs (0 = all cores).
        address: "" = a local Ray on loopback; "HOST:PORT" or "auto" joins a running cluster.

    Raises:
        RayUnavailable: Ray is missing or cannot be started or joined.
        ValueError: a non-suite env, or a kind that cannot act on this task.
    """
    import dataclasses

    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.robustness import RobustnessReport, robustness_plan

    ray = _start(address, workers)
    spec = OnnxPolicy.load(bundle).spec
    plan, backend_name = robustness_plan(env_id, config, backend=backend, spec=spec)
    cells = [(kind, level) for kind, levels in plan for level in levels]
    remote = ray.remote(num_cpus=1)(_robust_share)
    path = os.fspath(Path(bundle).resolve())
    refs = [
        remote.remote(path, env_id, config, cells[first : first + n], backend)
        for first, n in split_contiguous(len(cells), _task_count(ray, workers))
    ]
    rows = tuple(row for part in ray.get(refs) for row in part)
    resolved = dataclasses.replace(config, perturbations=plan)
    return RobustnessReport(env_id=env_id, backend=backend_name, config=resolved, rows=rows)
