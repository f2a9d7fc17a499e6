"""LeRobotDataset v3.0 export: real episodes (scripted expert, MCAP recordings, a Minari dataset) → v3 folder → read
back with pyarrow alone, value for value; the independent checker passes it and catches corrupted copies."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_rl.cli import main as robot_rl_main
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.data.datasets import Episode, write_dataset
from robot_rl.data.datasets.cli import main as dataset_main
from robot_rl.data.datasets.lerobot_v3 import LeRobotV3Config, write_lerobot_v3
from robot_rl.data.datasets.lerobot_v3_check import LeRobotV3Error, assert_lerobot_v3, check_lerobot_v3
from robot_rl.data.datasets.sources.expert import expert_episodes
from robot_rl.data.datasets.sources.mcap import mcap_episodes
from robot_rl.data.episode_record import RecorderConfig, StepRecord
from robot_rl.data.mcap_writer import EpisodeRecorder

# ------------------------------------------------------------------------------------------- pyarrow reading


def _info(root: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((root / "meta" / "info.json").read_text())
    return info


def _episode_rows(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(
        root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    ).to_pylist()
    return rows


def _frames(root: Path) -> pa.Table:
    """Every frame, in global `index` order, read through info.json's `data_path` and the episode metadata."""
    files = dict.fromkeys((r["data/chunk_index"], r["data/file_index"]) for r in _episode_rows(root))
    template = _info(root)["data_path"]
    return pa.concat_tables(
        [pq.read_table(root / template.format(chunk_index=c, file_index=f)) for c, f in files]
    ).sort_by("index")


def _col(table: pa.Table, key: str) -> np.ndarray:
    return np.array(table[key].to_pylist())


def _assert_frames_match(root: Path, episodes: list[Episode]) -> None:
    """Frame t of episode i is transition t of `episodes[i]`: states, executed and policy actions, reward, flags."""
    frames = _frames(root)
    rows = _episode_rows(root)
    assert [r["length"] for r in rows] == [len(e) for e in episodes]
    for row, ep in zip(rows, episodes, strict=True):
        part = frames.slice(row["dataset_from_index"], row["length"])
        assert set(_col(part, "episode_index")) == {row["episode_index"]}
        t = len(ep)
        np.testing.assert_array_equal(_col(part, "observation.state"), ep.observations[:-1])
        np.testing.assert_array_equal(_col(part, "next.observation.state"), ep.observations[1:])
        np.testing.assert_array_equal(_col(part, "action"), ep.actions.astype(np.float32))  # executed, physical
        np.testing.assert_array_equal(_col(part, "robot_rl.policy_action"), ep.policy_actions.astype(np.float32))
        np.testing.assert_array_equal(_col(part, "next.reward"), ep.rewards.astype(np.float32))
        end = [False] * (t - 1) + [True]
        np.testing.assert_array_equal(_col(part, "next.done"), end)
        np.testing.assert_array_equal(_col(part, "next.terminated"), [False] * (t - 1) + [ep.terminated])
        np.testing.assert_array_equal(_col(part, "next.truncated"), [False] * (t - 1) + [ep.truncated])
        np.testing.assert_array_equal(_col(part, "robot_rl.intervention"), ep.intervention)
        np.testing.assert_array_equal(_col(part, "robot_rl.safety_activated"), ep.safety_activated)
        np.testing.assert_array_equal(_col(part, "robot_rl.cost"), ep.cost.astype(np.float32))
        np.testing.assert_array_equal(_col(part, "frame_index"), np.arange(t))
        assert row["robot_rl/success"] == ep.success and row["robot_rl/source"] == ep.source
        assert (row["robot_rl/terminated"], row["robot_rl/truncated"]) == (ep.terminated, ep.truncated)


# ------------------------------------------------------------------------------------------- scripted expert


def test_expert_episodes_round_trip_through_the_v3_layout(tmp_path: Path) -> None:
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 3, seed=0, max_steps=8)
    # A second task on one episode, so the tasks table and task_index are exercised.
    episodes[1] = dataclasses.replace(episodes[1], metadata={**episodes[1].metadata, "task": "reach, slowly"})
    # Tiny files and 2 files per chunk: 3 episodes land in chunk-000/file-000, chunk-000/file-001, chunk-001/file-000.
    config = LeRobotV3Config.from_spec(spec, data_file_size_mb=1e-3, chunks_size=2)
    ticks: list[Episode] = []
    out = write_lerobot_v3(episodes, tmp_path / "reach", config, spec=spec, progress=ticks.append)
    assert len(ticks) == 3
    assert check_lerobot_v3(out) == []
    assert sorted(str(p.relative_to(out)) for p in (out / "data").rglob("*.parquet")) == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "data/chunk-001/file-000.parquet",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["reach"]  # the temporary folder was renamed, nothing left over

    info = _info(out)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["robot_type"] == "panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 24, 2)
    state = info["features"]["observation.state"]
    assert state["dtype"] == "float32" and state["shape"] == [spec.observation.dim]
    assert state["names"][:2] == ["joint_pos.panda_joint1", "joint_pos.panda_joint2"]
    assert info["features"]["action"]["names"] == list(spec.robot.command.joints)  # type: ignore[union-attr]
    assert pq.read_schema(out / "data" / "chunk-000" / "file-000.parquet").field("action").type == pa.list_(
        pa.float32(), spec.action.dim
    )
    _assert_frames_match(out, episodes)

    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pylist()
    assert tasks == [
        {"task_index": 0, "task": "robot_rl/PandaReach-v0"},
        {"task_index": 1, "task": "reach, slowly"},
    ]
    assert [r["tasks"] for r in _episode_rows(out)] == [
        ["robot_rl/PandaReach-v0"],
        ["reach, slowly"],
        ["robot_rl/PandaReach-v0"],
    ]
    assert _col(_frames(out), "task_index").tolist() == [0] * 8 + [1] * 8 + [0] * 8

    # Global stats are those of every frame; per-episode stats sit in the episode metadata.
    stats = json.loads((out / "meta" / "stats.json").read_text())
    actions = np.concatenate([e.actions for e in episodes]).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["min"], actions.min(axis=0))
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(axis=0))
    np.testing.assert_allclose(stats["action"]["std"], actions.std(axis=0))
    np.testing.assert_allclose(stats["action"]["q50"], np.quantile(actions, 0.5, axis=0))
    assert stats["action"]["count"] == [24] and stats["next.reward"]["count"] == [24]
    assert set(stats) == set(info["features"])
    np.testing.assert_allclose(
        _episode_rows(out)[2]["stats/action/max"], episodes[2].actions.astype(np.float32).max(axis=0)
    )

    provenance = json.loads((out / "meta" / "robot_rl.json").read_text())
    assert provenance["action_units"] == "physical" and PolicySpec.from_json(provenance["policy_spec"]) == spec


def test_tasks_table_is_what_pandas_and_lerobot_read(tmp_path: Path) -> None:
    """LeRobot reads meta/tasks.parquet with pandas and looks a task up by the index (pandas is not ours to need)."""
    pd = pytest.importorskip("pandas")
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 1, max_steps=2)
    out = write_lerobot_v3(episodes, tmp_path / "ds", LeRobotV3Config.from_spec(spec))
    tasks = pd.read_parquet(out / "meta" / "tasks.parquet")
    assert tasks.loc["robot_rl/PandaReach-v0"].task_index == 0 and tasks.iloc[0].name == "robot_rl/PandaReach-v0"


# --------------------------------------------------------------------------------------------- MCAP recordings

OBS, ACT = 4, 2
MCAP_SPEC = PolicySpec(
    ObservationSpec.flat(OBS),
    ActionSpec(low=(-0.5, -2.0), high=(0.5, 2.0), names=("shoulder", "elbow"), units="rad/s"),
    control_hz=50.0,
    env_id="sim_arm/reach",
)


def _steps(n: int, *, human: range, safety_at: int, terminated: bool, seed: int) -> list[StepRecord]:
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(n):
        policy = rng.uniform(-0.4, 0.4, ACT)
        executed = rng.uniform(-0.4, 0.4, ACT) if t in human else policy.copy()
        if t == safety_at:
            executed = executed * 0.5
        steps.append(
            StepRecord(
                step=t,
                stamp_ns=t * 20_000_000,
                observation=rng.normal(size=OBS),
                policy_action=policy,
                executed_action=executed,
                reward_terms={"progress": float(rng.normal()), "success": float(t == n - 1)},
                intervention=t in human,
                safety_reasons=("velocity_limit",) if t == safety_at else (),
                terminated=terminated and t == n - 1,
                truncated=not terminated and t == n - 1,
            )
        )
    return steps


def _record(directory: Path, episodes: list[list[StepRecord]]) -> None:
    with EpisodeRecorder(RecorderConfig(directory=directory)) as rec:
        for steps in episodes:
            rec.start_episode({"robot": "sim_arm", "policy_spec": json.dumps(MCAP_SPEC.to_json())})
            for s in steps:
                assert rec.record_step(s)
            rec.end_episode(
                terminated=steps[-1].terminated, truncated=steps[-1].truncated, extra={"is_success": "true"}
            )


def test_mcap_recordings_export_through_the_cli_with_intervention_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec_dir = tmp_path / "episodes"
    _record(
        rec_dir,
        [
            _steps(10, human=range(3, 6), safety_at=7, terminated=True, seed=0),
            _steps(7, human=range(1, 3), safety_at=4, terminated=False, seed=1),
        ],
    )
    out = tmp_path / "recorded-lerobot"
    argv = ["dataset", "lerobot", "--from", str(rec_dir), "--out", str(out), "--no-progress", "--task", "reach the cup"]
    assert robot_rl_main(argv) == 0  # through the `robot-rl` entry point
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out} (LeRobotDataset v3.0): 2 episodes, 16 steps, success rate 1.00")
    assert "5 intervention steps" in printed and "from 2 of 2 files" in printed
    assert_lerobot_v3(out)

    _, episodes, _ = mcap_episodes(rec_dir)  # the same reading the export used
    ep, cut = episodes
    assert ep.terminated and len(ep) == 10 and cut.truncated and len(cut) == 6  # the truncated last tick is dropped
    _assert_frames_match(out, episodes)
    frames = _frames(out)
    # The human's executed action beside the policy's own; the terminal frame is terminated, the cut one truncated.
    assert not np.array_equal(_col(frames, "action")[3:6], _col(frames, "robot_rl.policy_action")[3:6])
    assert _col(frames, "next.terminated").nonzero()[0].tolist() == [9]
    assert _col(frames, "next.truncated").nonzero()[0].tolist() == [15]
    assert _col(frames, "next.done").nonzero()[0].tolist() == [9, 15]
    info = _info(out)
    assert info["fps"] == 50 and info["robot_type"] is None
    assert info["features"]["action"]["names"] == ["shoulder", "elbow"]
    assert info["features"]["observation.state"]["names"] == [
        "observation.0",
        "observation.1",
        "observation.2",
        "observation.3",
    ]
    assert pq.read_table(out / "meta" / "tasks.parquet").to_pylist() == [{"task_index": 0, "task": "reach the cup"}]
    assert PolicySpec.from_json(json.loads((out / "meta" / "robot_rl.json").read_text())["policy_spec"]) == MCAP_SPEC


# ------------------------------------------------------------------------------------ Minari input, refusals


def test_cli_exports_a_minari_dataset_and_refuses_an_existing_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 2, seed=5, max_steps=4)
    write_dataset(tmp_path / "minari", episodes, spec, source="expert")
    out = tmp_path / "lerobot"
    argv = ["lerobot", "--from", str(tmp_path / "minari"), "--out", str(out), "--no-progress"]
    assert dataset_main(argv) == 0
    assert capsys.readouterr().out.strip().startswith(f"wrote {out} (LeRobotDataset v3.0): 2 episodes, 8 steps")
    assert check_lerobot_v3(out) == []
    _assert_frames_match(out, episodes)

    with pytest.raises(FileExistsError, match="--overwrite"):
        dataset_main(argv)
    assert dataset_main([*argv, "--overwrite", "--task", "another task"]) == 0
    assert pq.read_table(out / "meta" / "tasks.parquet")["task"].to_pylist() == ["another task"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lerobot", "minari"]  # old copy and temp folder removed

    # --overwrite never replaces a folder that is not a LeRobot dataset, and an empty folder is fine to fill.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no LeRobot dataset"):
        write_lerobot_v3(episodes, other, LeRobotV3Config.from_spec(spec), overwrite=True)
    assert (other / "todo.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert check_lerobot_v3(write_lerobot_v3(episodes, tmp_path / "empty", LeRobotV3Config.from_spec(spec))) == []

    with pytest.raises(FileNotFoundError, match="neither a dataset folder"):
        dataset_main(["lerobot", "--from", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])


def test_writer_errors_and_a_failed_check_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 1, max_steps=3)
    with pytest.raises(ValueError, match="no task"):
        write_lerobot_v3(episodes, tmp_path / "a", LeRobotV3Config(fps=20.0))
    with pytest.raises(ValueError, match="action_names has 1 names for 7 elements"):
        write_lerobot_v3(episodes, tmp_path / "a", LeRobotV3Config(fps=20.0, task="t", action_names=("j1",)))
    with pytest.raises(ValueError, match="fps must be a positive number"):
        LeRobotV3Config(fps=0.0)
    with pytest.raises(ValueError, match="no episodes"):
        write_lerobot_v3([], tmp_path / "a", LeRobotV3Config(fps=20.0, task="t"))
    # A layout check that fails (a writer bug) raises, and neither the target nor the temporary folder remains.
    monkeypatch.setattr("robot_rl.data.datasets.lerobot_v3_check.check_lerobot_v3", lambda root: ["simulated bug"])
    with pytest.raises(RuntimeError, match="simulated bug"):
        write_lerobot_v3(episodes, tmp_path / "a", LeRobotV3Config.from_spec(spec))
    assert list(tmp_path.iterdir()) == []


def test_nan_policy_actions_keep_the_stats_usable(tmp_path: Path) -> None:
    """A recording may hold NaN policy actions (no policy output that tick): stats ignore them, values survive."""
    policy = np.array([[np.nan, 0.5], [0.1, np.nan], [0.3, 0.2]])
    ep = Episode.build(
        np.arange(8, dtype=np.float32).reshape(4, 2),
        [[0.1, 0.2]] * 3,
        [1.0, 0.0, 2.0],
        terminated=True,
        truncated=False,
        source="mcap",
        policy_actions=policy,
    )
    out = write_lerobot_v3([ep], tmp_path / "ds", LeRobotV3Config(fps=10.0, task="t"))
    assert check_lerobot_v3(out) == []
    stats = json.loads((out / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(stats["robot_rl.policy_action"]["min"], [0.1, 0.2], rtol=1e-6)
    np.testing.assert_array_equal(_col(_frames(out), "robot_rl.policy_action"), policy.astype(np.float32))


# ---------------------------------------------------------------------------------------------- the checker


@pytest.fixture(scope="module")
def good_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 2, seed=1, max_steps=5)
    return write_lerobot_v3(episodes, tmp_path_factory.mktemp("v3") / "good", LeRobotV3Config.from_spec(spec))


def _corrupt_copy(good: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    return bad


def _rewrite(path: Path, change: Any) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def test_checker_catches_a_missing_file(good_dataset: Path, tmp_path: Path) -> None:
    bad = _corrupt_copy(good_dataset, tmp_path)
    (bad / "data" / "chunk-000" / "file-000.parquet").unlink()
    problems = check_lerobot_v3(bad)
    assert any("data/chunk-000/file-000.parquet" in p and "missing" in p for p in problems), problems
    with pytest.raises(LeRobotV3Error, match=r"not a valid LeRobotDataset v3\.0"):
        assert_lerobot_v3(bad)
    (bad / "meta" / "info.json").unlink()
    assert check_lerobot_v3(bad)[0].startswith("meta/info.json is missing")


def test_checker_catches_a_wrong_dtype_and_undeclared_columns(good_dataset: Path, tmp_path: Path) -> None:
    bad = _corrupt_copy(good_dataset, tmp_path)
    data = bad / "data" / "chunk-000" / "file-000.parquet"
    act_dim = _info(bad)["features"]["action"]["shape"][0]

    def as_float64(t: pa.Table) -> pa.Table:
        i = t.column_names.index("action")
        return t.set_column(i, "action", t["action"].cast(pa.list_(pa.float64(), act_dim))).append_column(
            "surprise", pa.array([0] * t.num_rows)
        )

    _rewrite(data, as_float64)
    problems = check_lerobot_v3(bad)
    assert any(
        "'action' is fixed_size_list<" in p and "double>[7], declared list<float32>[7]" in p for p in problems
    ), problems
    assert any("undeclared columns ['surprise']" in p for p in problems), problems


def test_checker_catches_broken_metadata(good_dataset: Path, tmp_path: Path) -> None:
    bad = _corrupt_copy(good_dataset, tmp_path)
    info = _info(bad)
    info["codebase_version"] = "v2.1"
    info["features"]["action"]["names"] = ["just one"]
    (bad / "meta" / "info.json").write_text(json.dumps(info))
    stats = json.loads((bad / "meta" / "stats.json").read_text())
    del stats["next.reward"]
    (bad / "meta" / "stats.json").write_text(json.dumps(stats))
    episodes = bad / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    _rewrite(episodes, lambda t: t.set_column(t.column_names.index("length"), "length", pa.array([5, 4], pa.int64())))
    problems = check_lerobot_v3(bad)
    assert any("codebase_version is 'v2.1'" in p for p in problems), problems
    assert any("'action' has 1 names" in p for p in problems), problems
    assert any("missing ['next.reward']" in p for p in problems), problems
    assert any("episode 1: frames [5, 10) do not follow frame 5 with its length 4" in p for p in problems), problems
    assert any("episode 1 has 5 frames, its metadata says 4" in p for p in problems), problems
