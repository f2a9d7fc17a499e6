"""The README's main job: train SAC, export a verified ONNX bundle, evaluate the bundle, plot.

`--policy diffusion|flow|meanflow` runs the imitation variant instead (`robot_rl.train.demo_generative`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from robot_rl.algos.sac.config import SACConfig
from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train
from robot_rl.train.plot import plot_learning_curves


def run_demo(args: Any) -> int:
    """Run the demo described by `robot_rl.cli.DemoArgs`; prints a summary, returns an exit code."""
    from robot_rl.cli import eval_bundle, export_run

    if args.policy == "residual":
        from robot_rl.train.demo_residual import run_residual_demo

        return run_residual_demo(args)
    if args.policy != "sac":
        from robot_rl.train.demo_generative import run_generative_demo

        return run_generative_demo(args)

    t_start = time.perf_counter()
    sim_suite = args.env.startswith("robot_rl/") and "MetaWorld" not in args.env
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_env = args.env.replace("/", "_")
    cfg = TrainConfig(
        env=args.env,
        total_steps=args.steps,
        seed=args.seed,
        learning_starts=min(1_000, args.steps // 5),
        eval_every=max(args.steps // 10, 1),
        eval_episodes=5,
        checkpoint_every=0,
        out_dir=args.out_dir,
        run_name=f"demo-{safe_env}-{stamp}",
        progress=args.progress,
    )
    # The sample-efficient recipe: it solves Pendulum and Panda reach in about half the steps of the classic one.
    algo_cfg = SACConfig.preset("crossq")
    if sim_suite:
        # Robot observations mix radians, rad/s and metres: normalize them (which also keeps the ONNX parity check
        # in the operating region), and start with a lower temperature, since a 7-DoF action's entropy bonus would
        # otherwise drown a reward measured in metres.
        algo_cfg = dataclasses.replace(algo_cfg, obs_normalization=True, init_alpha=0.1)
    deploy = sim_suite and args.deploy_s > 0
    n_stages = (6 if deploy else 5) if sim_suite else 4
    print(f"[1/{n_stages}] training SAC ({algo_cfg.recipe} recipe) on {args.env} for {args.steps} steps …", flush=True)
    result = train(cfg, "sac", algo_cfg)

    bundle = args.models_dir / f"demo-{safe_env}"
    print(f"[2/{n_stages}] exporting {bundle} and verifying ONNX parity …", flush=True)
    manifest: Any = export_run(result.run_dir, bundle, overwrite=True)[bundle]

    print(f"[3/{n_stages}] evaluating the exported ONNX bundle ({args.eval_episodes} episodes) …", flush=True)
    onnx_eval: Any
    onnx_eval, _ = eval_bundle(bundle, args.env, args.eval_episodes, args.seed)

    sim2sim: dict[str, Any] = {}
    if sim_suite:
        other = "pybullet"
        print(
            f"[4/{n_stages}] sim-to-sim check: the same bundle in the {other} twin ({args.eval_episodes} episodes) …",
            flush=True,
        )
        twin: Any
        twin, _ = eval_bundle(bundle, args.env, args.eval_episodes, args.seed, other)
        sim2sim = {
            "mujoco_success_rate": round(onnx_eval.success_rate, 2),
            "mujoco_final_distance_m": round(onnx_eval.mean_final_distance_m, 4),
            "pybullet_success_rate": round(twin.success_rate, 2),
            "pybullet_final_distance_m": round(twin.mean_final_distance_m, 4),
            "pybullet_eval_return": round(twin.mean_return, 1),
        }

    ros: dict[str, Any] = {}
    if deploy:
        ros = ros_stage(bundle, args, result.run_dir, n_stages)

    print(f"[{n_stages}/{n_stages}] plotting the learning curve …", flush=True)
    png = plot_learning_curves(
        [(f"SAC ({algo_cfg.recipe})", result.run_dir / "eval.csv")],
        result.run_dir / "learning_curve.png",
        title=f"{args.env}: deterministic evaluation return",
    )
    (bundle / "learning_curve.png").write_bytes(png.read_bytes())

    summary = {
        "env": args.env,
        "steps": result.steps,
        "train_wall_s": round(result.train_wall_s, 1),
        "steps_per_s": round(result.steps / result.train_wall_s, 1),
        "torch_eval_return": round(result.final_eval.mean_return, 1),
        "onnx_eval_return": round(onnx_eval.mean_return, 1),
        "onnx_eval_return_std": round(onnx_eval.std_return, 1),
        **sim2sim,
        **ros,
        "parity_max_abs_diff": manifest.parity.get("max_abs_diff"),
        "bundle": str(bundle),
        "onnx_sha256": manifest.onnx_sha256,
        "run_dir": str(result.run_dir),
        "learning_curve": str(png),
    }
    return finish_summary(summary, args, result.run_dir, t_start, "robot-rl demo summary")


def finish_summary(summary: dict[str, Any], args: Any, run_dir: Path, t_start: float, title: str) -> int:
    """Stamp the demo's wall time, write `<run_dir>/demo_summary.json` (and the README figures when asked), print
    the summary; returns the exit status 0."""
    summary["demo_wall_s"] = round(time.perf_counter() - t_start, 1)
    (run_dir / "demo_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if getattr(args, "figures_out", None):
        write_figures(summary, args, Path(args.figures_out))
    width = max(len(k) for k in summary)
    print(f"\n=== {title} ===")
    for k, v in summary.items():
        print(f"  {k:<{width}}  {v}")
    return 0


def write_figures(summary: dict[str, Any], args: Any, path: Path) -> None:
    """The summary as README figures (docs/benchmarks/demo.json): what ran, how long, on what machine."""
    if args.policy == "sac":
        argv = [f"--env {args.env}", f"--steps {args.steps}"]
    elif args.policy == "residual":
        argv = [f"--policy residual --env {args.env} --expert-episodes {args.expert_episodes}"]
        argv.append(f"--updates {args.updates} --steps {args.steps}")
    else:
        argv = [f"--policy {args.policy}", f"--env {args.env}", f"--expert-episodes {args.expert_episodes}"]
        argv.append(f"--updates {args.updates}")
        if args.sampler_steps:
            argv.append(f"--sampler-steps {args.sampler_steps}")
    argv += [f"--seed {args.seed}", f"--deploy-s {args.deploy_s:g}"]
    figures = {
        "source": "written by `robot-rl demo --figures-out` at the end of the run",
        "command": "robot-rl demo " + " ".join(argv),
        "wall_s": summary["demo_wall_s"],
        "conditions": f"a run on {platform.machine()} with {os.cpu_count()} CPUs (Python {platform.python_version()})",
        "deploy_s": args.deploy_s,
        "eval_episodes": args.eval_episodes,
        "summary": summary,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1) + "\n")


def ros_stage(bundle: Path, args: Any, run_dir: Path, n_stages: int, note: str = "") -> dict[str, Any]:
    """Deploy the bundle in ROS 2 on the simulated robot (launch file, safety chain, takeover, MCAP); the
    second-to-last of `n_stages` stages. `note` adds to the stage line (e.g. how a chunked bundle runs)."""
    print(
        f"[{n_stages - 1}/{n_stages}] deploying in ROS 2 against the simulated robot for {args.deploy_s:g} s "
        f"(launch/sim_deploy.launch.xml: safety chain on, scripted takeover mid-run, MCAP recording"
        f"{'; ' + note if note else ''}) …",
        flush=True,
    )
    try:
        import rclpy  # noqa: F401
    except ImportError:
        print("    skipped: rclpy is not installed (pip install -e '.[ros]')", flush=True)
        return {"ros_deployment": "skipped (no rclpy)"}
    from ros_nodes.demo_deploy import deploy_in_sim  # ros_nodes only when ROS is there: robot_rl stays ROS-free

    return deploy_in_sim(bundle, args.env, run_dir / "ros_deploy", duration_s=args.deploy_s)
