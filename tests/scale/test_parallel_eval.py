"""`robot-rl eval --ray`: the seeded episodes (and robustness cells) split over Ray tasks give exactly the serial
result; without Ray the flag is a clear error.

One local Ray (2 CPUs, loopback) serves the module; the bundle is the cart-pole LQR expert (tests/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from robot_rl.cli import eval_bundle, main
from robot_rl.scale.parallel_eval import eval_bundle_ray, split_contiguous
from robot_rl.scale.ray_env import init_ray, shutdown_ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    temp = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # unix socket paths under it must stay short
    ray = init_ray(num_cpus=2, temp_dir=temp)
    try:
        yield ray
    finally:
        shutdown_ray()
        shutil.rmtree(temp, ignore_errors=True)


def test_split_contiguous_covers_every_episode_once_in_order() -> None:
    assert split_contiguous(6, 4) == [(0, 2), (2, 2), (4, 1), (5, 1)]
    assert split_contiguous(2, 8) == [(0, 1), (1, 1)]
    assert split_contiguous(5, 1) == [(0, 5)]


def test_ray_eval_equals_the_serial_eval(
    local_ray: Any, cartpole_lqr_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serial, env_id = eval_bundle(cartpole_lqr_bundle, "", 6, 3)
    parallel, ray_env_id = eval_bundle_ray(cartpole_lqr_bundle, "", 6, 3, workers=4)  # shares of 2, 2, 1, 1
    assert ray_env_id == env_id
    assert parallel == serial  # every field, in episode order
    assert len(set(serial.returns)) > 1  # the episodes really differ: a mix-up of seeds would show

    argv = ["eval", "--policy", str(cartpole_lqr_bundle), "--episodes", "6", "--seed", "3"]
    assert main(argv) == 0
    serial_line = capsys.readouterr().out
    assert main([*argv, "--ray", "--ray-workers", "2"]) == 0
    assert capsys.readouterr().out == serial_line


def test_ray_robustness_equals_the_serial_report(local_ray: Any, cartpole_lqr_bundle: Path, tmp_path: Path) -> None:
    argv = ["eval", "--policy", str(cartpole_lqr_bundle), "--robustness", "--perturb", "mass:1.5", "--episodes", "2"]
    argv += ["--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "serial.json")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray.json"), "--ray", "--ray-workers", "2"]) == 0
    serial = json.loads((tmp_path / "serial.json").read_text())
    parallel = json.loads((tmp_path / "ray.json").read_text())
    assert [(r["kind"], r["level"]) for r in serial["rows"]] == [("mass", 1.0), ("mass", 1.5)]
    assert parallel == serial


def test_ray_flags_without_ray_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cartpole_lqr_bundle: Path
) -> None:
    assert main(["eval", "--policy", str(cartpole_lqr_bundle), "--ray-workers", "2"]) == 2
    assert "belong to --ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    for extra in ([], ["--robustness", "--no-progress"]):
        assert main(["eval", "--policy", str(cartpole_lqr_bundle), "--episodes", "2", "--ray", *extra]) == 2
        assert 'pip install "robot-rl[scale]"' in capsys.readouterr().err
