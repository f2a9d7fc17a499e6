"""Source (b): seeded rollouts of an exported bundle (`OnnxPolicy`: raw observations in, physical actions out)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import Episode
from robot_rl.data.datasets.sources.env_rollout import rollout_episodes
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.train.envs import make_env_for, policy_spec_for

SOURCE = "rollout"


def bundle_episodes(
    bundle: str | Path,
    episodes: int,
    seed: int = 0,
    *,
    env_id: str = "",
    max_steps: int = 0,
    backend: str = "",
    progress: Callable[[Episode], None] | None = None,
) -> tuple[PolicySpec, list[Episode]]:
    """`episodes` rollouts of the bundle in its env; episode i is reset with seed `seed + i`.

    The suite env is made with the bundle's command interface and (unless `backend` names another) the physics
    engine it was trained in, so the recorded physical actions mean what the policy meant.

    Raises:
        BundleError (a ValueError): the bundle does not verify.
        ValueError: no env recorded and none given, or the env's sizes or joints differ from the bundle's.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if max_steps < 0:
        raise ValueError(f"--max-steps must be >= 0, got {max_steps}")
    policy = OnnxPolicy.load(bundle)
    env_id = env_id or policy.spec.env_id
    if not env_id:
        raise ValueError(f"{bundle}: the manifest records no env; pass --env")
    kwargs: dict[str, Any] = {"max_episode_steps": max_steps} if max_steps else {}
    robot = policy.spec.robot
    if robot is not None and env_id.startswith("robot_rl/") and "MetaWorld" not in env_id:
        backend = backend or robot.backend
    env = make_env_for(policy.spec, env_id, backend, label=str(bundle), **kwargs)
    try:
        spec = policy_spec_for(env, env_id)
        metadata = {
            "env_id": env_id,
            "backend": backend,
            "bundle": str(Path(bundle).resolve()),
            "policy_sha256": policy.manifest.onnx_sha256,
        }
        out = rollout_episodes(
            env,
            policy.act,
            episodes=episodes,
            seed=seed,
            source=SOURCE,
            metadata=metadata,
            on_reset=policy.reset,
            progress=progress,
        )
        return spec, out
    finally:
        env.close()
