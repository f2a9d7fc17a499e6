"""`--device`: the name resolves or fails clearly, the CPU path is untouched, and every registered learner keeps
every tensor of its gradient steps on the device it was placed on.

CI has no GPU, so the placement check uses PyTorch's `meta` device, which carries shapes and devices but no data:
an update that mixed a host tensor into device work (a `torch.from_numpy` in the hot path, a schedule built on the
CPU) fails there exactly as it would on CUDA. Reading a value back (`float(loss)`) is impossible on `meta`, so those
reads return 1 in this test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_rl.algos import registry
from robot_rl.algos.registry import make_algorithm
from robot_rl.algos.sac import SACConfig
from robot_rl.core.types import Batch
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train.batches import requested_layout, sample_batches, torch_batches
from robot_rl.train.config import TrainConfig
from robot_rl.train.device import OnDevice, batch_to, place_algorithm, resolve_device
from robot_rl.train.envs import make_env, policy_spec_for
from robot_rl.train.loop import train


def test_cpu_and_auto_resolve_here() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_auto_takes_a_gpu_where_torch_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"sees no CUDA device.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="sees no CUDA device"):
        resolve_device("cuda:0")


def test_a_missing_device_index_and_unknown_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="1 CUDA device"):
        resolve_device("cuda:3")
    for bad in ("gpu", "tpu", "cuda:x", ""):
        with pytest.raises(ValueError, match="choose auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(device=" ")


def test_the_cpu_path_is_the_learner_itself() -> None:
    env = make_env("Pendulum-v1")
    spec = policy_spec_for(env, "Pendulum-v1")
    env.close()
    algo = place_algorithm(lambda: make_algorithm("sac", spec, SACConfig()), torch.device("cpu"))
    assert not isinstance(algo, OnDevice)  # no proxy, no torch function mode: CPU runs are as before


def test_train_refuses_a_missing_gpu_before_writing_anything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = TrainConfig(env="Pendulum-v1", total_steps=10, out_dir=tmp_path, device="cuda", progress=False)
    with pytest.raises(ValueError, match="sees no CUDA device"):
        train(cfg, "sac", SACConfig())
    assert list(tmp_path.iterdir()) == []


def test_batch_to_moves_every_present_field() -> None:
    b = Batch(*(torch.zeros(2) for _ in range(6)), discount=torch.ones(2))
    moved = batch_to(b, torch.device("meta"))
    assert all(t is None or t.is_meta for t in moved)
    assert moved.discount is not None and moved.action_chunk is None


@pytest.fixture
def meta_reads_as_zero(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Host reads of meta tensors (statistics, finiteness checks) give 1 / True instead of raising; 1, not 0, so
    that a count read back takes the branches that merge running statistics."""
    item, to_float, to_bool = torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__bool__
    monkeypatch.setattr(torch.Tensor, "item", lambda t: 1.0 if t.is_meta else item(t))
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: 1.0 if t.is_meta else to_float(t))
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: True if t.is_meta else to_bool(t))
    yield


@pytest.mark.usefixtures("meta_reads_as_zero")
@pytest.mark.parametrize("name", sorted(registry.registered()))
def test_every_learner_trains_entirely_on_its_device(name: str) -> None:
    env = make_env("Pendulum-v1")
    spec = policy_spec_for(env, "Pendulum-v1")
    env.close()
    entry = registry.get_algorithm(name)
    cfg = entry.default_config()
    if hasattr(cfg, "batch_size"):
        cfg = dataclasses.replace(cfg, batch_size=8)
    algo = place_algorithm(lambda: make_algorithm(name, spec, cfg), torch.device("meta"))
    assert isinstance(algo, OnDevice)
    born = {k for k, t in algo.algo.state_tensors().items() if not t.is_meta}
    assert born == set(), f"{name} built these tensors off the device: {sorted(born)}"

    rng = np.random.default_rng(0)
    o, a = spec.observation.dim, spec.action.dim
    buffer = ReplayBuffer(400, o, a)
    for i in range(300):
        obs, nxt = rng.normal(size=o).astype(np.float32), rng.normal(size=o).astype(np.float32)
        buffer.add(obs, rng.uniform(-1, 1, a).astype(np.float32), 0.0, nxt, False, i % 50 == 49)
    algo.observe(np.asarray(buffer.obs[:300], np.float32))
    observe_actions = getattr(algo, "observe_actions", None)
    if observe_actions is not None:
        observe_actions(np.asarray(buffer.action[:300], np.float32))
    stats = algo.update(torch_batches(sample_batches(buffer, 8, rng, requested_layout(algo))))
    assert stats.values, f"{name} reported no statistics"
    # Adam keeps its step counters on the host unless it runs fused (as on CUDA): torch's choice, not ours.
    off = {k for k, t in algo.algo.state_tensors().items() if not t.is_meta and not k.endswith("/step")}
    assert off == set(), f"{name} moved these tensors off the device while training: {sorted(off)}"
