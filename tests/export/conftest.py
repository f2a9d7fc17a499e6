"""Fixtures for the export tests: tiny hand-built TanhPolicy instances and one shared bundle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.nets.normalizer import ObsNormalizer
from robot_rl.nets.policy import TanhPolicy

PolicyFactory = Callable[..., TanhPolicy]


@pytest.fixture(scope="session")
def spec() -> PolicySpec:
    """Three named observation entries (dim 8) and asymmetric, named action bounds."""
    return PolicySpec(
        observation=ObservationSpec(keys=("joint_pos", "joint_vel", "goal"), shapes=((3,), (3,), (2,))),
        action=ActionSpec(low=(-1.0, -0.5, -2.0), high=(1.0, 1.5, 0.5), names=("hip", "knee", "ankle"), units="rad"),
        control_hz=50.0,
        env_id="Toy-v0",
    )


def _build_policy(
    spec: PolicySpec,
    hidden: Sequence[int] = (32, 32),
    normalize: bool = True,
    seed: int = 0,
    out_gain: float = 1.0,
) -> TanhPolicy:
    torch.manual_seed(seed)
    dim = spec.observation.dim
    layers: list[nn.Module] = []
    prev = dim
    for width in hidden:
        layers += [nn.Linear(prev, width), nn.ReLU()]
        prev = width
    last = nn.Linear(prev, spec.action.dim)
    with torch.no_grad():
        last.weight.mul_(out_gain)
    layers.append(last)
    normalizer = ObsNormalizer(dim, enabled=normalize)
    if normalize:
        normalizer.mean.copy_(torch.linspace(-1.0, 2.0, dim))
        normalizer.var.copy_(torch.linspace(0.25, 4.0, dim))
        normalizer.count.fill_(1000.0)
    return TanhPolicy(spec, normalizer, nn.Sequential(*layers))


@pytest.fixture(scope="session")
def make_policy(spec: PolicySpec) -> PolicyFactory:
    """Factory: `make_policy(spec=..., hidden=..., normalize=..., seed=..., out_gain=...)`."""

    def factory(**kwargs: Any) -> TanhPolicy:
        kwargs.setdefault("spec", spec)
        return _build_policy(**kwargs)

    return factory


@pytest.fixture(scope="session")
def policy(make_policy: PolicyFactory) -> TanhPolicy:
    """The policy exported into the shared bundle (eval mode)."""
    return make_policy().eval()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, policy: TanhPolicy) -> Path:
    """One bundle exported with the default parity settings, shared read-only by the tests."""
    from robot_rl.export.onnx_export import export_policy

    out = tmp_path_factory.mktemp("bundles") / "policy"
    export_policy(policy, out, training_config={"algo": "sac", "lr": 3e-4}, extra={"step": 1000})
    return out
