"""Rebuild the deployable policy of a finished run from its latest valid checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_rl.algos.base import Algorithm
from robot_rl.algos.registry import algo_config_from_json, make_algorithm
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.certificate import LyapunovCertificate, certificate_of
from robot_rl.nets.deployable import DeployablePolicy
from robot_rl.train import checkpoint as ckpt


@dataclass(frozen=True)
class RunPolicy:
    """A run's policy module and what the export manifest should say about it."""

    policy: DeployablePolicy
    """Raw observations in, physical actions out, in eval mode."""
    config: dict[str, Any]
    """The run's config.json (algorithm, its registering module, algorithm config, train config, policy spec)."""
    checkpoint: Path
    summary: dict[str, Any]
    """The run's summary.json, or {} when the run did not finish."""
    lyapunov: LyapunovCertificate | None = None
    """The learner's Lyapunov critic in deployable units (LAC), exported next to the policy; None for learners
    without one and for a policy composed on a base (the critic judged the learner's own actions)."""


def load_run_algorithm(run_dir: Path) -> tuple[Algorithm, dict[str, Any], Path]:
    """`(learner, config.json, checkpoint)`: `run_dir`'s learner rebuilt from its config and its latest valid
    checkpoint. Raises FileNotFoundError/CheckpointError with the reason.

    A plug-in algorithm is found by re-importing the module recorded as `algo_module` in config.json.
    """
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a training run directory (no config.json)")
    config = json.loads(config_file.read_text())
    latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no valid checkpoint to load")
    saved = ckpt.load_checkpoint(latest)
    spec = PolicySpec.from_json(config["policy_spec"])
    name, module = config["algo"], config.get("algo_module", "")
    algo = make_algorithm(name, spec, algo_config_from_json(name, config["algo_config"], module), module)
    algo.load_state_tensors(saved.model, saved.state["algo_meta"])
    return algo, config, latest


def load_run_policy(run_dir: Path, compose: bool = True) -> RunPolicy:
    """Load `run_dir`'s policy; raises FileNotFoundError/CheckpointError with the reason.

    A run trained on a frozen base (`config.json["base"]`) yields the composite of base and residual
    (`robot_rl.residual.composite`), raw observations in; a base that cannot compose raises `BaseError`. With
    `compose=False` it yields the learner's own policy (a residual's takes `[obs, proposal]`).
    """
    algo, config, latest = load_run_algorithm(run_dir)
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    policy = algo.policy()
    policy.eval()
    lyapunov = certificate_of(algo)
    if lyapunov is not None:
        lyapunov.module.eval()
    if compose and "base" in config:  # trained on a frozen base: the deployable policy is base and residual together
        from robot_rl.residual.composite import compose_with_recorded_base

        policy = compose_with_recorded_base(policy, config["base"], config["train"].get("backend", ""))
        lyapunov = None
    return RunPolicy(policy=policy, config=config, checkpoint=latest, summary=summary, lyapunov=lyapunov)
