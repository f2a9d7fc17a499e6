"""Frozen base policies: the policy a residual learner (or noise-space steering) builds on, never trained.

Any deployable policy can be the base, behind one small interface (`FrozenBase`):

- a verified bundle, run by `OnnxPolicy` (its chunk queue, observation history and seeded sampler noise included),
- a finished training run of any registered algorithm (its latest valid checkpoint, through `PolicyActor`),
- the env's scripted expert (`env.unwrapped.make_expert()`: the suite's and Meta-World's).

A base proposes one **normalized** action in [-1, 1] per control step, in the env's action normalization (the
spec's affine map), and is stateful the way the policy is: `reset()` at every episode start, then one `propose`
per step, in order (a chunked base executes its chunk across those calls). Its `identity` names exactly which
policy it is (a bundle's ONNX sha256, a checkpoint file's sha256, the expert's env id), so a run can record it and
refuse to resume on top of a different base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from robot_rl.core.fileio import sha256_file
from robot_rl.core.specs import PolicySpec

F32 = npt.NDArray[np.float32]

EXPERT = "expert"
"""The base reference that means "the env's scripted expert"."""


class BaseError(ValueError):
    """A base reference that cannot be loaded, or a base that does not fit the env."""


@runtime_checkable
class FrozenBase(Protocol):
    """A frozen policy proposing one normalized action per control step (see the module docstring)."""

    identity: str
    """What exactly this base is: `bundle:sha256:<onnx sha256>`, `run:sha256:<model.safetensors sha256>` or
    `expert:<env id>`. Recorded by a run that trains on top of it and compared on resume."""
    kind: str
    """`bundle`, `run` or `expert`."""
    action_dim: int
    """A: the length of a proposal."""

    def reset(self) -> None:
        """A new episode starts: forget the observation history, the queued chunk and any expert phase."""
        ...

    def propose(self, obs: F32) -> F32:
        """The base's normalized action `[A]` float32 in [-1, 1] for raw observation `obs [O]` (one control step)."""
        ...


def _clip_finite(action: npt.ArrayLike, label: str) -> F32:
    """`action` as float32 clipped to [-1, 1]; a non-finite proposal is an error, never clipped into range."""
    out = np.asarray(action, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(out)):
        raise RuntimeError(f"{label} proposed a non-finite action {out.tolist()}")
    clipped: F32 = np.clip(out, -1.0, 1.0)
    return clipped


class BundleBase:
    """A verified bundle as the base (`OnnxPolicy`: physical actions, mapped back to normalized by its spec)."""

    kind = "bundle"

    def __init__(self, bundle_dir: Path, seed: int = 0) -> None:
        from robot_rl.export.runtime import OnnxPolicy

        self.policy = OnnxPolicy.load(bundle_dir, seed=seed)  # refuses a tampered or unverifiable bundle
        self.spec: PolicySpec = self.policy.spec
        self.action_dim = self.spec.action.dim
        self.identity = bundle_identity(self.policy.manifest.onnx_sha256)
        self._label = f"base bundle {bundle_dir}"

    def reset(self) -> None:
        self.policy.reset()

    def propose(self, obs: F32) -> F32:
        return _clip_finite(self.spec.action.to_normalized(self.policy.act(obs)), self._label)


class RunBase:
    """A finished training run as the base: its deployable policy from the latest valid checkpoint."""

    kind = "run"

    def __init__(self, run_dir: Path, seed: int = 0) -> None:
        from robot_rl.train.from_run import load_run_policy
        from robot_rl.train.policy_actor import PolicyActor

        run = load_run_policy(run_dir)
        self.spec = run.policy.spec
        self.action_dim = self.spec.action.dim
        self.actor = PolicyActor(run.policy, seed=seed)
        self.identity = run_identity(run.checkpoint)
        self._label = f"base run {run_dir}"

    def reset(self) -> None:
        self.actor.reset()

    def propose(self, obs: F32) -> F32:
        physical = self.actor.act(np.asarray(obs, dtype=np.float32))
        return _clip_finite(self.spec.action.to_normalized(physical), self._label)


def bundle_identity(onnx_sha256: str) -> str:
    """The identity of a bundle base: its ONNX file's sha256 (what the bundle's manifest pins)."""
    return f"bundle:sha256:{onnx_sha256}"


def run_identity(checkpoint: Path) -> str:
    """The identity of a training-run base: the sha256 of its checkpoint's weights."""
    return f"run:sha256:{sha256_file(_weights_file(checkpoint))}"


def _weights_file(checkpoint: Path) -> Path:
    """The weights of a checkpoint directory (`model.safetensors`; `robot_rl.train.checkpoint`'s layout)."""
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        raise BaseError(f"checkpoint {checkpoint} has no model.safetensors to identify the base by")
    return weights


class ExpertBase:
    """The env's scripted expert as the base (the suite's and Meta-World's experts propose normalized actions)."""

    kind = "expert"

    def __init__(self, env: gym.Env[Any, Any], env_id: str) -> None:
        make = getattr(env.unwrapped, "make_expert", None)
        if not callable(make):
            raise BaseError(f"{env_id} has no scripted expert to use as the base")
        self.expert: Any = make()
        shape = env.action_space.shape
        self.action_dim = int(np.prod(shape)) if shape else 0
        self.identity = f"expert:{env_id}"
        self._label = f"the scripted expert of {env_id}"

    def reset(self) -> None:
        self.expert.reset()

    def propose(self, obs: F32) -> F32:
        return _clip_finite(self.expert.act(obs), self._label)


@dataclass(frozen=True)
class BaseRef:
    """A parsed base reference (what `--base` takes)."""

    kind: str
    """`bundle`, `run` or `expert`."""
    path: Path | None
    """The bundle or run directory (None for the expert)."""


def parse_base_ref(ref: str) -> BaseRef:
    """`expert`, a bundle directory (holds `manifest.json`) or a run directory (holds `config.json`).

    Raises:
        BaseError: an empty reference, a missing path, or a directory that is neither.
    """
    if not ref:
        raise BaseError("no base given: pass a bundle directory, a run directory or 'expert'")
    if ref == EXPERT:
        return BaseRef(EXPERT, None)
    path = Path(ref)
    if not path.exists():
        raise BaseError(f"base {ref!r} does not exist (a bundle directory, a run directory or 'expert')")
    if (path / "manifest.json").is_file():
        return BaseRef("bundle", path)
    if (path / "config.json").is_file():
        return BaseRef("run", path)
    raise BaseError(
        f"base {ref!r} is neither a bundle (no manifest.json) nor a training run (no config.json); "
        "export a run with `robot-rl export`, or pass the run directory itself"
    )


def load_base(ref: str, env: gym.Env[Any, Any], env_id: str, seed: int = 0) -> FrozenBase:
    """Load the base `ref` (see `parse_base_ref`) for `env`, checked against the env's sizes.

    `seed` seeds a sampler base's noise (bundle or run), so a training run is reproducible.

    Raises:
        BaseError: a bad reference, or a base whose observation or action size differs from the env's.
    """
    parsed = parse_base_ref(ref)
    base: FrozenBase
    if parsed.kind == EXPERT:
        base = ExpertBase(env, env_id)
    elif parsed.kind == "bundle":
        assert parsed.path is not None
        base = BundleBase(parsed.path, seed)
    else:
        assert parsed.path is not None
        base = RunBase(parsed.path, seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    obs_dim = int(np.prod(obs_shape)) if obs_shape else 0
    act_dim = int(np.prod(act_shape)) if act_shape else 0
    _check_sizes(base, ref, obs_dim, act_dim, env_id)
    return base


def load_base_for_spec(ref: str, spec: PolicySpec, seed: int = 0) -> FrozenBase:
    """Load a bundle or run base `ref` without an env (to replay recorded episodes), checked against `spec`.

    Raises:
        BaseError: a bad reference, sizes that differ from `spec`'s, or `expert`: a scripted expert reads the
            simulator's state, not the observation, so it cannot replay a recording.
    """
    parsed = parse_base_ref(ref)
    if parsed.kind == EXPERT or parsed.path is None:
        raise BaseError(
            "an expert base reads the simulator's state, not the observation, so it cannot propose actions for "
            "recorded episodes: train on online data, or use a bundle or run as the base"
        )
    base: FrozenBase = BundleBase(parsed.path, seed) if parsed.kind == "bundle" else RunBase(parsed.path, seed)
    _check_sizes(base, ref, spec.observation.dim, spec.action.dim, spec.env_id or "the dataset")
    return base


def _check_sizes(base: FrozenBase, ref: str, obs_dim: int, act_dim: int, where: str) -> None:
    spec: PolicySpec | None = getattr(base, "spec", None)
    if spec is not None and spec.observation.dim != obs_dim:
        raise BaseError(f"base {ref!r} takes {spec.observation.dim} observations, {where} gives {obs_dim}")
    if base.action_dim != act_dim:
        raise BaseError(f"base {ref!r} proposes {base.action_dim} actions, {where} takes {act_dim}")


def base_record(base: FrozenBase, ref: str) -> dict[str, Any]:
    """What a run records about its base (config.json): how the learner sees it (`view`: the base's proposal
    appended to the observation), the reference, its kind and identity."""
    return {"view": "proposal", "ref": ref, "kind": base.kind, "identity": base.identity}


def check_same_base(recorded: dict[str, Any], identity: str) -> None:
    """Refuse a base whose `identity` differs from the one a run recorded (a resume on top of another policy).

    Raises:
        BaseError: the identities differ (both are in the message).
    """
    if recorded.get("identity") != identity:
        raise BaseError(
            "the base differs from the one this run was trained on: recorded "
            f"{json.dumps(recorded.get('identity'))}, now {json.dumps(identity)} (ref {recorded.get('ref')!r})"
        )
