"""Collector actors of distributed off-policy training: each owns an env and a copy of the policy, returns blocks.

A `Collector` runs in its own Ray worker process (`collector_class()` applies `ray.remote` on first use, so this
module imports without Ray). It builds its env with `make_env` (any registered task, either physics engine, with
this actor's own domain randomization where the env supports it) and its own instance of the learner's algorithm,
into whose deployable policy it loads the weights the driver broadcasts. It never learns: `act(obs,
deterministic=False)` explores, and each `collect` call returns one block of transitions as numpy arrays.

Only the weights of `algo.policy()` travel (normalizer + actor: a fraction of `state_tensors()`, which also holds
critics and optimizer moments). That is enough exactly when the learner's `act` reads no other weights, which
`check_act_reads_policy` verifies once before any actor starts.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from robot_rl.algos.base import Algorithm

COLLECTOR_SEED_STREAM = 4
"""Seed stream of collector actors (0 = the single-process loop's episodes, 1 = evaluation, 2/3 = the session's
batch and warm-up generators), so an actor's episodes never repeat the evaluation's."""
WeightPayload = dict[str, Any]
"""What one weight broadcast holds: `{"version": int, "tensors": {name: ndarray}}` (the object put in Ray's store)."""


@dataclass(frozen=True)
class CollectorSpec:
    """Everything a collector needs to build its env and its copy of the learner (plain JSON values)."""

    env_id: str
    """Gymnasium id the actor steps."""
    backend: str
    """Physics backend of robot_rl/* suite envs ("" = the env's default)."""
    algo: str
    """Registered algorithm name (`config.json["algo"]`)."""
    algo_module: str
    """Module whose import registers the algorithm (plug-ins are re-imported in the actor's process)."""
    algo_config: dict[str, Any]
    """The algorithm's config as JSON (`config_to_json`)."""
    policy_spec: dict[str, Any]
    """The learner's PolicySpec as JSON (action scaling between normalized and physical actions)."""
    seed: int
    """The run's seed; each actor derives its own streams from it, its index and its incarnation."""
    randomizations: tuple[dict[str, Any], ...] = ()
    """`DomainRandomization` JSON per actor (actor i uses entry i mod length); empty = nominal envs."""
    needs_cost: bool = False
    """The learner minimizes `info["cost"]` (LAC): an env that does not report it is refused, as in the
    single-process loop."""


def collector_seed(seed: int, actor: int, incarnation: int, *more: int) -> int:
    """A 32-bit seed for actor `actor`'s `incarnation`-th start (and `more`, e.g. an episode index)."""
    entropy = [seed, COLLECTOR_SEED_STREAM, actor, incarnation, *more]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def policy_weights(algo: Algorithm) -> dict[str, npt.NDArray[Any]]:
    """The deployable policy's tensors (normalizer, actor, action scaling) as numpy copies: what a broadcast holds."""
    return {k: v.detach().cpu().numpy().copy() for k, v in _policy_module(algo).state_dict().items()}


def load_policy_weights(algo: Algorithm, tensors: dict[str, npt.NDArray[Any]]) -> None:
    """Load `policy_weights` output into `algo`'s policy (strict: a missing or extra tensor is an error)."""
    # torch.tensor copies: arrays from Ray's object store are read-only views of shared memory.
    _policy_module(algo).load_state_dict({k: torch.tensor(v) for k, v in tensors.items()}, strict=True)


def _policy_module(algo: Algorithm) -> torch.nn.Module:
    policy = algo.policy()
    if not isinstance(policy, torch.nn.Module):
        raise TypeError(f"{algo.name}: policy() returned a {type(policy).__name__}, not a torch module with weights")
    return policy


def check_act_reads_policy(learner: Algorithm, fresh: Algorithm, obs_dim: int) -> None:
    """Refuse a learner whose `act` reads weights that `policy()` does not hold (actors would act wrongly).

    `fresh` is a second instance built with different initial weights; after it receives the learner's policy
    weights, both must choose the same deterministic actions on random observations.

    Raises:
        ValueError: the actions differ (the largest difference is in the message).
    """
    load_policy_weights(fresh, policy_weights(learner))
    obs = np.random.default_rng(0).normal(size=(16, obs_dim)).astype(np.float32)
    a, b = learner.act(obs, deterministic=True), fresh.act(obs, deterministic=True)
    if np.asarray(a).shape != np.asarray(b).shape or not np.allclose(a, b, atol=1e-6):
        diff = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.shape(a) == np.shape(b) else math.inf
        raise ValueError(
            f"{getattr(learner, 'name', type(learner).__name__)}: act() depends on weights outside policy() "
            f"(a copy holding only the policy's weights acts differently, max |Δa| = {diff:.3g}); distributed "
            "collection ships only the policy's weights, so this learner cannot run with --actors"
        )


class Collector:
    """One actor: an env, a copy of the learner's policy, and the exploration state of its current episode.

    Args:
        spec: what to build (env, algorithm, seeds).
        actor: this actor's index in [0, N).
        incarnation: how many collectors this run started before this one (restarts and resumes included); it
            seeds the actor's streams, so a restarted actor does not replay the episodes of the one it replaces.
    """

    def __init__(self, spec: CollectorSpec, actor: int, incarnation: int) -> None:
        from robot_rl.algos.registry import algo_config_from_json, make_algorithm
        from robot_rl.core.specs import PolicySpec
        from robot_rl.train.envs import make_env

        torch.set_num_threads(1)  # one core per actor (Ray reserves one CPU each); the learner has its own
        torch.manual_seed(collector_seed(spec.seed, actor, incarnation, 0))  # act()'s exploration noise
        self.spec, self.actor, self.incarnation = spec, actor, incarnation
        self.policy_spec = PolicySpec.from_json(spec.policy_spec)
        kwargs: dict[str, Any] = {}
        if spec.randomizations:
            from sim.randomization import DomainRandomization

            dr_json = spec.randomizations[actor % len(spec.randomizations)]
            kwargs["randomization"] = DomainRandomization.from_json(dr_json)
        self.env = make_env(spec.env_id, backend=spec.backend, **kwargs)
        algo_cfg = algo_config_from_json(spec.algo, spec.algo_config, spec.algo_module)
        self.algo = make_algorithm(spec.algo, self.policy_spec, algo_cfg, spec.algo_module)
        self.rng = np.random.default_rng(collector_seed(spec.seed, actor, incarnation, 1))  # warm-up actions
        self.version = -1
        """Weight version held (-1: none received yet)."""
        self.episode = 0
        self.ep_return, self.ep_len = 0.0, 0
        self.obs: npt.NDArray[np.float32] | None = None

    def ready(self) -> int:
        """The worker's process id (a round trip that fails when the constructor failed)."""
        return os.getpid()

    def collect(self, steps: int, uniform: bool, weights: WeightPayload) -> dict[str, Any]:
        """Step the env `steps` times and return the block.

        Args:
            steps: env steps to take (transitions with non-finite outputs are taken, counted and dropped).
            uniform: act uniformly at random in [-1, 1] (the warm-up before `learning_starts`) instead of `act`.
            weights: the latest broadcast; loaded only when its version differs from the one held.

        Returns:
            `obs [n, O]`, `action [n, A]` (normalized), `reward [n]`, `next_obs [n, O]`, `terminated [n]`,
            `truncated [n]` (bool, never merged), `cost [n]`, `weight_version [n]` (int64: the broadcast each
            action was chosen with), `episode_returns [k]` / `episode_lengths [k]` of episodes that ended in
            this block, and scalars `env_steps`, `nonfinite_env_steps`, `actor`, `incarnation`, `collect_s`.
        """
        t0 = time.perf_counter()
        if int(weights["version"]) != self.version:
            load_policy_weights(self.algo, weights["tensors"])
            self.version = int(weights["version"])
        to_physical = self.policy_spec.action.to_physical
        act_dim = self.policy_spec.action.dim
        rows: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "reward", "next_obs", "term", "trunc", "cost")}
        returns: list[float] = []
        lengths: list[int] = []
        nonfinite = 0
        for _ in range(steps):
            if self.obs is None:
                self.obs = self._reset()
            obs = self.obs
            if uniform:
                action_norm = self.rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
            else:
                action_norm = np.asarray(self.algo.act(obs, deterministic=False), np.float32)
            next_obs, reward, terminated, truncated, info = self.env.step(to_physical(action_norm))
            cost = float(info.get("cost", 0.0)) if isinstance(info, dict) else 0.0
            if self.spec.needs_cost and not (isinstance(info, dict) and ("cost" in info or info.get("diverged"))):
                raise ValueError(
                    f"{self.spec.algo} minimizes the per-step cost info['cost'], which {self.spec.env_id} does not "
                    "report (robot_rl/CartPoleBalance-v0 and the reach tasks do)"
                )
            if not (np.all(np.isfinite(next_obs)) and math.isfinite(float(reward)) and math.isfinite(cost)):
                # a non-finite env output never reaches the buffer; the episode ends here (as in run_online)
                nonfinite += 1
                terminated, truncated = False, True
            else:
                rows["obs"].append(obs)
                rows["action"].append(action_norm)
                rows["reward"].append(float(reward))
                rows["next_obs"].append(np.asarray(next_obs, np.float32))
                rows["term"].append(bool(terminated))
                rows["trunc"].append(bool(truncated))
                rows["cost"].append(cost)
                self.ep_return += float(reward)
                self.ep_len += 1
                self.obs = np.asarray(next_obs, np.float32)
            if terminated or truncated:  # truncation is not termination: both flags travel as they are
                returns.append(self.ep_return)
                lengths.append(self.ep_len)
                self.obs = None
        n = len(rows["reward"])
        obs_dim = self.policy_spec.observation.dim
        return {
            "obs": np.asarray(rows["obs"], np.float32).reshape(n, obs_dim),
            "action": np.asarray(rows["action"], np.float32).reshape(n, act_dim),
            "reward": np.asarray(rows["reward"], np.float32),
            "next_obs": np.asarray(rows["next_obs"], np.float32).reshape(n, obs_dim),
            "terminated": np.asarray(rows["term"], bool),
            "truncated": np.asarray(rows["trunc"], bool),
            "cost": np.asarray(rows["cost"], np.float32),
            "weight_version": np.full(n, self.version, np.int64),
            "episode_returns": np.asarray(returns, np.float64),
            "episode_lengths": np.asarray(lengths, np.int64),
            "env_steps": int(steps),
            "nonfinite_env_steps": nonfinite,
            "actor": self.actor,
            "incarnation": self.incarnation,
            "collect_s": time.perf_counter() - t0,
        }

    def _reset(self) -> npt.NDArray[np.float32]:
        """Seeded reset of this actor's next episode; a non-finite first observation is an error (as in run_online)."""
        seed = collector_seed(self.spec.seed, self.actor, self.incarnation, 2, self.episode)
        self.episode += 1
        self.ep_return, self.ep_len = 0.0, 0
        obs, _ = self.env.reset(seed=seed)
        if not np.all(np.isfinite(obs)):
            raise RuntimeError(f"{self.spec.env_id} returned a non-finite observation on reset (seed {seed}): {obs}")
        return np.asarray(obs, np.float32)


@cache
def collector_class() -> Any:
    """`Collector` as a Ray actor class (one CPU each); imports Ray, so call it only where Ray is wanted."""
    from robot_rl.scale.ray_env import require_ray

    ray = require_ray()
    return ray.remote(num_cpus=1, max_restarts=0)(Collector)
