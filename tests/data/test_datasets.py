"""Datasets: every source builds the one Episode type, the Minari files open with `minari` itself, and a replay
buffer filled from them holds normalized actions with terminated ≠ truncated and the intervention labels."""

from __future__ import annotations

import json
from pathlib import Path

import minari
import numpy as np
import pytest

from robot_rl.cli import main as robot_rl_main
from robot_rl.core.specs import ActionSpec, ObservationSpec, PolicySpec
from robot_rl.core.types import DataSource
from robot_rl.data.datasets import Episode, load_episodes, load_replay, write_dataset
from robot_rl.data.datasets.cli import main as dataset_main
from robot_rl.data.datasets.sources.bundle_rollout import bundle_episodes
from robot_rl.data.datasets.sources.expert import expert_episodes
from robot_rl.data.datasets.sources.mcap import mcap_episodes
from robot_rl.data.episode_record import RecorderConfig, StepRecord
from robot_rl.data.mcap_writer import EpisodeRecorder
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.train.envs import make_env, policy_spec_for


def _spec_of(env_id: str) -> PolicySpec:
    env = make_env(env_id)
    try:
        return policy_spec_for(env, env_id)
    finally:
        env.close()


def _minari_load(root: Path, dataset_id: str, monkeypatch: pytest.MonkeyPatch) -> minari.MinariDataset:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return minari.load_dataset(dataset_id)


def _assert_minari_matches(ds: minari.MinariDataset, episodes: list[Episode]) -> None:
    """What `minari` reads equals the source episodes, field by field."""
    assert ds.total_episodes == len(episodes)
    assert ds.total_steps == sum(len(e) for e in episodes)
    for data, ep in zip(ds.iterate_episodes(), episodes, strict=True):
        t = len(ep)
        assert data.observations.shape == (t + 1, ep.obs_dim) and data.actions.shape == (t, ep.act_dim)
        np.testing.assert_array_equal(data.observations, ep.observations)
        np.testing.assert_array_equal(data.actions, ep.actions)  # physical, float64, exactly
        np.testing.assert_array_equal(data.rewards, ep.rewards)
        np.testing.assert_array_equal(data.terminations, [False] * (t - 1) + [ep.terminated])
        np.testing.assert_array_equal(data.truncations, [False] * (t - 1) + [ep.truncated])
        # infos follow Minari's alignment with observations: row t + 1 belongs to step t
        np.testing.assert_array_equal(data.infos["policy_action"][1:], ep.policy_actions)
        np.testing.assert_array_equal(data.infos["intervention"][1:], ep.intervention)
        np.testing.assert_array_equal(data.infos["safety_activated"][1:], ep.safety_activated)
        np.testing.assert_array_equal(data.infos["cost"][1:], ep.cost)


def _assert_replay_matches(buffer: object, episodes: list[Episode], spec: PolicySpec) -> None:
    """Transition by transition: normalized actions, flags only on each episode's last step, labels, sources."""
    rows = 0
    for ep in episodes:
        t = len(ep)
        sl = slice(rows, rows + t)
        np.testing.assert_allclose(
            buffer.action[sl],  # type: ignore[attr-defined]
            np.clip(spec.action.to_normalized(ep.actions), -1, 1),
            atol=1e-6,
        )
        np.testing.assert_array_equal(buffer.obs[sl], ep.observations[:-1])  # type: ignore[attr-defined]
        np.testing.assert_array_equal(buffer.next_obs[sl], ep.observations[1:])  # type: ignore[attr-defined]
        np.testing.assert_array_equal(buffer.terminated[sl], [0] * (t - 1) + [float(ep.terminated)])  # type: ignore[attr-defined]
        np.testing.assert_array_equal(buffer.truncated[sl], [0] * (t - 1) + [float(ep.truncated)])  # type: ignore[attr-defined]
        np.testing.assert_array_equal(buffer.intervention[sl], ep.intervention)  # type: ignore[attr-defined]
        expected_source = np.where(ep.intervention, DataSource.INTERVENTION, DataSource.DATASET)
        np.testing.assert_array_equal(buffer.source[sl], expected_source)  # type: ignore[attr-defined]
        rows += t
    assert len(buffer) == rows  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- expert (a)


def test_expert_suite_env_dataset_round_trips_through_minari_and_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_id = "robot_rl/PandaReach-v0"
    spec, episodes = expert_episodes(env_id, 2, seed=3, max_steps=15)
    assert spec.robot is not None and [len(e) for e in episodes] == [15, 15]
    assert all(e.truncated and not e.terminated for e in episodes)
    assert [e.metadata["seed"] for e in episodes] == [3, 4]
    # Physical units: the expert's normalized action mapped through the robot interface, not the [-1, 1] one.
    norm = spec.action.to_normalized(np.concatenate([e.actions for e in episodes]))
    assert np.all(np.abs(norm) <= 1 + 1e-6)
    assert not np.allclose(norm, np.concatenate([e.actions for e in episodes]))
    # Same seeds, same episodes (the source is reproducible).
    _, again = expert_episodes(env_id, 1, seed=3, max_steps=15)
    np.testing.assert_array_equal(again[0].actions, episodes[0].actions)

    write_dataset(tmp_path / "robot_rl" / "reach-expert-v0", episodes, spec, source="expert")
    ds = _minari_load(tmp_path, "robot_rl/reach-expert-v0", monkeypatch)
    _assert_minari_matches(ds, episodes)
    meta = ds.storage.metadata["robot_rl"]
    assert meta["action_units"] == "physical" and PolicySpec.from_json(meta["policy_spec"]) == spec

    buffer = load_replay(tmp_path / "robot_rl" / "reach-expert-v0", spec)
    _assert_replay_matches(buffer, episodes, spec)
    assert buffer.capacity == 30


def test_expert_metaworld_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_id = "robot_rl/MetaWorld-reach-v3"
    spec, episodes = expert_episodes(env_id, 2, seed=0, max_steps=8)
    assert spec.robot is None and spec.action.dim == 4
    assert [len(e) for e in episodes] == [8, 8] and all(e.truncated for e in episodes)
    # Meta-World's scripted policy, replayed on the stored observations, gives the stored actions.
    env = make_env(env_id)
    expert = env.unwrapped.make_expert()  # type: ignore[attr-defined]
    env.close()
    np.testing.assert_allclose(episodes[0].actions[0], expert.act(episodes[0].observations[0].astype(np.float64)))
    out = tmp_path / "robot_rl" / "mw-reach-v1"
    write_dataset(out, episodes, spec, source="expert")
    _assert_minari_matches(_minari_load(tmp_path, "robot_rl/mw-reach-v1", monkeypatch), episodes)
    _assert_replay_matches(load_replay(out, spec), episodes, spec)


def test_expert_errors_name_the_problem(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match=r"unknown environment id 'robot_rl/PandaRech-v0'.*robot_rl/PandaReach-v0"):
        dataset_main(["expert", "--env", "robot_rl/PandaRech-v0", "--out", str(out)])
    with pytest.raises(ValueError, match="no scripted expert"):
        dataset_main(["expert", "--env", "Pendulum-v1", "--out", str(out)])
    assert not out.exists()


def test_expert_cli_prints_summary_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cartpole"
    argv = ["dataset", "expert", "--env", "robot_rl/CartPoleBalance-v0", "--episodes", "2", "--max-steps", "5"]
    assert robot_rl_main([*argv, "--out", str(out), "--no-progress"]) == 0  # through the `robot-rl` entry point
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out}: 2 episodes, 10 steps, success rate")
    assert [len(e) for e in load_episodes(out)] == [5, 5]
    with pytest.raises(FileExistsError, match="--overwrite"):
        dataset_main([*argv[1:], "--out", str(out), "--no-progress"])
    assert dataset_main([*argv[1:], "--out", str(out), "--no-progress", "--overwrite", "--episodes", "1"]) == 0
    assert len(load_episodes(out)) == 1


def test_expert_cli_takes_a_relative_out_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--out ds` relative to the working directory (minari's storage once doubled it: `ds/data/ds/data/0`)."""
    monkeypatch.chdir(tmp_path)
    argv = ["dataset", "expert", "--env", "robot_rl/CartPoleBalance-v0", "--episodes", "2", "--max-steps", "5"]
    assert robot_rl_main([*argv, "--out", "ds", "--no-progress"]) == 0
    assert [len(e) for e in load_episodes(tmp_path / "ds")] == [5, 5]


# ------------------------------------------------------------------------------------------ bundle rollout (b)


def test_bundle_rollout_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reach_bundle: Path) -> None:
    spec, episodes = bundle_episodes(reach_bundle, 2, seed=1, max_steps=6)
    assert [len(e) for e in episodes] == [6, 6]
    policy = OnnxPolicy.load(reach_bundle)
    for ep in episodes:  # the stored action is the bundle's physical output for the stored observation
        for obs, action in zip(ep.observations[:-1], ep.actions, strict=True):
            np.testing.assert_allclose(action, policy.act(obs), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(ep.policy_actions, ep.actions)
        assert ep.metadata["policy_sha256"] == policy.manifest.onnx_sha256
    out = tmp_path / "robot_rl" / "reach-rollout-v0"
    write_dataset(out, episodes, spec, source="rollout")
    _assert_minari_matches(_minari_load(tmp_path, "robot_rl/reach-rollout-v0", monkeypatch), episodes)
    assert all(e.source == "rollout" for e in load_episodes(out))


# ------------------------------------------------------------------------------------------------- MCAP (c)

OBS, ACT = 4, 2
MCAP_SPEC = PolicySpec(
    ObservationSpec.flat(OBS), ActionSpec(low=(-0.5, -2.0), high=(0.5, 2.0), units="rad/s"), control_hz=50.0
)


def _recorded_episode(n: int, *, intervene: range, safety_at: int, terminated: bool, seed: int) -> list[StepRecord]:
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(n):
        policy = rng.uniform(-0.4, 0.4, ACT)
        human = t in intervene
        executed = rng.uniform(-0.4, 0.4, ACT) if human else policy.copy()
        reasons: tuple[str, ...] = ()
        if t == safety_at:
            reasons = ("velocity_limit",)
            executed = executed * 0.5
        steps.append(
            StepRecord(
                step=t,
                stamp_ns=t * 20_000_000,
                observation=rng.normal(size=OBS),
                policy_action=policy,
                executed_action=executed,
                reward_terms={"rlif": -1.0 if t == intervene.start else 0.0, "success": float(t == n - 1)},
                intervention=human,
                safety_reasons=reasons,
                terminated=terminated and t == n - 1,
                truncated=not terminated and t == n - 1,
            )
        )
    return steps


def _record(directory: Path, episodes: list[list[StepRecord]], metadata: dict[str, str]) -> None:
    with EpisodeRecorder(RecorderConfig(directory=directory)) as rec:
        for steps in episodes:
            rec.start_episode(metadata)
            for s in steps:
                assert rec.record_step(s)
            rec.end_episode(
                terminated=steps[-1].terminated, truncated=steps[-1].truncated, extra={"is_success": "true"}
            )


def test_mcap_dataset_keeps_last_step_labels_and_policy_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    term = _recorded_episode(12, intervene=range(3, 7), safety_at=8, terminated=True, seed=0)
    trunc = _recorded_episode(9, intervene=range(2, 4), safety_at=5, terminated=False, seed=1)
    rec_dir = tmp_path / "episodes"
    _record(rec_dir, [term, trunc], {"robot": "sim_arm", "policy_spec": json.dumps(MCAP_SPEC.to_json())})
    (rec_dir / "episode_000007.mcap").write_bytes(b"\x89MCAP0\r\n this is not an episode")  # corrupt: skipped

    out = tmp_path / "robot_rl" / "recorded-v0"
    assert dataset_main(["mcap", "--episodes-dir", str(rec_dir), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 episodes, 20 steps, success rate 1.00, 1 terminated, 6 intervention steps" in printed
    assert "from 2 of 3 files" in printed and "skipped 1 unusable files" in printed
    assert "episode_000007.mcap" in printed

    episodes = load_episodes(out)
    ep, cut = episodes
    # The terminated episode keeps its last step: 12 transitions, the last one terminal.
    assert len(ep) == 12 and ep.terminated and not ep.truncated and ep.success
    np.testing.assert_array_equal(ep.observations[:-1], np.array([s.observation for s in term], np.float32))
    np.testing.assert_array_equal(ep.actions, [s.executed_action for s in term])
    np.testing.assert_array_equal(ep.policy_actions, [s.policy_action for s in term])
    np.testing.assert_array_equal(ep.intervention, [3 <= t < 7 for t in range(12)])
    np.testing.assert_array_equal(ep.safety_activated, [t == 8 for t in range(12)])
    np.testing.assert_array_equal(ep.rewards, [sum(s.reward_terms.values()) for s in term])
    assert not np.array_equal(ep.actions[3:7], ep.policy_actions[3:7])  # the human's action beside the policy's
    # The truncated one loses its last tick (no next observation) and ends truncated, not terminated.
    assert len(cut) == 8 and cut.truncated and not cut.terminated
    np.testing.assert_array_equal(cut.observations[-1], trunc[-1].observation.astype(np.float32))

    _assert_minari_matches(_minari_load(tmp_path, "robot_rl/recorded-v0", monkeypatch), episodes)
    buffer = load_replay(out, MCAP_SPEC, capacity=100)
    _assert_replay_matches(buffer, episodes, MCAP_SPEC)
    assert buffer.terminated[11] == 1.0 and buffer.terminated[:11].sum() == 0  # the last step reached the learner
    assert buffer.truncated[19] == 1.0 and buffer.terminated[12:20].sum() == 0
    assert buffer.source[3:7].tolist() == [DataSource.INTERVENTION] * 4


def test_mcap_source_splits_at_gaps_and_needs_a_spec(tmp_path: Path) -> None:
    steps = [s for s in _recorded_episode(8, intervene=range(0), safety_at=-1, terminated=False, seed=2) if s.step != 4]
    _record(tmp_path, [steps], {"robot": "sim_arm"})
    with pytest.raises(ValueError, match="--policy BUNDLE"):
        mcap_episodes(tmp_path)
    _, episodes, report = mcap_episodes(tmp_path, spec=MCAP_SPEC)
    # Steps 0..3 give 3 transitions (3's successor was dropped), 5..7 give 2 (7 is the truncated last tick).
    assert [len(e) for e in episodes] == [3, 2] and all(e.truncated for e in episodes)
    assert [e.metadata["first_step"] for e in episodes] == [0, 5]
    assert report.dropped_steps == 2


def test_mcap_empty_folder_and_spec_mismatch(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"holds no finished episode_\*\.mcap files"):
        dataset_main(["mcap", "--episodes-dir", str(empty), "--out", str(tmp_path / "o")])
    steps = _recorded_episode(5, intervene=range(0), safety_at=-1, terminated=True, seed=3)
    _record(tmp_path / "rec", [steps], {})
    _, episodes, _ = mcap_episodes(tmp_path / "rec", spec=MCAP_SPEC)
    write_dataset(tmp_path / "ds", episodes, MCAP_SPEC, source="mcap")
    with pytest.raises(ValueError, match="action size 2 vs 7"):
        load_replay(tmp_path / "ds", _spec_of("robot_rl/PandaReach-v0"))


def test_load_replay_refuses_another_robot(tmp_path: Path) -> None:
    spec, episodes = expert_episodes("robot_rl/PandaReach-v0", 1, max_steps=3)
    write_dataset(tmp_path / "ds", episodes, spec, source="expert")
    panda = _spec_of("robot_rl/PandaReach-v0")
    with pytest.raises(ValueError, match="robot 'panda' vs 'iiwa'"):
        load_replay(tmp_path / "ds", _spec_of("robot_rl/IiwaReach-v0"))
    assert len(load_replay(tmp_path / "ds", panda)) == 3


def test_episode_contract() -> None:
    with pytest.raises(ValueError, match="both terminated and truncated"):
        Episode.build(np.zeros((3, 2)), np.zeros((2, 1)), [0, 0], terminated=True, truncated=True, source="x")
    with pytest.raises(ValueError, match=r"observations must be \[T\+1=3, O\]"):
        Episode.build(np.zeros((2, 2)), np.zeros((2, 1)), [0, 0], terminated=True, truncated=False, source="x")
    ep = Episode.build(np.zeros((3, 2)), np.ones((2, 1)), [1, 2], terminated=False, truncated=True, source="x")
    np.testing.assert_array_equal(ep.policy_actions, ep.actions)
    assert ep.actions.dtype == np.float64 and ep.observations.dtype == np.float32 and not ep.intervention.any()
