"""The env loop of online and mixed training: collect → update → evaluate → checkpoint.

With `overlap_env` the env step for the action just chosen runs in a worker thread while the learner takes its
gradient step on data collected up to the previous step, so both cores are busy; the update never reads the
in-flight transition, so overlapped and sequential runs are bit-identical. In mixed mode the batches come from
`mixed_batches` (online buffer + dataset); everything else is the same loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from robot_rl.core.types import Batch
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.envs import episode_seed
from robot_rl.train.evaluate import EvalResult
from robot_rl.train.session import TrainSession, next_multiple


def run_online(
    s: TrainSession,
    env: Any,
    buffer: ReplayBuffer,
    batches: Iterator[Batch[torch.Tensor]],
    saved: ckpt.Checkpoint | None,
) -> EvalResult:
    """Train until `s.cfg.total_steps` env steps; returns the final evaluation (the env is closed here)."""
    cfg, algo, spec = s.cfg, s.algo, s.spec
    episode, ep_return, ep_len = 0, 0.0, 0
    ep_actions: list[np.ndarray] = []
    if saved is None:
        obs = reset_env(env, episode_seed(cfg.seed, 0))
    else:
        st = saved.state
        s.restore(saved)
        buffer.load_state_arrays(
            {k[len("buffer/") :]: v.numpy() for k, v in saved.data.items() if k.startswith("buffer/")},
            pos=int(st["buffer_pos"]),
        )
        episode, ep_return, ep_len = st["episode"], st["ep_return"], st["ep_len"]
        # Re-create the mid-episode env state by replaying this episode's actions from its seeded reset.
        obs = reset_env(env, episode_seed(cfg.seed, episode))
        for a in saved.data["episode_actions"].numpy():
            obs = env.step(a)[0]
            ep_actions.append(a)
        if not np.array_equal(np.asarray(obs, np.float32), saved.data["obs"].numpy()):
            raise ckpt.CheckpointError(
                "resume: replaying the episode did not reproduce the saved observation; the environment "
                "is not deterministic under a seed, so this run cannot be resumed exactly"
            )

    def save() -> None:
        data = {f"buffer/{k}": torch.from_numpy(v) for k, v in buffer.state_arrays().items()}
        data["episode_actions"] = torch.from_numpy(np.asarray(ep_actions, np.float32).reshape(-1, spec.action.dim))
        data["obs"] = torch.from_numpy(np.asarray(obs, np.float32))
        state = {"episode": episode, "ep_return": ep_return, "ep_len": ep_len, "buffer_pos": buffer.pos}
        s.save(data, state)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="env") if cfg.overlap_env else None
    next_eval = next_multiple(s.step, cfg.eval_every)
    next_ckpt = next_multiple(s.step, cfg.checkpoint_every)
    next_log = next_multiple(s.step, cfg.log_every)
    recent_returns: list[float] = []
    nonfinite_env_steps = 0
    last_eval: EvalResult | None = None
    # A learner on a frozen base warms up with its own exploration (the base's proposal plus noise on a zero
    # residual), not uniform noise, which would throw away what the base already does.
    uniform_warmup = not getattr(algo, "acts_during_warmup", False)
    # A cost-minimizing learner (LAC) on an env without `info["cost"]` would see zeros and learn nothing: refuse.
    needs_cost = bool(getattr(algo, "needs_cost", False))
    try:
        while s.step < cfg.total_steps:
            t0 = time.perf_counter()
            if s.step < cfg.learning_starts and uniform_warmup:
                action_norm = s.explore_rng.uniform(-1.0, 1.0, spec.action.dim).astype(np.float32)
            else:
                action_norm = algo.act(np.asarray(obs, np.float32), deterministic=False)
            action = spec.action.to_physical(action_norm)
            future = pool.submit(env.step, action) if pool is not None else None
            if s.step >= cfg.learning_starts and len(buffer) > 0:
                s.record(algo.update(batches))
            next_obs, reward, terminated, truncated, info = future.result() if future else env.step(action)
            s.train_wall_s += time.perf_counter() - t0
            s.step += 1
            s.bar.update(1)

            # The per-step cost (`info["cost"]`, 0 where the env reports none) is what cost-minimizing learners
            # (LAC) train on; reward-driven ones ignore the column.
            cost = float(info.get("cost", 0.0)) if isinstance(info, dict) else 0.0
            if needs_cost and not (isinstance(info, dict) and ("cost" in info or info.get("diverged", False))):
                raise ValueError(
                    f"{algo.name} minimizes the per-step cost info['cost'], which {cfg.env} does not report "
                    "(robot_rl/CartPoleBalance-v0 and the reach tasks do)"
                )
            if not (np.all(np.isfinite(next_obs)) and math.isfinite(float(reward)) and math.isfinite(cost)):
                # a non-finite env output never enters the buffer; end the episode.
                nonfinite_env_steps += 1
                terminated, truncated = False, True
            else:
                buffer.add(obs, action_norm, float(reward), next_obs, terminated, truncated, cost=cost)
                algo.observe(np.asarray(next_obs, np.float32)[None])
                ep_actions.append(action)
                ep_return += float(reward)
                ep_len += 1
                obs = next_obs

            if terminated or truncated:  # truncation is not termination: handled by the buffer flags
                recent_returns = [*recent_returns, ep_return][-10:]
                s.logger.log(
                    s.step, s.train_wall_s, {"train/episode_return": ep_return, "train/episode_length": ep_len}
                )
                episode += 1
                ep_return, ep_len, ep_actions = 0.0, 0, []
                obs = reset_env(env, episode_seed(cfg.seed, episode))
                if cfg.checkpoint_every and s.step >= next_ckpt:
                    save()
                    next_ckpt = next_multiple(s.step, cfg.checkpoint_every)

            if cfg.eval_every and s.step >= next_eval:
                last_eval = s.run_eval()
                next_eval = next_multiple(s.step, cfg.eval_every)
            if s.step >= next_log:
                extra = {
                    "time/steps_per_s": s.step / max(s.train_wall_s, 1e-9),
                    "data/nonfinite_env_steps": float(nonfinite_env_steps),
                }
                if recent_returns:
                    extra["train/recent_return"] = float(np.mean(recent_returns))
                s.flush_stats(extra)
                next_log = next_multiple(s.step, cfg.log_every)

        last_eval = s.finish(last_eval)
        save()
    finally:
        env.close()
        if pool is not None:
            pool.shutdown(wait=True)
    return last_eval


def reset_env(env: Any, seed: int) -> np.ndarray:
    """Seeded reset; a non-finite initial observation stops the run (it would poison the buffer)."""
    obs, _ = env.reset(seed=seed)
    if not np.all(np.isfinite(obs)):
        raise RuntimeError(f"the environment returned a non-finite observation on reset (seed {seed}): {obs}")
    return np.asarray(obs)
