"""`robot-rl episodes DIR [--recover]`: list recorded episodes, rebuild the one a crashed writer left unfinished."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.data.episode_record import RecorderConfig, StepRecord
from robot_rl.data.mcap_writer import EpisodeRecorder


def _step(i: int, intervention: bool) -> StepRecord:
    return StepRecord(
        step=i,
        stamp_ns=1_000_000_000 + i * 10_000_000,
        observation=np.full(3, float(i)),
        policy_action=np.zeros(2),
        executed_action=np.zeros(2),
        reward_terms={"rlif": 0.0},
        intervention=intervention,
    )


def test_list_and_recover(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = EpisodeRecorder(RecorderConfig(directory=tmp_path, flush_period_s=0.05))
    rec.start_episode({"robot": "test"})
    for i in range(20):
        rec.record_step(_step(i, 5 <= i < 8))
    rec.end_episode(terminated=False, truncated=True, extra={"is_success": "true"})
    rec.start_episode({"robot": "test"})
    for i in range(30):
        rec.record_step(_step(i, False))
    time.sleep(0.5)  # past a flush period: these steps are on disk
    partial = next(tmp_path.glob("*.partial"))
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / partial.name).write_bytes(partial.read_bytes())  # the file as a killed writer leaves it
    (crashed / "episode_000000.mcap").write_bytes((tmp_path / "episode_000000.mcap").read_bytes())
    rec.close()

    assert main(["episodes", str(crashed)]) == 0
    out = capsys.readouterr().out
    assert "episode_000000.mcap: 20 steps, success true, 3 intervention steps" in out
    assert "unfinished" in out and "--recover" in out
    assert main(["episodes", str(crashed), "--recover"]) == 0
    out = capsys.readouterr().out
    assert "recovered episode_000001.mcap.partial -> episode_000001.mcap" in out
    assert "episode_000001.mcap: 30 steps" in out and "(recovered)" in out
    assert not list(crashed.glob("*.partial"))
    assert main(["episodes", str(tmp_path / "nope")]) == 2
