"""The human-in-the-loop learner's ROS-free core on a real reach task: a BC base bundle deployed, executed episodes
in (some with a human's steps), residual SAC updates, a verified composite bundle out, and a kill/restart that
resumes from the checkpoint with both buffers instead of starting over or overwriting the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.core.types import DataSource
from robot_rl.data.datasets.episode import Episode
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.hil.learner import HilLearner, HilLearnerConfig, RunFolderExists

REACH = "robot_rl/PandaReach-v0"
SMALL = {"actor_hidden": [32, 32], "critic_hidden": [32, 32], "batch_size": 32, "utd_ratio": 1}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A weak BC bundle on the reach task (3 expert episodes, 150 updates) and 3 of its own rollouts."""
    from robot_rl.data.datasets.sources.bundle_rollout import bundle_episodes

    root = tmp_path_factory.mktemp("hil")
    data = root / "expert"
    assert main(["dataset", "expert", "--env", REACH, "--episodes", "3", "--out", str(data), "--no-progress"]) == 0
    args = ["train", "bc", "--env", REACH, "--data", "offline", "--dataset", str(data), "--total-steps", "150"]
    args += ["--eval-every", "0", "--eval-episodes", "1", "--out-dir", str(root), "--run-name", "bc"]
    assert main([*args, "--no-progress", "--no-tensorboard", "--torch-threads", "1"]) == 0
    bundle = root / "bundle"
    assert main(["export", str(root / "bc"), "--out", str(bundle), "--parity-samples", "2000"]) == 0
    _, episodes = bundle_episodes(bundle, 3, seed=7, max_steps=40)
    return {"root": root, "bundle": bundle, "episodes": episodes}


def _with_human(ep: Episode, first: int, last: int) -> Episode:
    """The same episode with steps [first, last) driven by a human (the executed actions are theirs)."""
    flags = np.zeros(len(ep), np.bool_)
    flags[first:last] = True
    return Episode.build(
        observations=ep.observations,
        actions=ep.actions,
        policy_actions=ep.policy_actions,
        rewards=ep.rewards,
        terminated=ep.terminated,
        truncated=ep.truncated,
        intervention=flags,
        safety_activated=ep.safety_activated,
        success=ep.success,
        source="mcap",
        metadata=dict(ep.metadata),
    )


def _cfg(run_dir: Path, bundle: Path) -> HilLearnerConfig:
    return HilLearnerConfig(
        env=REACH,
        run_dir=run_dir,
        base=str(bundle),
        algo_config=SMALL,
        learning_starts=40,
        export_every_updates=30,
        checkpoint_every_updates=25,
        parity_samples=1000,
    )


def test_episodes_train_a_residual_that_exports_as_a_verified_composite_bundle(
    base: dict[str, object], tmp_path: Path
) -> None:
    bundle, episodes = Path(str(base["bundle"])), list(base["episodes"])  # type: ignore[call-overload]
    learner = HilLearner(_cfg(tmp_path / "learner", bundle))
    assert learner.spec.observation.dim == learner.env_spec.observation.dim + learner.env_spec.action.dim
    assert learner.train() == 0 and not learner.ready  # nothing received yet

    learner.add_demonstrations(episodes[:1])
    human = _with_human(episodes[1], 5, 15)
    n = learner.add_episode(human) + learner.add_episode(episodes[2])
    assert len(learner.online) == n and learner.episodes == 2
    # the human's 10 steps are online data and demonstrations; the demo buffer also holds the given episode
    assert len(learner.demo) == len(episodes[0]) + 10
    online_src = learner.online.source[: len(learner.online)]
    assert int((online_src == DataSource.INTERVENTION).sum()) == 10
    assert int((online_src == DataSource.ONLINE).sum()) == n - 10

    ran = learner.train()
    assert ran == n and learner.updates == n  # one update per received step
    assert learner.export_due
    exported = learner.export()
    assert exported.bundle_dir.is_dir() and not any(
        p.name.startswith(".tmp") for p in exported.bundle_dir.parent.iterdir()
    )
    policy = OnnxPolicy.load(exported.bundle_dir, expected_sha256=exported.onnx_sha256)
    manifest = json.loads((exported.bundle_dir / "manifest.json").read_text())
    assert manifest["base"]["onnx_sha256"] == OnnxPolicy.load(bundle).manifest.onnx_sha256  # composite, base pinned
    obs = episodes[0].observations[0]
    assert policy.act(obs).shape == (learner.env_spec.action.dim,)
    assert exported.metrics["episodes"] == 2.0 and 0.0 < exported.metrics["recent_intervention"] < 1.0
    learner.close()


def test_a_killed_learner_resumes_from_its_checkpoint_with_its_buffers_and_never_overwrites(
    base: dict[str, object], tmp_path: Path
) -> None:
    bundle, episodes = Path(str(base["bundle"])), list(base["episodes"])  # type: ignore[call-overload]
    run = tmp_path / "learner"
    first = HilLearner(_cfg(run, bundle))
    for ep in episodes:
        first.add_episode(_with_human(ep, 0, 3))
    first.train(max_updates=50)  # checkpoint at 25 and 50
    saved_online, saved_demo = len(first.online), len(first.demo)
    saved_rows = first.online.obs[:saved_online].copy()
    # no close(): the process is "killed" here; whatever the last checkpoint holds is what survives

    with pytest.raises(RunFolderExists, match="resume"):
        HilLearner(_cfg(run, bundle))
    again = HilLearner(_cfg(run, bundle), resume=True)
    assert again.updates == 50 and again.episodes == 3
    assert (len(again.online), len(again.demo)) == (saved_online, saved_demo)
    np.testing.assert_array_equal(again.online.obs[:saved_online], saved_rows)
    assert again.pending_updates == pytest.approx(first.pending_updates)
    assert again.train() == int(first.pending_updates)  # it catches up on the updates the data still owes
    again.close()


def test_a_resume_on_another_base_is_refused(base: dict[str, object], tmp_path: Path) -> None:
    from robot_rl.residual.base import BaseError

    root, bundle = Path(str(base["root"])), Path(str(base["bundle"]))
    run = tmp_path / "learner"
    HilLearner(_cfg(run, bundle)).close()
    args = ["train", "bc", "--env", REACH, "--data", "offline", "--dataset", str(root / "expert"), "--seed", "1"]
    args += ["--total-steps", "20", "--eval-every", "0", "--eval-episodes", "1", "--out-dir", str(tmp_path)]
    assert main([*args, "--run-name", "bc1", "--no-progress", "--no-tensorboard", "--torch-threads", "1"]) == 0
    other = tmp_path / "other"
    assert main(["export", str(tmp_path / "bc1"), "--out", str(other), "--parity-samples", "1000"]) == 0
    with pytest.raises(BaseError):
        HilLearner(_cfg(run, other), resume=True)


def test_the_service_turns_stream_bytes_into_updates_and_announcements_and_survives_a_failed_export(
    base: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from robot_rl.data.step_record import StepRecord
    from robot_rl.hil.announcement import BundleAnnouncement
    from robot_rl.hil.sender import StreamSender
    from robot_rl.hil.service import LearnerService
    from robot_rl.hil.wire import encode

    bundle, episodes = Path(str(base["bundle"])), list(base["episodes"])  # type: ignore[call-overload]
    learner = HilLearner(_cfg(tmp_path / "learner", bundle))
    sent: list[str] = []
    service = LearnerService(learner, sent.append, run_id="test-learner", updates_per_slice=25)
    sender = StreamSender(bundle_sha256="ab" * 32)
    for ep in episodes:  # each episode as the policy node streams it: one record per tick, the end on the last
        records = [
            StepRecord(
                step=t,
                stamp_ns=t + 1,
                observation=ep.observations[t],
                policy_action=ep.policy_actions[t],
                executed_action=ep.actions[t],
                reward_terms={"success": float(ep.rewards[t])},
                intervention=False,
                truncated=t == len(ep) - 1,
                is_success=False,
            )
            for t in range(len(ep))
        ]
        for msg in sender.messages(records):
            service.on_message(encode(msg))
        sender.episode += 1
    service.on_message(b"not a stream message")
    while service.work():
        pass
    st = service.stats()
    assert st["malformed"] == 1 and st["sequence/lost"] == 0 and st["episodes_complete"] == len(episodes)
    # a truncated last step has no next observation: one transition fewer per episode, as in a recording
    assert len(learner.online) == sum(len(e) for e in episodes) - len(episodes)
    assert service.exports >= 1 and sent
    announced = BundleAnnouncement.from_json(sent[-1])
    assert announced.onnx_sha256 == learner.announced[-1]["sha256"] and announced.run_id == "test-learner"

    def broken() -> None:
        raise OSError("disk full")

    monkeypatch.setattr(learner, "export", broken)
    learner.pending_updates += 40
    while service.work():
        pass
    # each due export failed once, was counted and deferred; the updates went on (no retry loop, no crash)
    assert service.errors >= 1 and "disk full" in service.last_error
    assert learner.pending_updates < 1 and not learner.export_due


def test_a_signing_key_signs_every_export_so_a_robot_with_trusted_keys_accepts_it(
    base: dict[str, object], tmp_path: Path
) -> None:
    import dataclasses

    from robot_rl.export.errors import BundleError
    from robot_rl.export.signing import generate_key

    bundle, episodes = Path(str(base["bundle"])), list(base["episodes"])  # type: ignore[call-overload]
    key, public, _ = generate_key(tmp_path / "learner.pem")
    stranger = generate_key(tmp_path / "other.pem")[1]
    with pytest.raises(ValueError, match="signing_key"):  # a wrong key path fails at start, not at the first export
        dataclasses.replace(_cfg(tmp_path / "x", bundle), signing_key=str(tmp_path / "missing.pem"))
    learner = HilLearner(dataclasses.replace(_cfg(tmp_path / "learner", bundle), signing_key=str(key)))
    for ep in episodes[:2]:
        learner.add_episode(ep)
    learner.train()
    exported = learner.export()
    learner.close()
    loaded = OnnxPolicy.load(exported.bundle_dir, expected_sha256=exported.onnx_sha256, trusted_keys=[public])
    assert loaded.signer_key_id is not None
    with pytest.raises(BundleError):  # signed, but by a key this robot does not trust
        OnnxPolicy.load(exported.bundle_dir, trusted_keys=[stranger])


def test_a_learner_without_a_base_runs_beside_a_deployed_bundle(base: dict[str, object], tmp_path: Path) -> None:
    """The launch files always pass the deployed bundle as `base`; a learner that takes none (HG-DAgger-style `bc`)
    must still start, learn from the interventions and export a plain bundle for the same robot."""
    import dataclasses

    bundle, episodes = Path(str(base["bundle"])), list(base["episodes"])  # type: ignore[call-overload]
    cfg = dataclasses.replace(
        _cfg(tmp_path / "learner", bundle), algo="bc", algo_config={"actor_hidden": [32, 32], "batch_size": 32}
    )
    learner = HilLearner(cfg)
    assert "base" not in learner.config_json["algo_config"] and learner.view is None
    learner.add_episode(episodes[1])
    assert len(learner.online) >= cfg.learning_starts and not learner.ready  # nobody has shown it anything yet
    learner.add_episode(_with_human(episodes[0], 0, 30))
    assert learner.train() > 0
    # HG-DAgger: it imitates what people did (the human's 30 steps), never the robot's own executed steps
    batch = next(learner._batches())
    assert batch.source is not None and set(batch.source.tolist()) == {int(DataSource.INTERVENTION)}
    exported = learner.export()
    learner.close()
    manifest = json.loads((exported.bundle_dir / "manifest.json").read_text())
    assert "base" not in manifest
    assert OnnxPolicy.load(exported.bundle_dir).spec.action == OnnxPolicy.load(bundle).spec.action
