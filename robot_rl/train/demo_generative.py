"""`robot-rl demo --policy diffusion|flow|meanflow`: the imitation path end to end, like the SAC demo.

Scripted-expert dataset → offline training of a generative chunk policy → export (the sampler unrolled inside a
verified bundle) → the bundle evaluated in MuJoCo and in the PyBullet twin → the chunked bundle deployed in ROS 2
against the simulated robot (receding horizon, asynchronous planning, safety chain, scripted takeover, MCAP).
The summary keys parallel the SAC demo's (`steps` counts gradient updates here, as offline runs do everywhere),
plus the dataset, the sampler, the chunk layout and the node's chunk counters.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from robot_rl.train.config import TrainConfig
from robot_rl.train.loop import train
from robot_rl.train.plot import plot_learning_curves

GENERATIVE_POLICIES = ("diffusion", "flow", "meanflow")
"""The `--policy` values that run this demo (the default, `sac`, runs `robot_rl.train.demo`)."""

DEMO_CHUNK = {"chunk_size": 16, "execution_horizon": 8, "obs_history": 2}
"""H = 16 actions per plan (0.8 s at the reach tasks' 20 Hz), executed H_a = 8 at a time, from the last T_o = 2
observations (Diffusion Policy's layout). Why not a shorter H_a: the policy node starts the next asynchronous plan
when the actions left in H_a cover its measured observation-to-chunk time plus one period, which is 3 periods
with any sampler here (a chunk is picked up at the tick after its observation at the earliest); with H_a ≤ 4 each
chunk would be replaced at the tick it arrives, and the ROS stage would replan every tick instead of showing a
receding horizon. With H_a = 8 a chunk runs about 5 ticks."""


def demo_algo_config(policy: str, sampler_steps: int = 0) -> Any:
    """The learner config the demo trains: the method's defaults with `DEMO_CHUNK` and, when > 0, K sampler steps.

    Raises:
        ValueError: `policy` is not one of `GENERATIVE_POLICIES`, or a bad K.
    """
    from robot_rl.algos.registry import get_algorithm

    if policy not in GENERATIVE_POLICIES:
        raise ValueError(f"--policy must be sac or one of {', '.join(GENERATIVE_POLICIES)}, got {policy!r}")
    changes: dict[str, Any] = dict(DEMO_CHUNK)
    if sampler_steps:
        changes["sampler_steps"] = sampler_steps
    return dataclasses.replace(get_algorithm(policy).default_config(), **changes)


def run_generative_demo(args: Any) -> int:
    """Run the generative demo described by `robot_rl.cli.DemoArgs` (`args.policy` in `GENERATIVE_POLICIES`);
    prints one line per stage and a summary, writes `<run_dir>/demo_summary.json`; returns an exit code."""
    from robot_rl.cli import eval_bundle, export_run
    from robot_rl.train.demo import finish_summary, ros_stage

    t_start = time.perf_counter()
    if not args.env.startswith("robot_rl/"):
        raise ValueError(f"--policy {args.policy} imitates a scripted expert: pick a robot_rl/* task, got {args.env}")
    if args.updates < 1 or args.expert_episodes < 1:
        raise ValueError(f"--updates and --expert-episodes must be >= 1, got {args.updates}, {args.expert_episodes}")
    algo_cfg = demo_algo_config(args.policy, args.sampler_steps)
    sim_suite = "MetaWorld" not in args.env  # Meta-World has no PyBullet twin and no simulated ROS robot
    deploy = sim_suite and args.deploy_s > 0
    n_stages = 5 + int(sim_suite) + int(deploy)
    safe_env = args.env.replace("/", "_")
    run_name = f"demo-{args.policy}-{safe_env}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = args.out_dir / run_name

    print(f"[1/{n_stages}] recording {args.expert_episodes} scripted-expert episodes of {args.env} …", flush=True)
    dataset_dir = run_dir / "expert_dataset"
    expert = _expert_dataset(args.env, args.expert_episodes, args.seed, dataset_dir, args.progress)

    layout = f"H={algo_cfg.chunk_size}, H_a={algo_cfg.execution_horizon}, T_o={algo_cfg.obs_history}"
    print(
        f"[2/{n_stages}] training {args.policy} offline on the dataset for {args.updates} updates "
        f"({layout}, K={algo_cfg.sampler_steps} sampler steps) …",
        flush=True,
    )
    cfg = TrainConfig(
        env=args.env,
        data="offline",
        dataset=str(dataset_dir),
        total_steps=args.updates,
        seed=args.seed,
        eval_every=max(args.updates // 4, 1),
        eval_episodes=5,
        checkpoint_every=0,
        log_every=max(min(args.updates // 10, 1_000), 1),
        out_dir=args.out_dir,
        run_name=run_name,
        progress=args.progress,
    )
    result = train(cfg, args.policy, algo_cfg)

    bundle = args.models_dir / f"demo-{args.policy}-{safe_env}"
    print(f"[3/{n_stages}] exporting {bundle} (sampler inside) and verifying ONNX parity …", flush=True)
    manifest: Any = export_run(result.run_dir, bundle, overwrite=True)[bundle]

    print(f"[4/{n_stages}] evaluating the exported ONNX bundle in MuJoCo ({args.eval_episodes} episodes) …", flush=True)
    onnx_eval: Any
    onnx_eval, _ = eval_bundle(bundle, args.env, args.eval_episodes, args.seed, "mujoco" if sim_suite else "")
    sims = {
        "mujoco_success_rate": round(onnx_eval.success_rate, 2),
        "mujoco_final_distance_m": round(onnx_eval.mean_final_distance_m, 4),
    }
    if sim_suite:
        print(
            f"[5/{n_stages}] sim-to-sim check: the same bundle in the pybullet twin ({args.eval_episodes} episodes) …",
            flush=True,
        )
        twin: Any
        twin, _ = eval_bundle(bundle, args.env, args.eval_episodes, args.seed, "pybullet")
        sims |= {
            "pybullet_success_rate": round(twin.success_rate, 2),
            "pybullet_final_distance_m": round(twin.mean_final_distance_m, 4),
            "pybullet_eval_return": round(twin.mean_return, 1),
        }

    ros: dict[str, Any] = {}
    if deploy:
        ros = ros_stage(bundle, args, result.run_dir, n_stages, "chunked: receding horizon, asynchronous planning")

    print(f"[{n_stages}/{n_stages}] plotting the learning curve …", flush=True)
    png = plot_learning_curves(
        [(args.policy, result.run_dir / "eval.csv")],
        result.run_dir / "learning_curve.png",
        title=f"{args.env}: {args.policy} from {args.expert_episodes} expert episodes (x: gradient updates)",
    )
    (bundle / "learning_curve.png").write_bytes(png.read_bytes())

    sampler = manifest.sampler
    summary = {
        "policy": args.policy,
        "env": args.env,
        "expert_episodes": expert["episodes"],
        "expert_success_rate": expert["success_rate"],
        "dataset_transitions": expert["transitions"],
        "steps": result.steps,
        "step_unit": "gradient updates",
        "train_wall_s": round(result.train_wall_s, 1),
        "steps_per_s": round(result.steps / result.train_wall_s, 1),
        "torch_eval_return": round(result.final_eval.mean_return, 1),
        "torch_eval_success_rate": round(result.final_eval.success_rate, 2),
        "onnx_eval_return": round(onnx_eval.mean_return, 1),
        "onnx_eval_return_std": round(onnx_eval.std_return, 1),
        **sims,
        **ros,
        "sampler": f"{sampler.kind}, K={sampler.steps}" if sampler is not None else None,
        "chunk": layout,
        "parity_max_abs_diff": manifest.parity.get("max_abs_diff"),
        "bundle": str(bundle),
        "onnx_sha256": manifest.onnx_sha256,
        "dataset": str(dataset_dir),
        "run_dir": str(result.run_dir),
        "learning_curve": str(png),
    }
    return finish_summary(summary, args, result.run_dir, t_start, f"robot-rl demo summary ({args.policy})")


def _expert_dataset(env_id: str, episodes: int, seed: int, out: Path, progress: bool) -> dict[str, Any]:
    """`robot-rl dataset expert`'s machinery in-process: seeded expert episodes written as a Minari dataset."""
    from tqdm import tqdm

    from robot_rl.data.datasets.episode import DatasetSummary
    from robot_rl.data.datasets.minari_io import write_dataset
    from robot_rl.data.datasets.sources.expert import SOURCE, expert_episodes

    with tqdm(total=episodes, unit="episode", disable=not progress, dynamic_ncols=True) as bar:
        spec, recorded = expert_episodes(env_id, episodes, seed, progress=lambda _episode: bar.update(1))
    write_dataset(out, recorded, spec, source=SOURCE)
    stats = DatasetSummary.of(recorded)
    print(f"    {stats.line()}", flush=True)
    return {"episodes": stats.episodes, "transitions": stats.steps, "success_rate": round(stats.success_rate, 2)}
