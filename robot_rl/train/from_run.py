"""Rebuild the deployable policy of a finished run from its latest valid checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_rl.algos.registry import algo_config_from_json, make_algorithm
from robot_rl.core.specs import PolicySpec
from robot_rl.nets.policy import TanhPolicy
from robot_rl.train import checkpoint as ckpt


@dataclass(frozen=True)
class RunPolicy:
    """A run's policy module and what the export manifest should say about it."""

    policy: TanhPolicy
    config: dict[str, Any]
    """The run's config.json (algorithm, algorithm config, train config, policy spec)."""
    checkpoint: Path
    summary: dict[str, Any]
    """The run's summary.json, or {} when the run did not finish."""


def load_run_policy(run_dir: Path) -> RunPolicy:
    """Load `run_dir`'s policy; raises FileNotFoundError/CheckpointError with the reason."""
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a training run directory (no config.json)")
    config = json.loads(config_file.read_text())
    latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no valid checkpoint to export")
    saved = ckpt.load_checkpoint(latest)
    spec = PolicySpec.from_json(config["policy_spec"])
    algo = make_algorithm(config["algo"], spec, algo_config_from_json(config["algo"], config["algo_config"]))
    algo.load_state_tensors(saved.model, saved.state["algo_meta"])
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return RunPolicy(policy=algo.policy().eval(), config=config, checkpoint=latest, summary=summary)
