"""The one training driver: online (env), offline (dataset) or mixed data, for any registered algorithm.

The trainer owns the env, the buffers and the RNG streams; the algorithm only sees an iterator of batches
(docs/architecture.md), so the same algorithm object trains on any of the three data modes:

- `online`: the env loop (`robot_rl.train.online`) samples batches from the run's own replay buffer;
- `mixed`: the same env loop, each batch drawing `demo_ratio` of its rows from the dataset (`mixed_batches`);
- `offline`: no env steps (`robot_rl.train.offline`); `total_steps` counts update calls; the env evaluates.

Every mode writes the same run directory: config.json (with the algorithm's registering module, so a plug-in is
re-imported on resume and export), checkpoints, metrics.jsonl, eval.csv and summary.json.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.algos.registry import algo_config_from_json, get_algorithm, make_algorithm
from robot_rl.core.config import config_from_json, config_to_json
from robot_rl.core.specs import PolicySpec
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.batches import mixed_batches, requested_layout, sample_batches, torch_batches
from robot_rl.train.config import TrainConfig
from robot_rl.train.device import place_algorithm, resolve_device
from robot_rl.train.envs import make_env, policy_spec_for
from robot_rl.train.evaluate import EvalResult
from robot_rl.train.offline import run_offline
from robot_rl.train.online import run_online
from robot_rl.train.safe_env import SafetyFilteredEnv, safety_filtered
from robot_rl.train.session import TrainingDiverged, TrainSession

__all__ = ["RunResult", "TrainingDiverged", "dataset_fingerprint", "run_dir_for", "train"]


@dataclass(frozen=True)
class RunResult:
    """Summary of a finished training run."""

    run_dir: Path
    steps: int
    """Env steps (online, mixed) or update calls (offline)."""
    train_wall_s: float
    """Seconds spent collecting and updating (evaluation and checkpointing excluded)."""
    final_eval: EvalResult


def run_dir_for(cfg: TrainConfig, algo_name: str) -> Path:
    name = cfg.run_name or f"{algo_name}-{cfg.env}-s{cfg.seed}"
    return cfg.out_dir / name


def _prepare_run_dir(run_dir: Path, resume: bool) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"output directory {run_dir} is not writable: {exc}") from None
    if not resume and (run_dir / "config.json").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-name"
        )


def train(
    cfg: TrainConfig,
    algo_name: str,
    algo_cfg: Any,
    resume: bool = False,
    extend_to_steps: int | None = None,
    offline_buffer: ReplayBuffer | None = None,
    on_eval: Callable[[int, EvalResult], None] | None = None,
) -> RunResult:
    """Train `algo_name` with `algo_cfg` according to `cfg`; with `resume`, continue the run in its directory.

    On resume the saved configs are used (`extend_to_steps` may raise `total_steps`). `offline_buffer` is the
    dataset of `offline`/`mixed` data when given (tests, callers that built it); otherwise `cfg.dataset` is loaded
    with `robot_rl.data.datasets.load_replay`. `on_eval(step, result)` is called after every evaluation (a sweep
    reports it to its scheduler); it may raise to stop the run, whose last checkpoint stays valid.
    """
    if not resume and cfg.data == "online" and get_algorithm(algo_name).needs_dataset:
        raise ValueError(
            f"{algo_name} learns from recorded data: pass --data offline --dataset DIR (or --data mixed); "
            "`robot-rl dataset` builds one"
        )
    device = resolve_device(cfg.device)  # before anything is written: a missing GPU is a clear error, not a crash
    run_dir = run_dir_for(cfg, algo_name)
    if resume and not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"--resume: {run_dir} holds no run (no config.json)")
    _prepare_run_dir(run_dir, resume)
    saved: ckpt.Checkpoint | None = None
    saved_cfg: dict[str, Any] = {}
    algo_module = ""
    if resume:
        saved_cfg = json.loads((run_dir / "config.json").read_text())
        algo_name, algo_module = saved_cfg["algo"], saved_cfg.get("algo_module", "")
        algo_cfg = algo_config_from_json(algo_name, saved_cfg["algo_config"], algo_module)
        cfg = config_from_json(TrainConfig, saved_cfg["train"])
        device = resolve_device(cfg.device)  # the run's own choice (a run saved with `cuda` needs a GPU to resume)
        latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
        if latest is None:
            raise FileNotFoundError(f"--resume: {run_dir} has no valid checkpoint")
        saved = ckpt.load_checkpoint(latest)
    if extend_to_steps is not None:
        cfg = config_from_json(TrainConfig, {**config_to_json(cfg), "total_steps": extend_to_steps})
    entry = get_algorithm(algo_name, algo_module)

    env = make_env(cfg.env, backend=cfg.backend)
    spec = policy_spec_for(env, cfg.env)
    if cfg.safety:  # safe exploration: the robot's safety chain (a CBF filter, say) between learner and simulator
        try:
            env = safety_filtered(env, cfg.safety)
        except BaseException:
            env.close()
            raise
    # A learner on a frozen base sees every env through its view (the base's proposal appended to observations).
    data_view = getattr(entry.algo_cls, "data_view", None)
    view = data_view(algo_cfg, cfg.env, cfg.seed) if data_view is not None else None
    env_spec = spec
    try:
        if view is not None:
            env = view.wrap(env)
            spec = view.spec(spec)
            if "base" in saved_cfg:
                view.check(saved_cfg["base"])
        if cfg.data == "online":
            dataset = None
        elif view is not None and offline_buffer is None:
            dataset = _viewed_dataset(cfg, view, env_spec, spec)
        else:
            dataset = _dataset(cfg, spec, offline_buffer)
    except BaseException:
        env.close()
        raise
    if cfg.data == "offline":
        env.close()  # evaluation makes its own env
    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    algo = place_algorithm(lambda: make_algorithm(algo_name, spec, algo_cfg, entry.module), device)
    config_json: dict[str, Any] = {
        "algo": algo_name,
        "algo_module": entry.module,
        "algo_config": config_to_json(algo_cfg),
        "train": config_to_json(cfg),
        "policy_spec": spec.to_json(),
    }
    if view is not None:
        config_json["base"] = view.record()
    if dataset is not None:
        config_json["dataset"] = {
            "path": cfg.dataset,
            "transitions": len(dataset),
            "sha256": dataset_fingerprint(dataset),
        }
        old = saved_cfg.get("dataset")
        if old is not None and old["sha256"] != config_json["dataset"]["sha256"]:
            raise ckpt.CheckpointError(
                f"resume: the dataset changed since the run started ({old['transitions']} transitions, sha256 "
                f"{old['sha256'][:16]}… then; {len(dataset)}, {config_json['dataset']['sha256'][:16]}… now)"
            )
    ckpt.atomic_write_text(run_dir / "config.json", json.dumps(config_json, indent=1))

    session = TrainSession.open(cfg, algo, spec, run_dir, config_json, env_view=view, on_eval=on_eval)
    batch_size = int(getattr(algo_cfg, "batch_size", 256))
    # chunked learners (bc with chunks, diffusion, flow, meanflow) ask for chunks and histories, residual ones for
    # n-step rows
    layout = requested_layout(algo)
    try:
        if saved is None and dataset is not None:  # the normalizer starts from the dataset's statistics
            algo.observe(np.asarray(dataset.obs[: len(dataset)], np.float32))
            observe_actions = getattr(algo, "observe_actions", None)  # optional: a learner's action range
            if observe_actions is not None:
                observe_actions(np.asarray(dataset.action[: len(dataset)], np.float32))
        if cfg.data == "offline" and dataset is not None:
            stream = sample_batches(dataset, batch_size, session.sample_rng, layout)
            last_eval = run_offline(session, torch_batches(stream), saved)
        else:
            buffer = ReplayBuffer(cfg.buffer_size, spec.observation.dim, spec.action.dim)
            if dataset is None:
                stream = sample_batches(buffer, batch_size, session.sample_rng, layout)
            else:
                stream = mixed_batches(buffer, dataset, cfg.demo_ratio, batch_size, session.sample_rng, layout)
            if cfg.actors > 0:  # Ray actors collect; imported only here, Ray is an optional extra
                from robot_rl.train.distributed import run_distributed

                last_eval = run_distributed(session, buffer, torch_batches(stream), saved)
            else:
                last_eval = run_online(session, env, buffer, torch_batches(stream), saved)
    finally:
        session.close()
        env.close()
        if isinstance(env, SafetyFilteredEnv):
            ckpt.atomic_write_text(run_dir / "safety.json", json.dumps(env.summary(), indent=1))
    session.write_summary(last_eval)
    return RunResult(run_dir=run_dir, steps=session.step, train_wall_s=session.train_wall_s, final_eval=last_eval)


def _viewed_dataset(cfg: TrainConfig, view: Any, env_spec: PolicySpec, spec: PolicySpec) -> ReplayBuffer:
    """The dataset as a learner on a frozen base sees it: each recorded episode replayed through the base, its
    proposals appended to the observations (`ProposalView.episodes`), then checked like any dataset."""
    from robot_rl.data.datasets import fill_replay, read_dataset, spec_mismatch

    if not cfg.dataset:
        raise ValueError(f"--data {cfg.data} needs --dataset (a dataset folder written by `robot-rl dataset`)")
    data = read_dataset(Path(cfg.dataset))
    problems = spec_mismatch(data.spec, env_spec)
    if problems:
        raise ValueError(f"dataset {cfg.dataset} does not match {cfg.env}: {'; '.join(problems)}")
    episodes = view.episodes(data.episodes, env_spec)
    buffer = ReplayBuffer(max(sum(len(e) for e in episodes), 1), spec.observation.dim, spec.action.dim)
    fill_replay(buffer, episodes, spec)
    return _dataset(cfg, spec, buffer)


def _dataset(cfg: TrainConfig, spec: PolicySpec, given: ReplayBuffer | None) -> ReplayBuffer:
    """The dataset buffer of offline/mixed training, checked against the env's spec."""
    if given is not None:
        dataset = given
    elif not cfg.dataset:
        raise ValueError(f"--data {cfg.data} needs --dataset (a dataset folder written by `robot-rl dataset`)")
    else:
        from robot_rl.data.datasets import load_replay  # only offline/mixed runs need the dataset readers

        dataset = load_replay(Path(cfg.dataset), spec)
    if len(dataset) == 0:
        raise ValueError(f"dataset {cfg.dataset or '(given buffer)'} holds no transitions")
    obs_dim, act_dim = dataset.obs.shape[1], dataset.action.shape[1]
    if (obs_dim, act_dim) != (spec.observation.dim, spec.action.dim):
        raise ValueError(
            f"dataset {cfg.dataset or '(given buffer)'} has observations of size {obs_dim} and actions of size "
            f"{act_dim}, but {cfg.env} has {spec.observation.dim} and {spec.action.dim}"
        )
    actions = dataset.action[: len(dataset)]
    if not np.all(np.abs(actions) <= 1.0 + 1e-6):
        raise ValueError(
            f"dataset {cfg.dataset or '(given buffer)'} holds actions outside [-1, 1] (max |a| "
            f"{float(np.abs(actions).max()):.3g}); training data must carry normalized actions"
        )
    return dataset


def dataset_fingerprint(buffer: ReplayBuffer) -> str:
    """sha256 over a buffer's valid columns (a resumed run refuses a dataset that changed)."""
    digest = hashlib.sha256()
    for name, array in sorted(buffer.state_arrays().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
