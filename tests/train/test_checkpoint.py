"""Checkpoint files: round trip, `latest` pointer, integrity checks, refusal of non-finite weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from robot_rl.train import checkpoint as ckpt


def _model(scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "actor/w": torch.randn(4, 3, generator=g) * scale,
        "optim/actor/0/step": torch.tensor(5.0),
        "normalizer/count": torch.tensor(3.0, dtype=torch.float64),
    }


def _data() -> dict[str, torch.Tensor]:
    return {"buffer/obs": torch.arange(12, dtype=torch.float32).reshape(4, 3), "rng/torch": torch.get_rng_state()}


def _state() -> dict:
    return {"episode": 2, "rng": {"sample": {"state": 2**100}}, "config": {"algo": "sac"}}


def test_round_trip_and_latest_pointer(tmp_path: Path) -> None:
    d = tmp_path / "checkpoints"
    assert ckpt.latest_checkpoint(d) is None
    first = ckpt.save_checkpoint(d, 100, _model(), _data(), _state())
    assert first.name == "step_000000100" and ckpt.latest_checkpoint(d) == first
    second = ckpt.save_checkpoint(d, 250, _model(2.0), _data(), _state())
    assert ckpt.latest_checkpoint(d) == second
    loaded = ckpt.load_checkpoint(second)
    for k, v in _model(2.0).items():
        assert torch.equal(loaded.model[k], v) and loaded.model[k].dtype == v.dtype
    for k, v in _data().items():
        assert torch.equal(loaded.data[k], v)
    assert loaded.state["step"] == 250
    assert loaded.state["episode"] == 2 and loaded.state["rng"]["sample"]["state"] == 2**100
    assert not [p.name for p in d.iterdir() if p.name.startswith(".tmp")]  # no temp leftovers


@pytest.mark.parametrize("file", ["model.safetensors", "data.safetensors"])
def test_flipped_byte_is_detected(tmp_path: Path, file: str) -> None:
    path = ckpt.save_checkpoint(tmp_path, 1, _model(), _data(), _state())
    raw = bytearray((path / file).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (path / file).write_bytes(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match="sha256"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_save_refuses_non_finite_tensors_and_keeps_the_last_valid_one(tmp_path: Path, bad: float) -> None:
    good = ckpt.save_checkpoint(tmp_path, 10, _model(), _data(), _state())
    model = _model()
    model["actor/w"][1, 2] = bad
    with pytest.raises(ckpt.CheckpointError, match="actor/w"):
        ckpt.save_checkpoint(tmp_path, 20, model, _data(), _state())
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_000000010"]


def test_integer_tensors_are_not_mistaken_for_non_finite(tmp_path: Path) -> None:
    model = {"critic/steps": torch.tensor(7, dtype=torch.long)}
    loaded = ckpt.load_checkpoint(ckpt.save_checkpoint(tmp_path, 1, model, {}, {}))
    assert loaded.model["critic/steps"].item() == 7


def test_incomplete_or_corrupt_checkpoints_are_refused(tmp_path: Path) -> None:
    path = ckpt.save_checkpoint(tmp_path, 1, _model(), _data(), _state())
    state_file = path / "state.json"
    state_text = state_file.read_text()

    state_file.unlink()  # a crash before state.json was written
    with pytest.raises(ckpt.CheckpointError, match=r"no state\.json"):
        ckpt.load_checkpoint(path)

    state_file.write_text(state_text[: len(state_text) // 2])
    with pytest.raises(ckpt.CheckpointError, match="not valid JSON"):
        ckpt.load_checkpoint(path)

    state = json.loads(state_text)
    state["format_version"] = 999
    state_file.write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match="format"):
        ckpt.load_checkpoint(path)

    with pytest.raises(ckpt.CheckpointError, match=r"no state\.json"):
        ckpt.load_checkpoint(tmp_path / "empty")


def test_checkpoint_with_non_finite_weights_on_disk_is_refused(tmp_path: Path) -> None:
    """A file written by something else (hash matching, weights NaN) still never loads."""
    from safetensors.torch import save_file

    path = ckpt.save_checkpoint(tmp_path, 1, _model(), _data(), _state())
    model = _model()
    model["actor/w"][0, 0] = math.nan
    save_file(model, str(path / "model.safetensors"))
    state = json.loads((path / "state.json").read_text())
    state["sha256"]["model.safetensors"] = ckpt.sha256_file(path / "model.safetensors")
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match="non-finite"):
        ckpt.load_checkpoint(path)


def test_latest_pointing_to_a_missing_directory_means_no_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "latest").write_text("step_000000042\n")
    assert ckpt.latest_checkpoint(tmp_path) is None


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    ckpt.atomic_write_text(target, "old")
    ckpt.atomic_write_text(target, "new contents")
    assert target.read_text() == "new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
