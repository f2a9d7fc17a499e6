"""An algorithm registered outside robot_rl trains, checkpoints, resumes, exports and evaluates through the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from robot_rl.algos import registry
from robot_rl.cli import main

PLUGIN = "tests.algos.toy_plugin"


def toy_args(out_dir: Path, run_name: str, total_steps: int) -> list[str]:
    return [
        "--total-steps", str(total_steps),
        "--learning-starts", "50",
        "--eval-every", "0",
        "--eval-episodes", "1",
        "--log-every", "100",
        "--checkpoint-every", "200",
        "--no-tensorboard",
        "--no-progress",
        "--torch-threads", "1",
        "--out-dir", str(out_dir),
        "--run-name", run_name,
    ]  # fmt: skip


def _forget_toy() -> None:
    """Make the process forget the plug-in, as a fresh `robot-rl` process would not know it."""
    registry._REGISTRY.pop("toy", None)
    sys.modules.pop(PLUGIN, None)


@pytest.fixture(autouse=True)
def no_toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the toy registered (and discovery re-runs for the env var / entry points)."""
    monkeypatch.delenv(registry.PLUGINS_ENV_VAR, raising=False)
    registry.get_algorithm("sac")  # the built-ins are registered once per process
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_loaded", {"builtins"})  # env var and entry points are looked at again
    _forget_toy()
    yield
    _forget_toy()


def test_plugin_trains_resumes_exports_and_evaluates_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "toy" not in registry.registered()
    assert main(["--plugin", PLUGIN, "train", "toy", *toy_args(tmp_path, "toy", 300)]) == 0
    run = tmp_path / "toy"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["algo"] == "toy" and cfg["algo_module"] == PLUGIN
    assert cfg["algo_config"] == {"toy_lr": 0.01, "batch_size": 16, "toy_noise": 0.3}
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000000300"
    losses = [
        r["loss/toy"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss/toy" in r
    ]
    assert losses and all(np.isfinite(losses))

    assert main(["--plugin", PLUGIN, "train", "toy", *toy_args(tmp_path, "toy", 400), "--resume"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 400
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000000400"
    capsys.readouterr()

    # Export in a process that never heard of the plug-in: config.json's algo_module brings it back.
    _forget_toy()
    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--out", str(bundle), "--parity-samples", "200"]) == 0
    assert "toy" in registry._REGISTRY and PLUGIN in sys.modules
    assert (bundle / "policy.onnx").exists()

    # The bundle is the trained toy: its ONNX output equals the checkpoint's torch policy (physical units).
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.from_run import load_run_policy

    obs = np.random.default_rng(0).uniform([-1, -1, -8], [1, 1, 8], size=(32, 3)).astype(np.float32)
    with torch.inference_mode():
        expected = load_run_policy(run).policy(torch.from_numpy(obs)).numpy()
    onnx_policy = OnnxPolicy.load(bundle)
    got = np.stack([onnx_policy.act(o) for o in obs])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected).max() <= 2.0 and np.ptp(expected) > 0  # physical torque range, not a constant

    assert main(["eval", "--policy", str(bundle), "--episodes", "1"]) == 0
    assert "return" in capsys.readouterr().out


def test_plugin_from_the_environment_variable_with_a_recipe_and_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(registry.PLUGINS_ENV_VAR, f" {PLUGIN} ,")
    assert main(["train", "--help"]) == 0
    listing = capsys.readouterr().out
    assert "toy" in listing and "Toy linear actor" in listing and "--recipe default|calm" in listing
    for name in ("sac", "td3", "bc"):
        assert f"  {name} " in listing

    with pytest.raises(SystemExit) as exc:
        main(["train", "toy", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--toy-lr" in help_text and "Learning rate of the linear actor" in help_text  # field docstrings
    assert "--total-steps" in help_text and "Recipes" in help_text

    assert main(["train", "toy", "--recipe", "calm", *toy_args(tmp_path, "calm", 120)]) == 0
    assert json.loads((tmp_path / "calm" / "config.json").read_text())["algo_config"]["toy_noise"] == 0.05


def test_plugin_from_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="toy", value=PLUGIN, group=registry.ENTRY_POINT_GROUP)

    def fake_entry_points(group: str) -> list[EntryPoint]:
        return [ep] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    entry = registry.get_algorithm("toy")
    assert entry.module == PLUGIN and entry.algo_cls.__name__ == "ToyLinear"
    assert list(entry.presets) == ["default", "calm"] and entry.default_config().toy_noise == 0.3


def test_unknown_algorithm_and_bad_plugins_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "toy"]) == 2
    err = capsys.readouterr().err
    assert "unknown algorithm 'toy'" in err and "'bc'" in err and "'sac'" in err and "'td3'" in err
    assert "--plugin" in err

    assert main(["--plugin", "tests.algos.no_such_module", "train", "sac"]) == 2
    assert "cannot import algorithm plug-in module 'tests.algos.no_such_module'" in capsys.readouterr().err
    assert main(["--plugin"]) == 2
    assert "--plugin needs a module name" in capsys.readouterr().err


def test_a_taken_name_cannot_be_reused_by_another_algorithm() -> None:
    from robot_rl.algos.td3 import TD3Config

    class NotSAC:
        def __init__(self, spec: Any, cfg: Any) -> None:
            pass

    with pytest.raises(ValueError, match=r"'sac' is taken by robot_rl\.algos\.sac\.algorithm\.SAC"):
        registry.register_algorithm("sac", TD3Config, NotSAC)
    with pytest.raises(ValueError, match="plain word"):
        registry.register_algorithm("two words", TD3Config, NotSAC)
    with pytest.raises(TypeError, match="dataclass"):
        registry.register_algorithm("fine", dict, NotSAC)


@dataclass(frozen=True)
class ClashingConfig:
    """A config whose field shadows a train flag (flags are flat)."""

    seed: int = 0
    """Clashes with `--seed`."""


def test_a_config_field_named_like_a_train_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    registry.register_algorithm("clashy", ClashingConfig, object)
    assert main(["train", "clashy"]) == 2
    assert "clashy: config fields ['seed'] clash with `robot-rl train` flags" in capsys.readouterr().err
