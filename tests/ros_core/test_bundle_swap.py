"""Hot swap of the deployed bundle (issue 15), ROS-free: announcements, verification off the control thread with
every configure check, switches only at episode boundaries, refusals, rollback and the swapper's stats. Real
exported Panda reach bundles throughout (tests/conftest.py), tampered or mismatched where a test needs it."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from robot_rl.export.manifest import ONNX_FILE, sha256_file
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.hil.announcement import MAX_JSON_CHARS, AnnouncementError, BundleAnnouncement
from robot_rl.safety.diagnostics import OK, WARN
from ros_nodes.core.bundle_swap import BundleSwapConfig, BundleSwapper, SwappableChunkPolicy, Verifier
from ros_nodes.core.deployment import Deployment, build_deployment
from ros_nodes.core.episode_session import EpisodeStart
from ros_nodes.core.swap_verify import deployment_verifier
from tests.conftest import _export_env_bundle

REACH = "robot_rl/PandaReach-v0"
PERIOD = 0.05
WAIT_S = 60.0  # verification of a real bundle takes well under a second; generous for a loaded CI machine


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reach_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another compatible reach bundle (other weights): what a learner exports next."""
    return _export_env_bundle(tmp_path_factory.mktemp("swap") / "reach_b", REACH, seed=1)


@pytest.fixture(scope="module")
def reach_c(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third compatible reach bundle."""
    return _export_env_bundle(tmp_path_factory.mktemp("swap") / "reach_c", REACH, seed=2)


@pytest.fixture
def dep(reach_bundle: Path) -> Deployment:
    return build_deployment({"bundle_dir": str(reach_bundle)})


@pytest.fixture
def make_swapper(dep: Deployment) -> Iterator[Callable[..., BundleSwapper]]:
    made: list[BundleSwapper] = []

    def make(config: BundleSwapConfig | None = None, verify: Verifier | None = None, **kw: object) -> BundleSwapper:
        cfg = config or BundleSwapConfig()
        real = deployment_verifier(dep, {}, cfg.accept_unsigned_when_pinned)
        swapper = BundleSwapper(dep.policy, verify or real, cfg, **kw)  # type: ignore[arg-type]
        made.append(swapper)
        return swapper

    yield make
    for s in made:
        s.close()


def _announce(bundle: Path, step: int = 100, sha: str | None = None) -> BundleAnnouncement:
    return BundleAnnouncement(
        str(bundle), sha or sha256_file(bundle / ONNX_FILE), step, "run-1", {"eval/success_rate": 0.5}, 1.7e9
    )


def _sha(bundle: Path) -> str:
    return sha256_file(bundle / ONNX_FILE)


def _tampered(bundle: Path, dst: Path) -> Path:
    """A copy whose policy.onnx has bytes changed after export (its manifest still names the original hash)."""
    shutil.copytree(bundle, dst)
    data = bytearray((dst / ONNX_FILE).read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8] = bytes(b ^ 0xFF for b in data[mid : mid + 8])
    (dst / ONNX_FILE).write_bytes(bytes(data))
    return dst


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# --- the announcement ------------------------------------------------------------------------------------------


def test_announcement_round_trips_through_json() -> None:
    a = BundleAnnouncement("/models/b", "ab" * 32, 1200, "hil-run", {"eval/success_rate": 0.75, "loss/critic": 3}, 5.5)
    text = a.to_json()
    b = BundleAnnouncement.from_json(text)
    assert b == a and b.metrics == {"eval/success_rate": 0.75, "loss/critic": 3.0}
    assert json.loads(text)["format"] == 1 and hash(a) == hash(b)
    with pytest.raises(TypeError):
        a.metrics["x"] = 1.0  # type: ignore[index]
    now = BundleAnnouncement.now("/m", "cd" * 32, 0, "r")
    assert now.announced_unix_s > 1e9 and dict(now.metrics) == {}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"onnx_sha256": "AB" * 32}, "64 lowercase hex"),
        ({"onnx_sha256": "ab" * 31}, "64 lowercase hex"),
        ({"training_step": -1}, "training_step"),
        ({"training_step": True}, "training_step"),
        ({"training_step": 1.5}, "training_step"),
        ({"bundle_dir": ""}, "bundle_dir"),
        ({"run_id": 3}, "run_id"),
        ({"metrics": {"eval/success_rate": "high"}}, "must be a number"),
        ({"metrics": {"eval/success_rate": 10**400}}, "finite"),
        ({"metrics": [1.0]}, "metrics must be an object"),
        ({"announced_unix_s": -1.0}, "announced_unix_s"),
        ({"format": 2}, "format 2 is not supported"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_malformed_announcements_are_refused_naming_the_field(change: dict[str, object], match: str) -> None:
    good = BundleAnnouncement("/models/b", "ab" * 32, 1, "r", {}, 1.0).to_dict()
    with pytest.raises(AnnouncementError, match=match):
        BundleAnnouncement.from_dict({**good, **change})


def test_announcement_json_refuses_nan_missing_fields_and_garbage() -> None:
    good = BundleAnnouncement("/models/b", "ab" * 32, 1, "r", {"m": 1.0}, 1.0).to_json()
    with pytest.raises(AnnouncementError, match="non-finite number NaN"):
        BundleAnnouncement.from_json(good.replace('"m":1.0', '"m":NaN'))
    with pytest.raises(AnnouncementError, match="non-finite number Infinity"):
        BundleAnnouncement.from_json(good.replace('"announced_unix_s":1.0', '"announced_unix_s":Infinity'))
    data = json.loads(good)
    del data["onnx_sha256"]
    with pytest.raises(AnnouncementError, match=r"missing field\(s\) \['onnx_sha256'\]"):
        BundleAnnouncement.from_json(json.dumps(data))
    for text in ("", "{", "[1, 2]", "null", " " * (MAX_JSON_CHARS + 1)):
        with pytest.raises(AnnouncementError):
            BundleAnnouncement.from_json(text)


# --- verification: every configure check, and the swap's own -------------------------------------------------------


def test_a_compatible_bundle_passes_and_misfits_are_refused_with_the_reason(
    dep: Deployment,
    reach_b: Path,
    reach_position_bundle: Path,
    cartpole_lqr_bundle: Path,
    tmp_path: Path,
) -> None:
    verify = deployment_verifier(dep, {})
    policy = verify(_announce(reach_b))
    assert policy.manifest.onnx_sha256 == _sha(reach_b)
    refusals = {
        "tampered": (_announce(_tampered(reach_b, tmp_path / "t")), "sha256 mismatch"),
        "other sha announced": (_announce(reach_b, sha="ab" * 32), "announced sha256 abab"),
        "other robot": (
            _announce(cartpole_lqr_bundle),
            "does not fit the running deployment: it was trained for robot",
        ),
        "other interface": (_announce(reach_position_bundle), "command interface"),
        "missing": (BundleAnnouncement(str(tmp_path / "nope"), "ab" * 32, 1, "r"), "does not exist"),
    }
    for name, (announcement, match) in refusals.items():
        with pytest.raises(ValueError, match=match):
            verify(announcement)
            pytest.fail(f"{name} was not refused")


def test_the_node_safety_overrides_apply_to_the_candidate_too(reach_bundle: Path, reach_b: Path) -> None:
    from ros_nodes.core.deployment import safety_params

    params = {"bundle_dir": str(reach_bundle), "safety.velocity_limit_rad_s": [0.5] * 7}
    dep = build_deployment(params)
    assert deployment_verifier(dep, safety_params(params))(_announce(reach_b))
    # without the node's overrides the candidate's limits would differ from the chain in force: refused
    with pytest.raises(ValueError, match=r"safety limits differ from the chain in force in \['velocity_limit_rad_s'\]"):
        deployment_verifier(dep, {})(_announce(reach_b))
    # the node's `robot` parameter is checked as configure checks it
    other = build_deployment({**params, "robot": dep.robot.robot})
    assert deployment_verifier(other, safety_params(params))(_announce(reach_b))


def test_a_pinned_unsigned_deployment_refuses_announcements_unless_configured(
    reach_bundle: Path, reach_b: Path
) -> None:
    pinned = build_deployment({"bundle_dir": str(reach_bundle), "expected_sha256": _sha(reach_bundle)})
    with pytest.raises(ValueError, match="pins expected_sha256 and sets no trusted_keys"):
        deployment_verifier(pinned, {})(_announce(reach_b))
    accepted = deployment_verifier(pinned, {}, accept_unsigned_when_pinned=True)
    assert accepted(_announce(reach_b)).manifest.onnx_sha256 == _sha(reach_b)


def test_trusted_keys_require_the_candidate_to_be_signed(reach_bundle: Path, reach_b: Path, tmp_path: Path) -> None:
    from robot_rl.export.signing import generate_key, sign_bundle

    private, public, _ = generate_key(tmp_path / "lab.pem")
    running, candidate = tmp_path / "running", tmp_path / "candidate"
    shutil.copytree(reach_bundle, running)
    shutil.copytree(reach_b, candidate)
    sign_bundle(running, private)
    dep = build_deployment(
        {"bundle_dir": str(running), "trusted_keys": [str(public)], "expected_sha256": _sha(running)}
    )
    verify = deployment_verifier(dep, {})
    with pytest.raises(ValueError, match="not signed"):
        verify(_announce(candidate))
    sign_bundle(candidate, private)
    assert verify(_announce(candidate)).signer_key_id  # signed + pinned deployment: keys authenticate the swap


# --- the swapper --------------------------------------------------------------------------------------------------


def test_announce_returns_at_once_and_verifies_off_the_calling_thread(
    dep: Deployment, make_swapper: Callable[..., BundleSwapper], reach_b: Path
) -> None:
    gate, threads = threading.Event(), []
    real = deployment_verifier(dep, {})

    def slow(a: BundleAnnouncement) -> OnnxPolicy:
        threads.append(threading.current_thread())
        assert gate.wait(WAIT_S)
        return real(a)

    swapper = make_swapper(verify=slow)
    t0 = time.monotonic()
    assert swapper.announce(_announce(reach_b)).startswith("verifying")
    assert time.monotonic() - t0 < 1.0  # the verifier is blocked: only another thread can be running it
    deadline = time.monotonic() + WAIT_S
    while swapper.stats().verifying_sha256 != _sha(reach_b) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert swapper.stats().verifying_sha256 == _sha(reach_b)
    assert swapper.at_episode_boundary() is None  # nothing verified yet: the boundary does not wait for it
    gate.set()
    assert swapper.wait_idle(WAIT_S)
    assert threads and threads[0] is not threading.current_thread()
    stats = swapper.stats()
    assert stats.pending_sha256 == _sha(reach_b) and stats.verifying_sha256 == "" and stats.last_verify_s is not None


def test_the_swap_happens_only_at_an_episode_boundary_and_the_new_bundle_drives(
    dep: Deployment, make_swapper: Callable[..., BundleSwapper], reach_b: Path
) -> None:
    clock = FakeClock()
    swapper = make_swapper(clock=clock)
    proxy = SwappableChunkPolicy(swapper, lambda: dep.session.episodes)
    dep.step.policy = proxy
    session, asm = dep.session, dep.step.assembler
    layout = asm.layout

    def feed(t: float) -> None:
        n = len(layout.joint_names)
        asm.update_joint_state(list(layout.joint_names), [0.1] * n, [0.0] * n, arrival_s=t)
        for key, size in zip(layout.keys, layout.sizes, strict=True):
            if key in layout.topic_keys:
                asm.update_observation(key, [0.2] * size, arrival_s=t)

    original = dep.policy.manifest.onnx_sha256
    assert session.begin() == (EpisodeStart(0),) and proxy.sha256 == original
    swapper.announce(_announce(reach_b))
    assert swapper.wait_idle(WAIT_S) and swapper.stats().pending_sha256 == _sha(reach_b)
    for i in range(5):  # verified, but mid-episode: the running bundle keeps driving
        feed(i * PERIOD)
        rec = session.tick(i * PERIOD).record
        assert proxy.sha256 == original and np.isfinite(rec.policy_action).all()
    np.testing.assert_allclose(rec.policy_action, dep.policy.act(rec.observation), atol=1e-6)
    clock.t += 2.5
    events = session.cut()  # the episode boundary
    assert isinstance(events[-1], EpisodeStart) and proxy.sha256 == _sha(reach_b)
    assert proxy.last_switch is not None and proxy.last_switch.kind == "swap"
    assert proxy.last_switch.replaced_sha256 == original and swapper.awaiting_first_tick
    clock.t += 0.5
    feed(10 * PERIOD)
    rec = session.tick(10 * PERIOD).record
    swapper.first_tick()  # what the node reports after the episode's first tick
    new = OnnxPolicy.load(reach_b)
    np.testing.assert_allclose(rec.policy_action, new.act(rec.observation), atol=1e-6)
    assert not np.allclose(rec.policy_action, dep.policy.act(rec.observation), atol=1e-4)
    stats = swapper.stats()
    assert stats.swaps == 1 and stats.active_sha256 == _sha(reach_b) and stats.previous_sha256 == original
    assert stats.pending_sha256 == "" and stats.last_swap_latency_s == pytest.approx(3.0)
    assert stats.active_origin == "run-1@100" and stats.entry().level == OK


def test_refused_bundles_are_counted_and_the_running_one_keeps_running(
    dep: Deployment,
    make_swapper: Callable[..., BundleSwapper],
    reach_b: Path,
    cartpole_lqr_bundle: Path,
    tmp_path: Path,
) -> None:
    swapper = make_swapper()
    original = swapper.active_sha256
    swapper.announce(_announce(_tampered(reach_b, tmp_path / "t"), step=1))
    assert swapper.wait_idle(WAIT_S)
    assert swapper.stats().refusals == 1 and "sha256 mismatch" in swapper.stats().last_refusal
    swapper.announce(_announce(cartpole_lqr_bundle, step=2))
    assert swapper.wait_idle(WAIT_S)
    swapper.note_malformed("not valid JSON")
    assert swapper.at_episode_boundary() is None and swapper.active_sha256 == original
    stats = swapper.stats()
    assert stats.refusals == 3 and stats.malformed == 1 and stats.swaps == 0 and stats.pending_sha256 == ""
    assert stats.latest_event == "refused" and stats.entry().level == WARN
    swapper.announce(_announce(cartpole_lqr_bundle, step=2))
    assert swapper.wait_idle(WAIT_S)
    assert "trained for robot" in swapper.stats().last_refusal and swapper.stats().refusals == 4


def test_a_later_announcement_supersedes_a_pending_one(
    dep: Deployment, make_swapper: Callable[..., BundleSwapper], reach_b: Path, reach_c: Path, reach_bundle: Path
) -> None:
    gate = threading.Event()
    real = deployment_verifier(dep, {})

    def gated(a: BundleAnnouncement) -> OnnxPolicy:
        assert gate.wait(WAIT_S)
        return real(a)

    swapper = make_swapper(verify=gated)
    swapper.announce(_announce(reach_b, step=1))  # taken by the worker, blocked in verification
    deadline = time.monotonic() + WAIT_S
    while not swapper.stats().verifying_sha256 and time.monotonic() < deadline:
        time.sleep(0.01)
    swapper.announce(_announce(reach_c, step=2))  # queued
    assert swapper.announce(_announce(reach_c, step=2)).startswith("duplicate")
    swapper.announce(_announce(reach_b, step=3))  # supersedes the queued reach_c
    gate.set()
    assert swapper.wait_idle(WAIT_S)
    stats = swapper.stats()
    # reach_c (queued) was superseded; reach_b@1's result was discarded because reach_b@3 came after it
    assert stats.superseded == 2 and stats.pending_sha256 == _sha(reach_b) and stats.refusals == 0
    assert swapper.announce(_announce(reach_bundle)).startswith("duplicate: ")  # the active bundle itself
    # a newer verified bundle replaces a pending one
    swapper.announce(_announce(reach_c, step=4))
    assert swapper.wait_idle(WAIT_S) and swapper.stats().pending_sha256 == _sha(reach_c)
    switch = swapper.at_episode_boundary()
    assert switch is not None and switch.sha256 == _sha(reach_c) and swapper.stats().superseded == 3


def _swapped(swapper: BundleSwapper, bundle: Path, step: int = 100) -> None:
    swapper.announce(_announce(bundle, step))
    assert swapper.wait_idle(WAIT_S)
    switch = swapper.at_episode_boundary()
    assert switch is not None and switch.kind == "swap", swapper.stats().last_refusal


def test_automatic_rollback_when_success_drops_and_no_readoption(
    dep: Deployment, make_swapper: Callable[..., BundleSwapper], reach_b: Path
) -> None:
    config = BundleSwapConfig(window_episodes=4, min_episodes=3, rollback_margin=0.25)
    swapper = make_swapper(config)
    proxy = SwappableChunkPolicy(swapper, lambda: dep.session.episodes)
    dep.step.policy = proxy
    session = dep.session
    original = swapper.active_sha256
    session.begin()

    def episode(success: bool, t: float) -> None:
        """One judged episode: a tick, the robot's success flag and episode end, then the roll-over tick."""
        session.tick(t)
        session.on_success(success)
        session.on_episode_done(t)
        session.tick(t + PERIOD)

    for i in range(4):  # the configured bundle: 3 of 4 succeed (window 4)
        episode(i != 0, i * 1.0)
    assert swapper.stats().active_success_rate == pytest.approx(0.75)
    swapper.announce(_announce(reach_b))
    assert swapper.wait_idle(WAIT_S)
    session.cut()  # boundary: swap (a cut episode is not judged)
    assert proxy.sha256 == _sha(reach_b)
    for i in range(2):
        episode(False, 10.0 + i)
    assert proxy.sha256 == _sha(reach_b)  # 2 < min_episodes: not judged yet
    session.tick(20.0)
    session.on_success(True)  # success 1/3 = 0.33 vs 0.75 - 0.25 = 0.5: below
    session.on_episode_done(20.0)
    session.tick(20.05)  # this roll-over credits the episode, judges it and rolls back at once
    assert proxy.sha256 == original and proxy.last_switch is not None and proxy.last_switch.kind == "rollback"
    stats = swapper.stats()
    assert stats.rollbacks == 1 and stats.auto_rollbacks == 1 and stats.blocked == (_sha(reach_b),)
    assert "automatic: success 0.33" in stats.last_rollback and stats.previous_sha256 == ""
    assert stats.entry().level == WARN and stats.active_origin == "configured (rolled back to)"
    assert [e.ended_by for e in session.episodes].count("robot") == 7
    # the rolled-back bundle is not re-adopted when announced again
    message = swapper.announce(_announce(reach_b, step=200))
    assert message.startswith("refused") and "rolled back" in message and swapper.stats().refusals == 1
    assert swapper.wait_idle(WAIT_S) and swapper.at_episode_boundary() is None


def test_no_rollback_within_the_margin_and_readoption_when_configured(
    make_swapper: Callable[..., BundleSwapper], reach_b: Path
) -> None:
    swapper = make_swapper(
        BundleSwapConfig(window_episodes=4, min_episodes=2, rollback_margin=0.5, readopt_rolled_back=True)
    )
    original = swapper.active_sha256
    for ok in (True, True, True, False):
        swapper.record_episode(ok)
    _swapped(swapper, reach_b)
    for ok in (True, False, False):  # 0.33 vs 0.75: a drop of 0.42, inside the margin 0.5
        swapper.record_episode(ok)
        assert swapper.at_episode_boundary() is None
    swapper.record_episode(False)  # 0.25 vs 0.75: a drop of exactly the margin is still not below it
    assert swapper.at_episode_boundary() is None
    swapper.record_episode(False)  # window 4: [F, F, F, F] = 0.0 → below
    switch = swapper.at_episode_boundary()
    assert switch is not None and switch.kind == "rollback" and switch.sha256 == original
    assert swapper.stats().blocked == ()
    _swapped(swapper, reach_b, step=300)  # readopt_rolled_back: announced again, adopted again


def test_manual_rollback_goes_back_at_the_next_boundary_and_drops_the_pending_bundle(
    make_swapper: Callable[..., BundleSwapper], reach_b: Path, reach_c: Path
) -> None:
    swapper = make_swapper()
    original = swapper.active_sha256
    ok, message = swapper.request_rollback()
    assert not ok and "no previous bundle" in message
    _swapped(swapper, reach_b)
    swapper.announce(_announce(reach_c, step=200))
    assert swapper.wait_idle(WAIT_S) and swapper.stats().pending_sha256 == _sha(reach_c)
    ok, message = swapper.request_rollback("operator saw a collision")
    assert ok and "at the next episode start" in message
    assert swapper.active_sha256 == _sha(reach_b)  # not before the boundary
    switch = swapper.at_episode_boundary()
    assert switch is not None and switch.kind == "rollback" and switch.sha256 == original
    assert switch.reason == "manual: operator saw a collision"
    stats = swapper.stats()
    assert stats.rollbacks == 1 and stats.auto_rollbacks == 0 and stats.pending_sha256 == ""
    assert stats.superseded == 1 and stats.blocked == (_sha(reach_b),)
    assert swapper.at_episode_boundary() is None  # one rollback per request; nothing pending
    assert not swapper.request_rollback()[0]  # only one level of history is kept


def test_a_verification_past_its_timeout_is_refused_and_the_next_one_still_runs(
    dep: Deployment, make_swapper: Callable[..., BundleSwapper], reach_b: Path, reach_c: Path
) -> None:
    release = threading.Event()
    real = deployment_verifier(dep, {})

    def verify(a: BundleAnnouncement) -> OnnxPolicy:
        if a.onnx_sha256 == _sha(reach_b):
            release.wait(WAIT_S)  # hangs (a stuck file system, say)
        return real(a)

    swapper = make_swapper(BundleSwapConfig(verify_timeout_s=0.2), verify=verify)
    swapper.announce(_announce(reach_b))
    assert swapper.wait_idle(WAIT_S)
    assert "did not finish within 0.2 s" in swapper.stats().last_refusal
    swapper.announce(_announce(reach_c))
    assert swapper.wait_idle(WAIT_S) and swapper.stats().pending_sha256 == _sha(reach_c)
    release.set()


def test_a_verifier_that_raises_anything_is_a_refusal(
    make_swapper: Callable[..., BundleSwapper], reach_b: Path
) -> None:
    def broken(a: BundleAnnouncement) -> OnnxPolicy:
        raise KeyError("boom")

    swapper = make_swapper(verify=broken)
    swapper.announce(_announce(reach_b))
    assert swapper.wait_idle(WAIT_S)
    assert swapper.stats().refusals == 1 and swapper.stats().last_refusal.endswith("KeyError: 'boom'")


def test_stats_are_plain_finite_values(make_swapper: Callable[..., BundleSwapper], reach_b: Path) -> None:
    swapper = make_swapper()
    before = swapper.stats()
    assert before.last_swap_latency_s is None and before.active_success_rate is None
    assert "nan" not in json.dumps(before.to_json(), allow_nan=False).lower()
    assert before.values()["swap/last_latency_ms"] == "" and before.entry().level == OK
    swapper.first_tick()  # no swap waiting: a no-op
    _swapped(swapper, reach_b)
    swapper.record_episode(True)
    swapper.record_episode(False, bundle_sha256="ef" * 32)  # a bundle no longer held: ignored
    swapper.first_tick()
    after = swapper.stats()
    assert after.last_swap_latency_s is not None and after.last_swap_latency_s >= 0
    assert after.active_episodes == 1 and after.active_success_rate == 1.0 and after.previous_success_rate is None
    values = after.values()
    assert values["swap/swaps"] == "1" and values["swap/active_sha256"] == _sha(reach_b)
    assert all(isinstance(v, str) and "nan" not in v for v in values.values())
    json.dumps(after.to_json(), allow_nan=False)


def test_swap_config_is_validated() -> None:
    for bad in (
        {"window_episodes": 0},
        {"min_episodes": 0},
        {"window_episodes": 3, "min_episodes": 4},
        {"rollback_margin": float("nan")},
        {"rollback_margin": 1.5},
        {"verify_timeout_s": 0.0},
    ):
        with pytest.raises(ValueError, match="swap"):
            BundleSwapConfig(**bad)  # type: ignore[arg-type]


def test_a_closed_swapper_refuses_announcements(make_swapper: Callable[..., BundleSwapper], reach_b: Path) -> None:
    swapper = make_swapper()
    swapper.close()
    assert swapper.announce(_announce(reach_b)).startswith("refused") and swapper.stats().refusals == 1


def test_node_parameters_build_the_swap_config_and_episode_metadata_names_the_bundle(
    dep: Deployment, reach_b: Path
) -> None:
    from ros_nodes.core.deployment import PolicyNodeConfig
    from ros_nodes.core.swap_verify import swap_metadata

    node = PolicyNodeConfig.from_params(
        {"bundle_announce_topic": "/b", "swap_window_episodes": 7, "swap_min_episodes": 2}
    )
    config = BundleSwapConfig.from_node_config(node)
    assert (config.window_episodes, config.min_episodes, config.rollback_margin) == (7, 2, 0.2)
    with pytest.raises(ValueError, match="min_episodes"):
        BundleSwapConfig.from_node_config(PolicyNodeConfig.from_params({"swap_min_episodes": 50}))
    new = OnnxPolicy.load(reach_b)
    meta = swap_metadata(dep.episode_metadata(), new, "run-1@100")
    assert meta["policy_sha256"] == _sha(reach_b) and meta["policy_bundle"] == str(reach_b.resolve())
    assert meta["policy_origin"] == "run-1@100" and meta["robot"] == dep.episode_metadata()["robot"]
    assert json.loads(meta["policy_spec"]) == new.spec.to_json()
