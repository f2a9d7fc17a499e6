"""The off-policy training loop: collect → update → evaluate → checkpoint.

The trainer owns the env, the replay buffer and the RNG streams; the algorithm only sees an
iterator of batches (docs/architecture.md). With `overlap_env` the env step for the action just
chosen runs in a worker thread while the learner takes its gradient step on data collected up to
the previous step, so both cores are busy; the update never reads the in-flight transition, so
overlapped and sequential runs are bit-identical.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robot_rl.algos.base import Algorithm
from robot_rl.algos.registry import algo_config_from_json, make_algorithm
from robot_rl.core.config import config_from_json, config_to_json
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.config import TrainConfig
from robot_rl.train.envs import episode_seed, make_env, policy_spec_for
from robot_rl.train.evaluate import EvalResult, evaluate
from robot_rl.train.metrics import MetricsLogger


class TrainingDiverged(RuntimeError):
    """A loss, statistic or parameter became NaN/Inf; the run stopped without a valid checkpoint."""


@dataclass(frozen=True)
class RunResult:
    """Summary of a finished training run."""

    run_dir: Path
    steps: int
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


def _torch_batches(buffer: ReplayBuffer, batch_size: int, rng: np.random.Generator) -> Iterator[Batch[torch.Tensor]]:
    while True:
        b = buffer.sample(batch_size, rng)
        yield Batch(*(torch.from_numpy(x) for x in b))


def train(
    cfg: TrainConfig, algo_name: str, algo_cfg: Any, resume: bool = False, extend_to_steps: int | None = None
) -> RunResult:
    """Train `algo_name` with `algo_cfg` according to `cfg`; with `resume`, continue the run in its directory.

    On resume the saved configs are used (`extend_to_steps` may raise `total_steps`).
    """
    run_dir = run_dir_for(cfg, algo_name)
    if resume and not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"--resume: {run_dir} holds no run (no config.json)")
    _prepare_run_dir(run_dir, resume)
    saved: ckpt.Checkpoint | None = None
    if resume:
        saved_cfg = json.loads((run_dir / "config.json").read_text())
        algo_name = saved_cfg["algo"]
        algo_cfg = algo_config_from_json(algo_name, saved_cfg["algo_config"])
        cfg = config_from_json(TrainConfig, saved_cfg["train"])
        latest = ckpt.latest_checkpoint(run_dir / "checkpoints")
        if latest is None:
            raise FileNotFoundError(f"--resume: {run_dir} has no valid checkpoint")
        saved = ckpt.load_checkpoint(latest)
    if extend_to_steps is not None:
        cfg = config_from_json(TrainConfig, {**config_to_json(cfg), "total_steps": extend_to_steps})

    env = make_env(cfg.env, backend=cfg.backend)
    spec = policy_spec_for(env, cfg.env)
    torch.manual_seed(cfg.seed)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    algo: Algorithm = make_algorithm(algo_name, spec, algo_cfg)
    buffer = ReplayBuffer(cfg.buffer_size, spec.observation.dim, spec.action.dim)
    sample_rng = np.random.default_rng([cfg.seed, 2])
    explore_rng = np.random.default_rng([cfg.seed, 3])

    config_json = {
        "algo": algo_name,
        "algo_config": config_to_json(algo_cfg),
        "train": config_to_json(cfg),
        "policy_spec": spec.to_json(),
    }
    ckpt.atomic_write_text(run_dir / "config.json", json.dumps(config_json, indent=1))

    step, episode, ep_return, ep_len = 0, 0, 0.0, 0
    ep_actions: list[np.ndarray] = []
    train_wall_s = 0.0
    if saved is None:
        obs = _reset(env, episode_seed(cfg.seed, 0))
    else:
        st = saved.state
        algo.load_state_tensors(saved.model, st["algo_meta"])
        buffer.load_state_arrays(
            {k[len("buffer/") :]: v.numpy() for k, v in saved.data.items() if k.startswith("buffer/")},
            pos=int(st["buffer_pos"]),
        )
        torch.set_rng_state(saved.data["rng/torch"])
        sample_rng.bit_generator.state = st["rng"]["sample"]
        explore_rng.bit_generator.state = st["rng"]["explore"]
        step, episode, ep_return, ep_len = st["step"], st["episode"], st["ep_return"], st["ep_len"]
        train_wall_s = float(st["train_wall_s"])
        # Re-create the mid-episode env state by replaying this episode's actions from its seeded reset.
        obs = _reset(env, episode_seed(cfg.seed, episode))
        for a in saved.data["episode_actions"].numpy():
            obs = env.step(a)[0]
            ep_actions.append(a)
        if not np.array_equal(np.asarray(obs, np.float32), saved.data["obs"].numpy()):
            raise ckpt.CheckpointError(
                "resume: replaying the episode did not reproduce the saved observation; the environment "
                "is not deterministic under a seed, so this run cannot be resumed exactly"
            )

    logger = MetricsLogger(run_dir, cfg.tensorboard)
    batches = _torch_batches(buffer, getattr(algo_cfg, "batch_size", 256), sample_rng)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="env") if cfg.overlap_env else None
    next_eval = _next_multiple(step, cfg.eval_every)
    next_ckpt = _next_multiple(step, cfg.checkpoint_every)
    next_log = _next_multiple(step, cfg.log_every)
    stats_acc: dict[str, float] = {}
    stats_n = 0
    recent_returns: list[float] = []
    nonfinite_env_steps = 0
    bar = tqdm(total=cfg.total_steps, initial=step, disable=not cfg.progress, unit="step", dynamic_ncols=True)

    def save(at_step: int) -> None:
        data = {f"buffer/{k}": torch.from_numpy(v) for k, v in buffer.state_arrays().items()}
        data["rng/torch"] = torch.get_rng_state()
        data["episode_actions"] = torch.from_numpy(np.asarray(ep_actions, np.float32).reshape(-1, spec.action.dim))
        data["obs"] = torch.from_numpy(np.asarray(obs, np.float32))
        state = {
            "episode": episode,
            "ep_return": ep_return,
            "ep_len": ep_len,
            "buffer_pos": buffer.pos,
            "train_wall_s": train_wall_s,
            "rng": {"sample": sample_rng.bit_generator.state, "explore": explore_rng.bit_generator.state},
            "algo_meta": algo.state_meta(),
            "config": config_json,
        }
        ckpt.save_checkpoint(run_dir / "checkpoints", at_step, algo.state_tensors(), data, state)

    def run_eval() -> EvalResult:
        policy = algo.policy().eval()

        @torch.inference_mode()
        def act(o: np.ndarray) -> np.ndarray:
            out: np.ndarray = policy(torch.from_numpy(o).unsqueeze(0))[0].numpy()
            return out

        res = evaluate(act, cfg.env, cfg.eval_episodes, cfg.seed, backend=cfg.backend)
        logger.log_eval(step, train_wall_s, res.mean_return, res.std_return, res.success_rate, len(res.returns))
        bar.set_postfix(eval_return=f"{res.mean_return:.1f}")
        return res

    last_eval: EvalResult | None = None
    try:
        while step < cfg.total_steps:
            t0 = time.perf_counter()
            if step < cfg.learning_starts:
                action_norm = explore_rng.uniform(-1.0, 1.0, spec.action.dim).astype(np.float32)
            else:
                action_norm = algo.act(np.asarray(obs, np.float32), deterministic=False)
            action = spec.action.to_physical(action_norm)
            future = pool.submit(env.step, action) if pool is not None else None
            if step >= cfg.learning_starts and len(buffer) > 0:
                stats = algo.update(batches)
                _check_finite(stats, step, run_dir)
                for k, v in stats.values.items():
                    stats_acc[k] = stats_acc.get(k, 0.0) + v
                stats_n += 1
            next_obs, reward, terminated, truncated, _ = future.result() if future else env.step(action)
            train_wall_s += time.perf_counter() - t0
            step += 1
            bar.update(1)

            if not (np.all(np.isfinite(next_obs)) and math.isfinite(float(reward))):
                # RELIABILITY N1: a non-finite env output never enters the buffer; end the episode.
                nonfinite_env_steps += 1
                terminated, truncated = False, True
            else:
                buffer.add(obs, action_norm, float(reward), next_obs, terminated, truncated)
                algo.observe(np.asarray(next_obs, np.float32)[None])
                ep_actions.append(action)
                ep_return += float(reward)
                ep_len += 1
                obs = next_obs

            if terminated or truncated:  # truncation is not termination: handled by the buffer flags
                recent_returns = [*recent_returns, ep_return][-10:]
                logger.log(step, train_wall_s, {"train/episode_return": ep_return, "train/episode_length": ep_len})
                episode += 1
                ep_return, ep_len, ep_actions = 0.0, 0, []
                obs = _reset(env, episode_seed(cfg.seed, episode))
                if cfg.checkpoint_every and step >= next_ckpt:
                    save(step)
                    next_ckpt = _next_multiple(step, cfg.checkpoint_every)

            if cfg.eval_every and step >= next_eval:
                last_eval = run_eval()
                next_eval = _next_multiple(step, cfg.eval_every)
            if step >= next_log:
                values = {k: v / max(stats_n, 1) for k, v in stats_acc.items()}
                values["time/steps_per_s"] = step / max(train_wall_s, 1e-9)
                values["data/nonfinite_env_steps"] = float(nonfinite_env_steps)
                if recent_returns:
                    values["train/recent_return"] = float(np.mean(recent_returns))
                logger.log(step, train_wall_s, values)
                stats_acc, stats_n = {}, 0
                next_log = _next_multiple(step, cfg.log_every)

        if last_eval is None or not cfg.eval_every or step % cfg.eval_every != 0:
            last_eval = run_eval()
        save(step)
    finally:
        bar.close()
        logger.close()
        env.close()
        if pool is not None:
            pool.shutdown(wait=True)

    summary = {
        "steps": step,
        "train_wall_s": train_wall_s,
        "steps_per_s": step / max(train_wall_s, 1e-9),
        "final_eval_mean_return": last_eval.mean_return,
        "final_eval_std_return": last_eval.std_return,
        "final_eval_success_rate": last_eval.success_rate,
    }
    ckpt.atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1))
    return RunResult(run_dir=run_dir, steps=step, train_wall_s=train_wall_s, final_eval=last_eval)


def _reset(env: Any, seed: int) -> np.ndarray:
    """Seeded reset; a non-finite initial observation stops the run (it would poison the buffer)."""
    obs, _ = env.reset(seed=seed)
    if not np.all(np.isfinite(obs)):
        raise RuntimeError(f"the environment returned a non-finite observation on reset (seed {seed}): {obs}")
    return np.asarray(obs)


def _next_multiple(step: int, every: int) -> int:
    if every <= 0:
        return 1 << 62
    return (step // every + 1) * every


def _check_finite(stats: TrainingStats, step: int, run_dir: Path) -> None:
    bad = stats.non_finite()
    if bad:
        dump = {"step": step, "non_finite": bad, "stats": {k: repr(v) for k, v in stats.values.items()}}
        ckpt.atomic_write_text(run_dir / "failure.json", json.dumps(dump, indent=1))
        raise TrainingDiverged(
            f"training diverged at step {step}: non-finite {bad}; no checkpoint was written for this state "
            f"(details in {run_dir / 'failure.json'}; the last valid checkpoint is untouched)"
        )
