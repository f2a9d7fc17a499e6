"""The LAC robustness protocol: every perturbation changes the physics in both engines and is undone on the next
nominal episode, pushes land at their stated step, latency shifts actions by exactly k steps, noise is seeded,
the report is deterministic, and the CLI writes JSON and rejects what it cannot run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.export.runtime import OnnxPolicy
from robot_rl.train.robustness import RobustnessConfig, parse_perturbation, run_robustness
from robot_rl.train.robustness_perturb import KINDS, get_kind
from sim.env import RobotTaskEnv
from sim.errors import SimError

ENGINES = ("mujoco", "pybullet")
CARTPOLE = "robot_rl/CartPoleBalance-v0"


def rollout(env: RobotTaskEnv, actions: np.ndarray, options: dict[str, Any] | None = None, seed: int = 3) -> np.ndarray:
    """Observations of one episode that plays `actions` (normalized) from `reset(seed, options)`."""
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.array(out)


def setup_options(kind: str, level: float, env: RobotTaskEnv) -> dict[str, Any]:
    return get_kind(kind).setup(level, env, RobustnessConfig()).reset_options


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kind", "level"), [("mass", 1.7), ("pole_length", 1.5)])
def test_cartpole_model_perturbation_changes_physics_and_is_undone(engine: str, kind: str, level: float) -> None:
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    # A constant push on the cart: with gravity alone a uniform mass scale would change no acceleration.
    actions = np.full((25, 1), 0.1)
    try:
        nominal = rollout(env, actions)
        params0 = env.backend.model_parameters()
        perturbed = rollout(env, actions, setup_options(kind, level, env))
        params1 = env.backend.model_parameters()
        again = rollout(env, actions)
        params2 = env.backend.model_parameters()
    finally:
        env.close()
    assert np.abs(perturbed - nominal).max() > 1e-3, "the perturbation did not change the trajectory"
    np.testing.assert_array_equal(again, nominal)  # nothing leaked into the next nominal episode
    for key in params0:
        np.testing.assert_array_equal(params2[key], params0[key])
    pole = int(np.argmax(params0["body_com_m"][:, 2]))  # the only body whose centre of mass is off its frame
    if kind == "mass":
        np.testing.assert_allclose(params1["body_mass_kg"], params0["body_mass_kg"] * level)
    else:
        np.testing.assert_allclose(params1["body_com_m"][pole], params0["body_com_m"][pole] * level)
        np.testing.assert_allclose(params1["body_inertia_kg_m2"][pole], params0["body_inertia_kg_m2"][pole] * level**2)
        np.testing.assert_array_equal(params1["body_mass_kg"], params0["body_mass_kg"])


@pytest.mark.parametrize("engine", ENGINES)
def test_damping_scales_joint_damping(engine: str) -> None:
    env = RobotTaskEnv(task="reach", robot="iiwa", backend=engine, interface="joint_effort")  # URDF damping 0.5
    actions = np.full((15, 7), 0.05)
    try:
        nominal = rollout(env, actions)
        d0 = env.backend.model_parameters()["joint_damping"]
        perturbed = rollout(env, actions, setup_options("damping", 4.0, env))
        d1 = env.backend.model_parameters()["joint_damping"]
        again = rollout(env, actions)
    finally:
        env.close()
    assert np.all(d0 > 0)
    np.testing.assert_allclose(d1, 4.0 * d0)
    assert np.abs(perturbed - nominal).max() > 1e-4
    np.testing.assert_array_equal(again, nominal)


@pytest.mark.parametrize("engine", ENGINES)
def test_friction_changes_how_far_a_pushed_puck_slides(engine: str) -> None:
    env = RobotTaskEnv(task="push", backend=engine)
    hold = np.zeros(7)

    def slide(options: dict[str, Any] | None) -> float:
        env.reset(seed=1, options=options)
        start, _ = env.backend.object_pose("puck")
        env.backend.apply_force("puck", np.array([6.0, 0.0, 0.0]), physics_steps=env.n_substeps)
        for _ in range(10):
            env.step(hold)
        end, _ = env.backend.object_pose("puck")
        return float(end[0] - start[0])

    try:
        nominal = slide(None)
        slippery = slide(setup_options("friction", 0.25, env))
        again = slide(None)
    finally:
        env.close()
    assert slippery > nominal + 1e-3, (slippery, nominal)
    assert again == nominal


@pytest.mark.parametrize("engine", ENGINES)
def test_impulse_changes_momentum_by_force_times_control_period(engine: str) -> None:
    """Cart and pole slide freely along x, so a push's whole effect on their x momentum is F·dt."""
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    m_cart, m_pole, l_com = 1.0, 0.1, 0.5  # cartpole.urdf

    def momentum_x(obs: np.ndarray) -> float:
        _, theta, xdot, thetadot = obs
        return (m_cart + m_pole) * xdot + m_pole * l_com * np.cos(theta) * thetadot

    try:
        obs, _ = env.reset(seed=0)
        before = momentum_x(obs)
        env.backend.apply_force("pole", np.array([10.0, 0.0, 0.0]), physics_steps=env.n_substeps)
        obs, *_ = env.step(np.zeros(1))
        after = momentum_x(obs)
    finally:
        env.close()
    assert after - before == pytest.approx(10.0 * env.control_dt_s, rel=0.03)


@pytest.mark.parametrize("engine", ENGINES)
def test_reset_options_are_checked(engine: str) -> None:
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    try:
        with pytest.raises(SimError, match="unknown reset options"):
            env.reset(seed=0, options={"gravity": 2.0})
        with pytest.raises(SimError, match="unknown link 'pol'"):
            env.reset(seed=0, options={"link_length_scale": {"pol": 1.5}})
        with pytest.raises(SimError, match="finite and > 0"):
            env.reset(seed=0, options={"link_length_scale": {"pole": 0.0}})
        with pytest.raises(SimError, match="DomainRandomization"):
            env.reset(seed=0, options={"randomization": {"mass_scale": (2.0, 2.0)}})
    finally:
        env.close()


class Recorder:
    """A policy (the cart-pole LQR bundle) that records what it saw and did, per episode."""

    def __init__(self, bundle: Path) -> None:
        self.policy = OnnxPolicy.load(bundle)
        self.obs: list[list[np.ndarray]] = []

    def reset(self, first_obs: Any) -> None:
        self.policy.reset()
        self.obs.append([])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.obs[-1].append(np.array(obs))
        return self.policy.act(obs)


@pytest.mark.parametrize("engine", ENGINES)
def test_impulse_acts_at_the_stated_time_only(cartpole_lqr_bundle: Path, engine: str) -> None:
    rec = Recorder(cartpole_lqr_bundle)
    config = RobustnessConfig(perturbations=(("impulse", (5.0,)),), episodes=1, impulse_time_s=0.5)
    run_robustness(rec, CARTPOLE, config, backend=engine, spec=rec.policy.spec, on_reset=rec.reset)
    nominal, pushed = (np.array(o) for o in rec.obs)  # levels ascending: 0 N first
    k = round(0.5 * 50)  # 50 Hz control
    # obs[t] is what the policy sees before step t: the push acts during step k, so obs[k + 1] is the first to differ.
    np.testing.assert_array_equal(pushed[: k + 1], nominal[: k + 1])
    assert np.abs(pushed[k + 1] - nominal[k + 1]).max() > 1e-3


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("k", [1, 3])
def test_latency_delays_actions_by_exactly_k_steps(engine: str, k: int) -> None:
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    sent = np.random.default_rng(0).uniform(-0.2, 0.2, size=(12, 1))
    try:
        env.reset(seed=0, options=setup_options("latency", float(k), env))
        applied = [env.step(a)[4]["applied_action"] for a in sent]
    finally:
        env.close()
    applied_arr = np.array(applied)
    np.testing.assert_array_equal(applied_arr[:k], np.zeros((k, 1)))  # the FIFO starts with the hold action
    np.testing.assert_allclose(applied_arr[k:], sent[:-k])


@pytest.mark.parametrize("engine", ENGINES)
def test_obs_noise_is_seeded_and_reproducible(engine: str) -> None:
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    actions = np.zeros((20, 1))
    try:
        clean = rollout(env, actions)
        noisy = rollout(env, actions, setup_options("obs_noise", 0.05, env))
        noisy_again = rollout(env, actions, setup_options("obs_noise", 0.05, env))
        other_seed = rollout(env, actions, setup_options("obs_noise", 0.05, env), seed=4)
        clean_again = rollout(env, actions)
    finally:
        env.close()
    np.testing.assert_array_equal(noisy, noisy_again)
    np.testing.assert_array_equal(clean_again, clean)
    noise = noisy - clean  # zero actions: the noise never feeds back into the physics
    assert 0.03 < noise.std() < 0.07
    assert not np.array_equal(other_seed - rollout_seed4_clean(engine, actions), noise)


def rollout_seed4_clean(engine: str, actions: np.ndarray) -> np.ndarray:
    env = RobotTaskEnv(task="cartpole_balance", backend=engine)
    try:
        return rollout(env, actions, seed=4)
    finally:
        env.close()


def test_report_is_deterministic_and_its_nominal_rows_match_eval(cartpole_lqr_bundle: Path) -> None:
    from robot_rl.cli import eval_bundle

    policy = OnnxPolicy.load(cartpole_lqr_bundle)
    config = RobustnessConfig(
        perturbations=(("mass", (2.0,)), ("pole_length", (1.5,)), ("obs_noise", (0.02,)), ("latency", (2.0,))),
        episodes=2,
        seed=7,
    )

    def report() -> dict[str, Any]:
        return run_robustness(policy.act, CARTPOLE, config, spec=policy.spec, on_reset=policy.reset).to_json()

    first, second = report(), report()
    assert first == second
    rows = first["rows"]
    assert [(r["kind"], r["level"]) for r in rows] == [
        ("mass", 1.0), ("mass", 2.0), ("pole_length", 1.0), ("pole_length", 1.5),
        ("obs_noise", 0.0), ("obs_noise", 0.02), ("latency", 0.0), ("latency", 2.0),
    ]  # fmt: skip
    ev, _ = eval_bundle(cartpole_lqr_bundle, CARTPOLE, 2, 7)
    for row in rows[::2]:  # every kind's nominal level is the plain evaluation, on the same seeds
        assert row["mean_return"] == pytest.approx(ev.mean_return, abs=1e-9)
        assert row["success_rate"] == ev.success_rate
    assert all(r["mean_cost"] is not None for r in rows)  # the cart-pole reports info["cost"]
    assert rows[3]["failure_rate"] == 1.0  # the LQR gain tuned for the nominal pole cannot hold a 1.5x one


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("env_id", "bundle"), [(CARTPOLE, "cartpole_lqr_bundle"), ("robot_rl/PandaReach-v0", "reach_bundle")]
)
def test_runs_on_cartpole_and_reach_in_both_engines(
    request: pytest.FixtureRequest, engine: str, env_id: str, bundle: str
) -> None:
    policy = OnnxPolicy.load(request.getfixturevalue(bundle))
    ticks: list[int] = []
    report = run_robustness(
        policy.act,
        env_id,
        RobustnessConfig(perturbations=(("mass", (1.5,)), ("impulse", ()), ("latency", (1.0,))), episodes=1),
        backend=engine,
        spec=policy.spec,
        on_reset=policy.reset,
        progress=ticks.append,
    )
    assert report.backend == engine
    assert len(ticks) == len(report.rows) == 2 + len(KINDS["impulse"].default_levels(_env(env_id))) + 2
    assert all(0.0 <= r.failure_rate <= 1.0 for r in report.rows)


def _env(env_id: str) -> Any:
    from robot_rl.train.envs import make_env

    env = make_env(env_id)
    env.close()
    return env.unwrapped


def test_inapplicable_kinds_are_refused_and_left_out_of_the_defaults(cartpole_lqr_bundle: Path) -> None:
    policy = OnnxPolicy.load(cartpole_lqr_bundle)
    with pytest.raises(ValueError, match="no joint damping"):
        run_robustness(policy.act, CARTPOLE, RobustnessConfig(perturbations=(("damping", ()),)), spec=policy.spec)
    with pytest.raises(ValueError, match="no object to slide"):
        run_robustness(policy.act, CARTPOLE, RobustnessConfig(perturbations=(("friction", ()),)), spec=policy.spec)
    plan = run_robustness(
        policy.act, CARTPOLE, RobustnessConfig(episodes=1), spec=policy.spec, on_reset=policy.reset
    ).config.perturbations
    assert [k for k, _ in plan] == ["mass", "pole_length", "impulse", "obs_noise", "latency"]


def test_parse_perturbation_and_clear_errors() -> None:
    assert parse_perturbation("mass:0.5,2") == ("mass", (0.5, 2.0))
    assert parse_perturbation("latency") == ("latency", ())
    with pytest.raises(ValueError, match="valid kinds: mass, pole_length"):
        parse_perturbation("gravity:1")
    with pytest.raises(ValueError, match="factor > 0"):
        parse_perturbation("mass:0")
    with pytest.raises(ValueError, match="whole number"):
        parse_perturbation("latency:1.5")
    with pytest.raises(ValueError, match="not a number"):
        parse_perturbation("impulse:ten")
    with pytest.raises(ValueError, match=">= 0"):
        parse_perturbation("obs_noise:-0.1")
    with pytest.raises(ValueError, match="listed twice"):
        RobustnessConfig(perturbations=(("mass", ()), ("mass", (2.0,))))


def test_cli_writes_json_and_rejects_bad_kinds(
    cartpole_lqr_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "robust.json"
    base = ["eval", "--policy", str(cartpole_lqr_bundle), "--robustness", "--episodes", "1", "--no-progress"]
    assert main([*base, "--perturb", "mass:1.5", "latency:1", "--backend", "pybullet", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["env_id"] == CARTPOLE and data["backend"] == "pybullet"
    assert [(r["kind"], r["level"]) for r in data["rows"]] == [
        ("mass", 1.0),
        ("mass", 1.5),
        ("latency", 0.0),
        ("latency", 1.0),
    ]
    printed = capsys.readouterr().out
    assert "failure" in printed and f"wrote {out}" in printed

    assert main([*base, "--perturb", "gravity:2"]) == 2
    assert "valid kinds: mass, pole_length, damping, friction, impulse, obs_noise, latency" in capsys.readouterr().err
    assert main([*base, "--perturb", "mass:-1"]) == 2
    assert "mass" in capsys.readouterr().err
    assert main([*base, "--perturb", "damping"]) == 2
    assert "no joint damping" in capsys.readouterr().err
    assert main(["eval", "--policy", str(cartpole_lqr_bundle), "--perturb", "mass:2"]) == 2  # needs --robustness
