"""`robot-rl demo --policy residual`: the whole ladder on one task.

Scripted-expert demonstrations → a base learned from them offline (`--residual-base bc`: an MLP; `flow`: a chunked
flow policy) → residual SAC on top of it (online, the demonstrations mixed into every batch, replayed through the
base) → one composite bundle (a BC base and the residual in one verified graph; a flow base as its own bundle
inside the composite's directory, pinned by sha256) → the base and the composite evaluated in MuJoCo and in the
PyBullet twin on the same episodes → the composite deployed in ROS 2 against the simulated robot. The summary
reports the base's and the fine-tuned policy's success side by side.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train
from robot_rl.train.plot import plot_learning_curves

RESIDUAL_LEARNER = "residual_sac"
"""The residual learner the demo trains (SAC: its stochastic residual explores around the base)."""


def run_residual_demo(args: Any) -> int:
    """Run the ladder described by `robot_rl.cli.DemoArgs` with `--policy residual` (`--expert-episodes`
    demonstrations, `--updates` BC updates, `--steps` residual env steps); returns an exit code."""
    from robot_rl.algos.registry import get_algorithm
    from robot_rl.cli import eval_bundle, export_run
    from robot_rl.train.demo import finish_summary, ros_stage
    from robot_rl.train.demo_generative import _expert_dataset

    t_start = time.perf_counter()
    if not args.env.startswith("robot_rl/") or "MetaWorld" in args.env:
        raise ValueError(f"--policy residual runs on a robot_rl/* suite task with an expert, got {args.env}")
    if min(args.updates, args.expert_episodes, args.steps) < 1:
        raise ValueError("--updates, --expert-episodes and --steps must be >= 1")
    deploy = args.deploy_s > 0
    n_stages = 7 + int(deploy)
    safe_env = args.env.replace("/", "_")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.out_dir / f"demo-residual-{safe_env}-{stamp}"

    print(f"[1/{n_stages}] recording {args.expert_episodes} scripted-expert episodes of {args.env} …", flush=True)
    dataset_dir = run_dir / "expert_dataset"
    expert = _expert_dataset(args.env, args.expert_episodes, args.seed, dataset_dir, args.progress)

    base_algo = args.residual_base
    print(f"[2/{n_stages}] training the {base_algo} base offline for {args.updates} updates …", flush=True)
    common = {"env": args.env, "seed": args.seed, "checkpoint_every": 0, "out_dir": args.out_dir}
    base_cfg = TrainConfig(
        **common,
        data="offline",
        dataset=str(dataset_dir),
        total_steps=args.updates,
        eval_every=max(args.updates // 4, 1),
        eval_episodes=5,
        log_every=max(min(args.updates // 10, 1_000), 1),
        run_name=f"demo-residual-{safe_env}-{stamp}-base",
        progress=args.progress,
    )
    base = train(base_cfg, base_algo, get_algorithm(base_algo).default_config())

    print(
        f"[3/{n_stages}] residual SAC on the base for {args.steps} env steps (demonstrations mixed in, 50%) …",
        flush=True,
    )
    residual_cfg = TrainConfig(
        **common,
        data="mixed",
        dataset=str(dataset_dir),
        demo_ratio=0.5,
        total_steps=args.steps,
        learning_starts=min(1_000, args.steps // 5),
        eval_every=max(args.steps // 10, 1),
        eval_episodes=5,
        log_every=max(min(args.steps // 10, 1_000), 1),
        run_name=run_dir.name,
        progress=args.progress,
    )
    algo_cfg = dataclasses.replace(get_algorithm(RESIDUAL_LEARNER).default_config(), base=str(base.run_dir))
    result = train(residual_cfg, RESIDUAL_LEARNER, algo_cfg)

    base_bundle = args.models_dir / f"demo-residual-base-{safe_env}"
    bundle = args.models_dir / f"demo-residual-{safe_env}"
    what = "one graph" if base_algo == "bc" else "the residual's graph on the base bundle"
    print(f"[4/{n_stages}] exporting the base and the composite (base + residual: {what}), verifying parity …")
    export_run(base.run_dir, base_bundle, overwrite=True)
    manifest: Any = export_run(result.run_dir, bundle, overwrite=True)[bundle]

    sims: dict[str, Any] = {}
    for stage, engine in ((5, "mujoco"), (6, "pybullet")):
        print(
            f"[{stage}/{n_stages}] the base and the composite in {engine} ({args.eval_episodes} episodes each) …",
            flush=True,
        )
        before: Any
        after: Any
        before, _ = eval_bundle(base_bundle, args.env, args.eval_episodes, args.seed, engine)
        after, _ = eval_bundle(bundle, args.env, args.eval_episodes, args.seed, engine)
        sims |= {
            f"{engine}_base_success_rate": round(before.success_rate, 2),
            f"{engine}_success_rate": round(after.success_rate, 2),
            f"{engine}_base_return": round(before.mean_return, 1),
            f"{engine}_return": round(after.mean_return, 1),
        }

    ros: dict[str, Any] = {}
    if deploy:
        ros = ros_stage(bundle, args, result.run_dir, n_stages, f"the composite bundle: base and residual, {what}")

    print(f"[{n_stages}/{n_stages}] plotting the learning curves …", flush=True)
    png = plot_learning_curves(
        [("residual SAC", result.run_dir / "eval.csv")],
        result.run_dir / "learning_curve.png",
        title=f"{args.env}: residual SAC on a {base_algo} base from {args.expert_episodes} expert episodes "
        "(x: env steps)",
    )
    summary = {
        "policy": "residual",
        "env": args.env,
        "expert_episodes": expert["episodes"],
        "expert_success_rate": expert["success_rate"],
        "base": base_algo,
        "base_updates": base.steps,
        "residual_learner": RESIDUAL_LEARNER,
        "steps": result.steps,
        "step_unit": "env steps",
        "train_wall_s": round(base.train_wall_s + result.train_wall_s, 1),
        **sims,
        **ros,
        "parity_max_abs_diff": manifest.parity.get("max_abs_diff"),
        "bundle": str(bundle),
        "base_bundle": str(base_bundle),
        "onnx_sha256": manifest.onnx_sha256,
        "run_dir": str(result.run_dir),
        "base_run_dir": str(base.run_dir),
        "learning_curve": str(png),
    }
    return finish_summary(summary, args, result.run_dir, t_start, "robot-rl demo summary (residual)")
