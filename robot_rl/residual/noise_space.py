"""Noise-space steering (DSRL: Wagenmaker et al. 2025, "Steering Your Diffusion Policy with Latent Space
Reinforcement Learning"): an RL agent chooses the **initial noise** of a frozen generative chunk policy, and the
sampler turns it into the action chunk the robot executes, so every executed action is one the base could have
produced (it stays on the base's learned action manifold).

The env as the agent sees it (`NoiseSpaceEnv`): one agent step is one chunk. Its observation is the base's
conditioning (the T_o most recent raw observations, oldest first, flattened); its action is the noise
`[H·A]` in `[-noise_scale, noise_scale]`; `step` plans the chunk with that noise and executes the first H_a
actions (fewer when the episode ends), returning the summed reward. `NoiseSpaceView` is the training loop's view
(`data_view`) of a learner built on it, like `ProposalView` for residuals.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import torch

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.data.datasets.episode import Episode
from robot_rl.residual.base import BaseError, bundle_identity, check_same_base, parse_base_ref, run_identity

F32 = npt.NDArray[np.float32]


class SamplerBase:
    """A frozen generative chunk policy with an explicit noise input: a verified bundle or a training run.

    `plan(history [T_o·O], noise [H, A]) -> [H, A]` physical chunk; `spec` is the base's (chunk size H, execution
    horizon H_a, observation history T_o); `identity` as for every frozen base."""

    def __init__(self, ref: str, seed: int = 0) -> None:
        parsed = parse_base_ref(ref)
        if parsed.path is None:
            raise BaseError(
                "noise-space steering needs a generative base (a bundle or a run with a sampler), not 'expert'"
            )
        self.kind = parsed.kind
        self._plan: Callable[[F32, F32], Any]
        if parsed.kind == "bundle":
            from robot_rl.export.runtime import OnnxPolicy

            bundle = OnnxPolicy.load(parsed.path, seed=seed)
            self.spec: PolicySpec = bundle.spec
            noise = bundle.noise_shape
            self.identity = bundle_identity(bundle.manifest.onnx_sha256)
            self._plan = bundle.plan
        else:
            from robot_rl.train.from_run import load_run_policy

            run = load_run_policy(parsed.path)
            self.spec = run.policy.spec
            noise = run.policy.noise_shape
            self.identity = run_identity(run.checkpoint)
            self.module = run.policy
            self._plan = self._plan_torch
        if noise is None:
            raise BaseError(
                f"base {ref!r} has no noise input: noise-space steering needs a diffusion/flow/MeanFlow policy"
            )
        self.noise_shape: tuple[int, ...] = tuple(int(d) for d in noise)

    @torch.inference_mode()
    def _plan_torch(self, history: F32, noise: F32) -> F32:
        out = self.module(torch.from_numpy(history)[None], torch.from_numpy(noise)[None])[0]
        chunk: F32 = out.numpy().reshape(self.noise_shape[0], -1)
        return chunk

    def plan(self, history: F32, noise: F32) -> F32:
        """The base's physical chunk `[H, A]` for `history [T_o·O]` and `noise [H, A]` (both float32)."""
        chunk = np.asarray(self._plan(history, noise), dtype=np.float32).reshape(self.noise_shape[0], -1)
        if not np.all(np.isfinite(chunk)):
            raise RuntimeError(
                f"the base sampler produced a non-finite chunk for noise max |{np.abs(noise).max():.3g}|"
            )
        return chunk


class NoiseSpaceEnv(gym.Env[F32, F32]):
    """`env` seen one chunk at a time, steered through the base's noise (see the module docstring)."""

    def __init__(self, env: gym.Env[Any, Any], base: SamplerBase, noise_scale: float) -> None:
        super().__init__()
        self.env, self.base, self.noise_scale = env, base, float(noise_scale)
        self.history_len = base.spec.obs_history
        self.horizon = base.spec.executed_per_chunk
        obs_dim = base.spec.observation.dim
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.history_len * obs_dim,), np.float32)
        size = int(np.prod(base.noise_shape))
        self.action_space = gym.spaces.Box(-self.noise_scale, self.noise_scale, (size,), np.float32)
        self._history: deque[F32] = deque(maxlen=self.history_len)
        self.metadata = dict(getattr(env, "metadata", {}))
        self.last_chunk: F32 | None = None
        """The chunk planned by the latest step (physical units)."""

    @property
    def unwrapped(self) -> gym.Env[Any, Any]:  # the robot env (its expert, its robot interface)
        return self.env.unwrapped

    def _flat(self) -> F32:
        return np.concatenate(list(self._history)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F32, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        first = np.asarray(obs, np.float32).reshape(-1)
        self._history.clear()
        self._history.extend([first] * self.history_len)  # the episode's first observation repeated
        return self._flat(), info

    def step(self, action: F32) -> tuple[F32, SupportsFloat, bool, bool, dict[str, Any]]:
        noise = np.asarray(action, np.float32).reshape(self.base.noise_shape)
        if not np.all(np.isfinite(noise)):
            raise ValueError("noise-space action is not finite")
        chunk = self.base.plan(self._flat(), np.clip(noise, -self.noise_scale, self.noise_scale))
        self.last_chunk = chunk
        total, terminated, truncated, steps = 0.0, False, False, 0
        info: dict[str, Any] = {}
        for j in range(self.horizon):
            obs, reward, terminated, truncated, info = self.env.step(chunk[j])
            self._history.append(np.asarray(obs, np.float32).reshape(-1))
            total += float(reward)
            steps = j + 1
            if terminated or truncated:
                break
        return self._flat(), total, terminated, truncated, {**info, "chunk_steps": steps}

    def close(self) -> None:
        self.env.close()


class NoiseSpaceView:
    """The training loop's view of a learner that steers a generative base through its noise (`data_view`)."""

    def __init__(self, ref: str, env_id: str, seed: int, noise_scale: float) -> None:
        self.ref, self.env_id, self.seed, self.noise_scale = ref, env_id, seed, noise_scale
        self._record: dict[str, Any] | None = None
        self._base_spec: PolicySpec | None = None

    def wrap(self, env: gym.Env[Any, Any]) -> NoiseSpaceEnv:
        base = SamplerBase(self.ref, self.seed)
        obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
        if (int(np.prod(obs_shape or ())), int(np.prod(act_shape or ()))) != (
            base.spec.observation.dim,
            base.spec.action.dim,
        ):
            raise BaseError(f"base {self.ref!r} does not fit {self.env_id}: observation or action sizes differ")
        record = {"view": "noise", "ref": self.ref, "kind": base.kind, "identity": base.identity}
        if self._record is None:
            self._record = record
        else:
            check_same_base(self._record, base.identity)
        self._base_spec = base.spec
        return NoiseSpaceEnv(env, base, self.noise_scale)

    def spec(self, env_spec: PolicySpec) -> PolicySpec:
        """The agent's spec: the base's flattened history in, the noise out (its physical range ±noise_scale), one
        decision per chunk (the control rate divided by H_a); no robot interface (it does not command joints)."""
        if self._base_spec is None:
            raise RuntimeError("NoiseSpaceView.spec() before any env was wrapped")
        base = self._base_spec
        size = base.chunk_size * base.action.dim
        return dataclasses.replace(
            env_spec,
            observation=ObservationSpec.flat(base.obs_history * base.observation.dim),
            action=ActionSpec(low=(-self.noise_scale,) * size, high=(self.noise_scale,) * size),
            control_hz=env_spec.control_hz / base.executed_per_chunk,
            robot=None,
            chunk_size=1,
            execution_horizon=0,
            obs_history=1,
        )

    def episodes(self, episodes: Sequence[Episode], env_spec: PolicySpec) -> list[Episode]:
        raise BaseError("noise-space steering trains on online data only: recorded episodes carry no noise")

    def record(self) -> dict[str, Any]:
        if self._record is None:
            raise RuntimeError("NoiseSpaceView.record() before any env was wrapped")
        return dict(self._record)

    def check(self, recorded: dict[str, Any]) -> None:
        if self._record is None:
            raise RuntimeError("NoiseSpaceView.check() before any env was wrapped")
        check_same_base(recorded, self._record["identity"])
