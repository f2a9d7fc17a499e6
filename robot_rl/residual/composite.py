"""The deployable policy of a run trained on a frozen base: base and residual as one module, so the exported
bundle takes the robot's raw observation (no proposal input) and runs in the node like any other policy.

`CompositePolicy.forward(obs [B, O]) = residual([obs, clip(to_normalized(base(obs)), -1, 1)])`, physical actions
out. It is built from the run's recorded base (`config.json["base"]`) when the run is loaded
(`robot_rl.train.from_run.load_run_policy`): a training-run base whose weights still have the recorded sha256 and
whose policy is plain (one observation in, one action out, no sampler). A scripted expert is refused (Python code
reading simulator state). A residual on a bundle base, or on a chunked or sampler base (state between steps that
one stateless graph cannot hold), exports as a bundle on its base bundle instead
(`robot_rl.residual.on_base_bundle`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robot_rl.core.specs import PolicySpec
from robot_rl.nets.deployable import DeployablePolicy, as_module, physical_action_affine
from robot_rl.residual.base import BaseError, check_same_base, run_identity


class CompositePolicy(nn.Module):
    """`obs [B, O]` (raw) → physical action `[B, A]`: a frozen plain base and the residual policy over its
    proposal (see the module docstring). The spec is the base's (the env's, robot interface included)."""

    obs_history = 1
    chunk_size = 1
    noise_shape: tuple[int, ...] | None = None

    def __init__(self, base: DeployablePolicy, residual: DeployablePolicy) -> None:
        super().__init__()
        if base.obs_history != 1 or base.chunk_size != 1 or base.noise_shape is not None:
            raise BaseError(
                "only a plain base (one observation in, one action out, no sampler) composes into one graph; "
                f"this one has obs_history {base.obs_history}, chunk_size {base.chunk_size}, noise {base.noise_shape}"
            )
        obs_dim, act_dim = base.spec.observation.dim, base.spec.action.dim
        if residual.spec.observation.dim != obs_dim + act_dim or residual.spec.action != base.spec.action:
            raise BaseError(
                f"the residual ({residual.spec.observation.dim} inputs, actions {residual.spec.action}) does not fit "
                f"the base ({obs_dim} observations + {act_dim} proposals, actions {base.spec.action})"
            )
        self.spec: PolicySpec = base.spec
        self.base = as_module(base)
        self.residual = as_module(residual)
        for p in self.base.parameters():
            p.requires_grad_(False)
        scale, offset = physical_action_affine(base.spec)
        self.register_buffer("base_scale", scale)
        self.register_buffer("base_offset", offset)

    base_scale: torch.Tensor
    base_offset: torch.Tensor

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            raise ValueError(f"CompositePolicy is deterministic and takes no noise, got noise {tuple(noise.shape)}")
        proposal = ((self.base(obs) - self.base_offset) / self.base_scale).clamp(-1.0, 1.0)
        out: torch.Tensor = self.residual(torch.cat([obs, proposal], dim=-1))
        return out


class NoiseSteeredPolicy(nn.Module):
    """`obs [B, T_o·O]` (raw history) → physical chunk `[B, H, A]`: the noise actor picks the initial noise
    (`[B, H·A]`, within ±noise_scale) and the frozen sampler turns it into the chunk. No noise input: the graph is
    deterministic, a plain chunked policy for the runtime (DSRL's deployable policy)."""

    noise_shape: tuple[int, ...] | None = None

    def __init__(self, sampler: DeployablePolicy, noise_actor: DeployablePolicy) -> None:
        super().__init__()
        if sampler.noise_shape is None:
            raise BaseError("the base of a noise-steering run has no noise input")
        size = int(torch.tensor(sampler.noise_shape).prod())
        if noise_actor.spec.action.dim != size:
            raise BaseError(f"the noise actor chooses {noise_actor.spec.action.dim} values, the sampler takes {size}")
        self.spec: PolicySpec = sampler.spec
        self.obs_history, self.chunk_size = sampler.obs_history, sampler.chunk_size
        self.sampler = as_module(sampler)
        self.noise_actor = as_module(noise_actor)
        self._noise_shape = tuple(int(d) for d in sampler.noise_shape)
        for p in self.sampler.parameters():
            p.requires_grad_(False)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            raise ValueError("NoiseSteeredPolicy chooses its own noise and takes none")
        chosen = self.noise_actor(obs).reshape(-1, *self._noise_shape)
        out: torch.Tensor = self.sampler(obs, chosen)
        return out


def compose_with_recorded_base(
    residual: DeployablePolicy, recorded: dict[str, Any], backend: str = ""
) -> DeployablePolicy:
    """The composite of a run's policy and its recorded base (`config.json["base"]`): base + residual
    (`CompositePolicy`) for a residual run, noise actor + sampler (`NoiseSteeredPolicy`) for a DSRL run.

    Raises:
        BaseError: the base is not a training run (the reason is in the message), its weights changed since
            the run recorded them, or it is not a plain policy.

    `backend` is the engine the run trained in: a base trained in the other engine (sim-to-sim fine-tuning) gives
    a composite whose robot interface names the run's engine, where it was fine-tuned and evaluated.
    """
    from robot_rl.train.from_run import load_run_policy

    kind, ref = recorded.get("kind"), str(recorded.get("ref", ""))
    if kind == "expert":
        raise BaseError("a run on a scripted-expert base cannot be exported: the expert is simulator-side code")
    if kind != "run":
        raise BaseError(
            f"a run on a {kind} base does not compose into one graph: export it (`robot-rl export RUN --out DIR`; a "
            "residual deploys as a bundle on its base bundle) and load the bundle"
        )
    base_run = load_run_policy(Path(ref))
    check_same_base(recorded, run_identity(base_run.checkpoint))
    composite: DeployablePolicy
    if recorded.get("view") == "noise":
        composite = NoiseSteeredPolicy(base_run.policy, residual)
    else:
        composite = CompositePolicy(base_run.policy, residual)
    robot = composite.spec.robot
    if backend and robot is not None and robot.backend != backend:
        # fine-tuned in another engine than the base (sim-to-sim): the composite belongs to the run's engine
        composite.spec = dataclasses.replace(composite.spec, robot=dataclasses.replace(robot, backend=backend))
    composite.eval()
    return composite
