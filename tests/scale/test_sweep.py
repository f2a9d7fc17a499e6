"""`robot-rl sweep` on Ray Tune: ordinary run folders, an aggregated table that matches them, retries from
checkpoints, resume, the plan, and the error without Ray.

One local Ray (2 CPUs, loopback) serves the whole module; each trial is a tiny SAC run on Pendulum-v1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.tune")

from robot_rl.cli import main
from robot_rl.core.stats import bootstrap_ci, iqm
from robot_rl.scale.ray_env import init_ray, shutdown_ray
from robot_rl.scale.sweep_config import SweepOptions, build_plan

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.scale.flaky_plugin"
TINY = [
    "--env", "Pendulum-v1", "--total-steps", "300", "--learning-starts", "100", "--eval-episodes", "1",
    "--log-every", "100", "--no-tensorboard", "--actor-hidden", "32", "32", "--critic-hidden", "32", "32",
    "--batch-size", "32", "--no-progress",
]  # fmt: skip
"""300 env steps (one Pendulum episode is 200): a checkpoint at the episode boundary at step 200, then 100 more."""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray for the module's sweeps (the sweep CLI reuses it and leaves it running)."""
    temp = tempfile.mkdtemp(prefix="rr", dir="/tmp")  # unix socket paths under it must stay short
    # Workers import the test plug-in by name wherever pytest was started from.
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    ray = init_ray(num_cpus=2, temp_dir=temp, runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    try:
        yield ray
    finally:
        shutdown_ray()
        shutil.rmtree(temp, ignore_errors=True)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _attempts(sweep: Path, name: str) -> list[dict[str, Any]]:
    return list(_json(sweep / "attempts" / f"{name}.json")["attempts"])


def test_local_ray_listens_on_loopback_only(local_ray: Any) -> None:
    nodes = local_ray.nodes()
    assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)
    assert local_ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


@pytest.mark.slow
def test_grid_sweep_makes_ordinary_runs_and_a_table_computed_from_their_summaries(
    local_ray: Any, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    args = ["sweep", "sac", *TINY, "--eval-every", "0", "--seeds", "0", "1", "--grid", "algo.critic_lr=1e-3,3e-4"]
    assert main([*args, "--grid", "train.learning-starts=100", "--out", str(sweep)]) == 0

    record = _json(sweep / "sweep.json")
    assert record["status"] == "finished"
    assert [c["overrides"] for c in record["plan"]["configs"]] == [
        {"algo.critic_lr": 1e-3, "train.learning_starts": 100},
        {"algo.critic_lr": 3e-4, "train.learning_starts": 100},
    ]
    names = ["c00-s0", "c00-s1", "c01-s0", "c01-s1"]
    assert sorted(record["trials"]) == names
    for name in names:
        run = sweep / "trials" / name
        for part in ("config.json", "metrics.jsonl", "eval.csv", "summary.json", "checkpoints/latest"):
            assert (run / part).exists(), f"{run} lacks {part}"
        cfg = _json(run / "config.json")
        assert cfg["algo"] == "sac"
        assert cfg["algo_config"]["critic_lr"] == (1e-3 if name.startswith("c00") else 3e-4)
        assert cfg["train"]["seed"] == int(name[-1]) and cfg["train"]["torch_threads"] == 1
        assert _json(run / "summary.json")["steps"] == 300
        assert record["trials"][name]["status"] == "finished" and record["trials"][name]["retries"] == 0

    results = _json(sweep / "results.json")
    markdown = (sweep / "results.md").read_text()
    for row in results["configs"]:
        summaries = [_json(sweep / "trials" / f"{row['config']}-s{seed}" / "summary.json") for seed in (0, 1)]
        finals = [s["final_eval_mean_return"] for s in summaries]
        assert row["seeds"]["finished"] == [0, 1]
        assert row["final_eval_returns"] == finals
        assert row["iqm"] == iqm(finals)
        assert row["ci95"] == list(bootstrap_ci(sorted(finals)))
        assert row["train_wall_s_mean"] == pytest.approx(sum(s["train_wall_s"] for s in summaries) / 2)
        assert f"| {row['config']} |" in markdown and f"{row['iqm']:.1f}" in markdown
    assert sorted(r["rank"] for r in results["configs"]) == [1, 2]


@pytest.mark.slow
def test_a_failing_trial_is_retried_from_its_checkpoint_and_the_retry_is_counted(
    local_ray: Any, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    marker = tmp_path / "failed-once"
    # Update 110 is env step 210: after the checkpoint at the episode boundary (step 200).
    flaky = ["--fail-at-update", "110", "--fail-marker", str(marker), "--checkpoint-every", "100"]
    args = ["--plugin", PLUGIN, "sweep", "flaky_sac", *TINY, "--eval-every", "0", *flaky, "--max-failures", "1"]
    assert main([*args, "--out", str(sweep)]) == 0

    assert marker.exists()  # the first attempt did fail
    first, second = _attempts(sweep, "c00-s0")
    assert first["outcome"] == "failed" and "InjectedFailure" in first["error"]
    assert first["resumed_from_step"] is None
    assert second["outcome"] == "finished" and second["resumed_from_step"] == 200
    trial = _json(sweep / "sweep.json")["trials"]["c00-s0"]
    assert trial["status"] == "finished" and trial["attempts"] == 2 and trial["retries"] == 1
    assert _json(sweep / "trials" / "c00-s0" / "summary.json")["steps"] == 300


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_its_unfinished_trials_and_skips_finished_ones(
    local_ray: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    marker = tmp_path / "failed-once"
    # c01 fails after its checkpoint and has no retries left: the sweep ends with c00 finished and c01 unfinished,
    # the state a Ctrl-C or a lost driver leaves behind too.
    flaky = ["--grid", "algo.fail_at_update=0,110", "--fail-marker", str(marker), "--checkpoint-every", "100"]
    args = ["--plugin", PLUGIN, "sweep", "flaky_sac", *TINY, "--eval-every", "0", *flaky, "--max-failures", "0"]
    assert main([*args, "--out", str(sweep)]) == 1
    record = _json(sweep / "sweep.json")
    assert record["status"] == "failed"
    assert record["trials"]["c00-s0"]["status"] == "finished" and record["trials"]["c01-s0"]["status"] == "failed"
    assert not (sweep / "trials" / "c01-s0" / "summary.json").exists()
    finished_summary = sweep / "trials" / "c00-s0" / "summary.json"
    stamp = finished_summary.stat().st_mtime_ns
    assert "--resume" in capsys.readouterr().out

    # A different plan is refused; only ALGO, --out and --resume (and how to run) continue the saved one.
    assert main(["--plugin", PLUGIN, "sweep", "flaky_sac", "--seeds", "5", "--out", str(sweep), "--resume"]) == 2
    assert "different sweep" in capsys.readouterr().err
    assert main(["--plugin", PLUGIN, "sweep", "flaky_sac", "--out", str(sweep), "--resume", "--no-progress"]) == 0

    record = _json(sweep / "sweep.json")
    assert record["status"] == "finished" and len(record["sessions"]) == 2
    assert record["sessions"][1]["trials"] == ["c01-s0"]  # the finished trial was not run again
    assert finished_summary.stat().st_mtime_ns == stamp and len(_attempts(sweep, "c00-s0")) == 1
    resumed = _attempts(sweep, "c01-s0")
    assert [a["outcome"] for a in resumed] == ["failed", "finished"] and resumed[1]["resumed_from_step"] == 200
    assert _json(sweep / "trials" / "c01-s0" / "summary.json")["steps"] == 300
    assert [r["seeds"]["finished"] for r in _json(sweep / "results.json")["configs"]] == [[0], [0]]


def test_random_search_draws_one_configuration_for_all_seeds_and_plans_asha() -> None:
    from robot_rl.algos.sac import SACConfig
    from robot_rl.train.config import TrainConfig

    opts = SweepOptions(
        search="random",
        samples=3,
        seeds=(0, 1),
        space=("algo.critic_lr=loguniform:1e-4,1e-2", "actor-hidden=choice:[[32],[64,64]]"),
        grid=("train.total_steps=1000,2000",),
    )
    train = TrainConfig(eval_every=250)
    plan = build_plan(opts, "sac", "robot_rl.algos.sac", train, SACConfig(), SACConfig)
    assert len(plan.configs) == 6 and len(plan.trials) == 12  # 3 draws × 2 grid points, × 2 seeds
    assert {t.config for t in plan.trials if t.seed == 0} == {t.config for t in plan.trials if t.seed == 1}
    for c in plan.configs:
        assert 1e-4 <= c.overrides["algo.critic_lr"] <= 1e-2 and c.overrides["algo.actor_hidden"] in ([32], [64, 64])
    assert plan.configs[0].overrides["algo.critic_lr"] == plan.configs[1].overrides["algo.critic_lr"]  # one draw
    assert plan.scheduler.kind == "asha" and plan.scheduler.max_t == 2000 and plan.scheduler.grace_period == 250
    # The same search seed draws the same configurations (a resumed sweep must find its plan again).
    assert build_plan(opts, "sac", "robot_rl.algos.sac", train, SACConfig(), SACConfig) == plan
    cfg, algo = plan.trial_configs(plan.trials[3], Path("/sweep/trials"))
    assert (cfg.seed, cfg.run_name, cfg.out_dir, cfg.progress, cfg.torch_threads) == (
        1,
        "c01-s1",
        Path("/sweep/trials"),
        False,
        1,
    )
    assert algo["critic_lr"] == plan.configs[1].overrides["algo.critic_lr"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"grid": ("algo.no_such_field=1,2",)}, "unknown sweep key 'algo.no_such_field'"),
        ({"grid": ("seed=1,2",)}, "use --seeds"),
        ({"grid": ("algo.critic_lr",)}, "expected KEY=VALUES"),
        ({"grid": ("train.total_steps=0,100",)}, "total_steps must be >= 1"),
        ({"space": ("algo.critic_lr=loguniform:1e-4,1e-2",)}, "add --search random"),
        ({"search": "random", "space": ("algo.critic_lr=lognormal:1,2",)}, "DIST one of"),
        ({"search": "random", "space": ("algo.critic_lr=loguniform:1e-2,1e-4",)}, "LOW < HIGH"),
        ({"scheduler": "asha"}, "--eval-every > 0"),
    ],
)
def test_bad_sweep_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    from robot_rl.algos.sac import SACConfig
    from robot_rl.train.config import TrainConfig

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_plan(SweepOptions(**options), "sac", "", TrainConfig(eval_every=0), SACConfig(), SACConfig)


def test_without_ray_the_sweep_names_the_extra_and_help_still_lists_every_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert main(["sweep", "sac", "--out", str(tmp_path / "sweep")]) == 2
    assert 'pip install "robot-rl[scale]"' in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()

    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    for f in dataclasses.fields(SweepOptions):
        assert f"--{f.name.replace('_', '-')}" in help_text
    assert main(["envs", "--help"]) == 0  # the rest of the CLI does not need Ray


def test_asha_stops_a_laggard_and_a_finished_trial_is_not_counted_as_stopped() -> None:
    from types import SimpleNamespace

    from robot_rl.algos.sac import SACConfig
    from robot_rl.scale.sweep import _asha
    from robot_rl.train.config import TrainConfig

    opts = SweepOptions(search="random", samples=2, space=("algo.tau=uniform:0.001,0.01",), reduction_factor=2)
    plan = build_plan(opts, "sac", "", TrainConfig(total_steps=400, eval_every=100), SACConfig(), SACConfig)
    scheduler = _asha(plan)
    good, bad = (SimpleNamespace(trial_id=n, config={"name": n}) for n in ("c00-s0", "c01-s0"))
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)
    assert scheduler.on_trial_result(None, good, {"step": 100, "eval_return": -100.0}) == "CONTINUE"
    assert scheduler.on_trial_result(None, bad, {"step": 100, "eval_return": -900.0}) == "STOP"
    # Reaching max_t stops a trial too, but after it finished: that is no early stop.
    assert scheduler.on_trial_result(None, good, {"step": 400, "eval_return": -50.0, "finished": True}) == "STOP"
    assert scheduler.stopped_early == {"c01-s0"}
