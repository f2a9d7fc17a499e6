"""`robot-rl` command line: train, export, eval, demo, envs.

One CLI library (tyro) parses every frozen config dataclass, so each flag's help is the field's
docstring. Heavy imports (torch, gymnasium) happen inside the subcommand that needs them, so
`robot-rl eval` of an ONNX bundle stays light.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import tyro

if TYPE_CHECKING:
    from robot_rl.train.evaluate import EvalResult

USAGE = """usage: robot-rl [--plugin MODULE]... <command> [options]

commands:
  train ALGO      train a registered algorithm (sac, td3, bc, plug-ins)   (robot-rl train --help)
  export RUN_DIR  write a verified ONNX bundle (policy.onnx + manifest.json)
  eval            evaluate an exported bundle in simulation
  demo            the main job: train SAC, export, verify, evaluate the ONNX, plot
                  (--policy flow|diffusion|meanflow: imitate the scripted expert, then the same path)
  envs            list continuous-control environments that can be trained on
  episodes DIR    list recorded MCAP episodes (steps, success, interventions, rewards); --recover crashed ones
  dataset SOURCE  build a Minari training dataset: expert | rollout | mcap; export one: lerobot (--help)
  deploy FILE     run a ROS 2 launch file's nodes (sim or robot) without ros2 launch (robot-rl deploy --help)
  learn k:=v ...  the human-in-the-loop learner node beside a running robot (robot-rl learn --help)
  sign            Ed25519 key pairs and bundle signatures (robot-rl sign --help)
  sweep ALGO      seeds × configurations of ALGO on Ray Tune: grid or random search with early stopping,
                  retries from checkpoints, --resume, IQM table (the `scale` extra; robot-rl sweep --help)

global options (before the command):
  --plugin MODULE import MODULE first, so the algorithms it registers can be trained (repeatable; also
                  $ROBOT_RL_PLUGINS=mod_a,mod_b, and the `robot_rl.algorithms` entry-point group)
"""

_FLAT = (tyro.conf.OmitArgPrefixes,)


@dataclass(frozen=True)
class ExportArgs:
    """Export a training run's policy as an ONNX bundle."""

    run_dir: Annotated[Path, tyro.conf.Positional]
    """Training run directory (holds config.json and checkpoints/)."""
    out: Path = Path("models/policy")
    """Bundle directory to create (policy.onnx, manifest.json, README.md)."""
    overwrite: bool = False
    """Replace an existing bundle at `out`."""
    parity_samples: int = 10_000
    """Observations on which ONNX Runtime must match torch before the bundle is written."""
    sampler_steps: tuple[int, ...] = ()
    """Generative policies: export one bundle per sampler step count K into `OUT/k<K>` (same weights, each
    verified on its own); empty = the run's own K, into `OUT`."""


@dataclass(frozen=True)
class EvalArgs:
    """Evaluate an exported ONNX bundle (the artifact itself, not the torch weights)."""

    policy: Path
    """Bundle directory written by `robot-rl export`."""
    env: str = ""
    """Gymnasium env id; empty means the env recorded in the bundle's manifest."""
    episodes: int = 10
    """Seeded evaluation episodes."""
    seed: int = 0
    """Evaluation seed (episode i is seeded identically on every call)."""
    backend: str = ""
    """Physics backend for robot_rl/* envs ("mujoco" or "pybullet"). Naming the one the policy was *not* trained
    in runs the sim-to-sim check: both backends are evaluated on the same seeds and the gap is reported."""
    safety: str = ""
    """Run the policy behind the deployment safety chain: "manifest" (the bundle's recorded URDF limits) or a ROS
    parameter YAML (`/**/policy_node: ros__parameters: safety:`); reports how often each link acted."""
    robustness: bool = False
    """Run the LAC robustness protocol (docs/sim.md): every level of every perturbation kind on the same seeded
    episodes; prints a table and, with --out, writes JSON."""
    perturb: tuple[str, ...] = ()
    """--robustness: kinds and levels as KIND:LEVEL,LEVEL,... (a bare KIND: its default levels); kinds: mass,
    pole_length, damping, friction (factors), impulse (N), obs_noise (std), latency (control periods). Empty = every
    kind that can act on the task, at default levels."""
    impulse_time_s: float | None = None
    """--robustness: when the impulse starts, s into the episode (default: 2 s cart-pole, 1 s arms)."""
    impulse_body: str = ""
    """--robustness: link or object the impulse pushes (default: the cart-pole's pole, the arm's end effector)."""
    out: Path | None = None
    """--robustness: write the report as JSON to this file."""
    progress: bool = True
    """--robustness: show a progress bar."""
    ray: bool = False
    """Split the seeded episodes (with --robustness: the (kind, level) cells) over Ray tasks, 1 CPU each; the result
    is identical to the serial one (the `scale` extra; docs/scale.md)."""
    ray_workers: int = 0
    """--ray: tasks to split into (0 = the cluster's CPUs); a local Ray gets this many CPUs (0 = all cores)."""
    address: str = ""
    """--ray: join the Ray cluster at HOST:PORT (or "auto"); empty = a local Ray on loopback."""


@dataclass(frozen=True)
class DemoArgs:
    """Train SAC on a built-in task, export, verify, evaluate the ONNX bundle, plot the learning curve. With
    `--policy diffusion|flow|meanflow`: imitate the task's scripted expert with a generative chunk policy instead
    (expert dataset → offline training → bundle with its sampler → both engines → ROS 2; docs/generative.md)."""

    env: str = "robot_rl/PandaReach-v0"
    """Gymnasium env id to train on (robot_rl/* suite envs also get the sim-to-sim check)."""
    policy: Literal["sac", "diffusion", "flow", "meanflow", "residual"] = "sac"
    """What to train: `sac` (online RL), a generative chunk policy learned offline from the scripted expert (a
    robot_rl/* task with an expert, e.g. robot_rl/PandaReachAround-v0, the multimodal one), or `residual`: the
    whole ladder (expert demos → BC base → residual SAC → composite bundle → both engines → ROS 2; docs/residual.md)."""
    steps: int = 30_000
    """SAC and residual: training budget in env steps (on PandaReach, 18,000 left some seeds, the default one
    among them, short of converging)."""
    expert_episodes: int = 100
    """Generative policies and residual: scripted-expert episodes recorded as the training dataset."""
    updates: int = 2_000
    """Generative policies and the residual's base: offline training budget in gradient updates."""
    residual_base: Literal["bc", "flow"] = "bc"
    """Residual: the base it fine-tunes, behaviour-cloned from the demonstrations: `bc` (an MLP: base and residual
    export as one graph) or `flow` (a chunked flow policy: the residual deploys on its base bundle)."""
    sampler_steps: int = 0
    """Generative policies: K, network evaluations per chunk in training evaluation and in the bundle (0 = the
    method's default: diffusion 10 DDIM steps, flow 10 Euler steps, meanflow 1)."""
    seed: int = 0
    """Run seed."""
    out_dir: Path = Path("runs")
    """Where the run directory goes."""
    models_dir: Path = Path("models")
    """Where the exported bundle goes (`<models_dir>/demo-<env>`)."""
    eval_episodes: int = 10
    """Episodes for the final evaluation of the exported bundle."""
    progress: bool = True
    """Show progress bars."""
    deploy_s: float = 20.0
    """Seconds of ROS 2 deployment against the simulated robot at the end (robot_rl/* envs; 0 = skip)."""
    figures_out: Path | None = None
    """Also write the summary as the README's demo figures (e.g. docs/benchmarks/demo.json; bench/readme_figures.py
    renders README's demo block from it). The summary always goes to `<run_dir>/demo_summary.json`."""


def _fail(msg: str, code: int = 2) -> int:
    print(f"robot-rl: error: {msg}", file=sys.stderr)
    return code


def _pop_recipe(argv: list[str]) -> str | None:
    """Remove `--recipe NAME` / `--recipe=NAME` from `argv`; returns NAME (None when absent)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--recipe="):
            del argv[i]
            return arg.split("=", 1)[1]
        if arg == "--recipe":
            if i + 1 >= len(argv):
                raise ValueError("--recipe needs a value")
            recipe = argv[i + 1]
            del argv[i : i + 2]
            return recipe
    return None


def _train_usage() -> str:
    from robot_rl.algos.registry import registered

    lines = ["usage: robot-rl train ALGO [options]   (robot-rl train ALGO --help for its options)", "", "algorithms:"]
    for name, entry in sorted(registered().items()):
        doc = (entry.config_cls.__doc__ or "").strip().splitlines()
        recipes = f" (--recipe {'|'.join(entry.presets)})" if entry.presets else ""
        lines.append(f"  {name:<14}{doc[0] if doc else ''}{recipes}")
    return "\n".join(lines)


def algo_cli_defaults(algo: str, argv: list[str], reserved: Sequence[str], command: str) -> tuple[Any, Any, str]:
    """What `robot-rl train ALGO` and `robot-rl sweep ALGO` parse flags against: the registry entry, the default
    algorithm config (of `--recipe NAME`, which is removed from `argv`) and the recipes' help line ("" if none).

    Raises:
        ValueError: an unknown algorithm or recipe, or config fields that clash with the command's own flags.
    """
    from robot_rl.algos.registry import get_algorithm
    from robot_rl.train.config import TrainConfig

    entry = get_algorithm(algo)
    # Flags are flat (no `--algo.` prefix), so a config field named like a train flag would shadow it.
    clash = {f.name for f in dataclasses.fields(entry.config_cls)} & {
        *(f.name for f in dataclasses.fields(TrainConfig)),
        *reserved,
    }
    if clash:
        raise ValueError(
            f"{algo}: config fields {sorted(clash)} clash with `robot-rl {command}` flags of the same name"
        )
    recipe = ""
    if entry.presets:
        try:
            recipe = _pop_recipe(argv) or ""
        except ValueError as exc:
            raise ValueError(f"{exc}: one of {', '.join(entry.presets)}") from None
    recipes = ""
    if entry.presets:
        recipes = f"Recipes (--recipe NAME, default {entry.default_preset}): {', '.join(entry.presets)}."
    return entry, entry.default_config(recipe), recipes


def _train(algo: str, argv: list[str]) -> int:
    """`robot-rl train ALGO ...`: the registry entry's config dataclass (and its recipe) parsed by tyro."""
    from robot_rl.train.cli_args import TrainArgs
    from robot_rl.train.config import TrainConfig
    from robot_rl.train.loop import train

    entry, algo_default, recipes = algo_cli_defaults(algo, argv, ("resume",), "train")
    doc = (entry.config_cls.__doc__ or "").strip()
    description = f"Train {algo}: {doc}" if doc else f"Train {algo}."
    if recipes:
        description += f"\n\n{recipes}"
    default = TrainArgs(TrainConfig(), algo_default)
    args = tyro.cli(
        TrainArgs[entry.config_cls],  # type: ignore[name-defined]
        args=argv,
        default=default,
        prog=f"robot-rl train {algo}",
        description=description,
        config=_FLAT,
    )
    train_cfg, resume = args.train, args.resume
    steps_given = any(a == "--total-steps" or a.startswith("--total-steps=") for a in argv)
    extend = train_cfg.total_steps if resume and steps_given else None
    result = train(train_cfg, algo, args.algo, resume=resume, extend_to_steps=extend)
    ev = result.final_eval
    unit = "updates" if train_cfg.data == "offline" else "steps"
    print(
        f"done: {result.steps} {unit} in {result.train_wall_s:.0f}s "
        f"({result.steps / max(result.train_wall_s, 1e-9):.0f} {unit}/s); "
        f"eval return {ev.mean_return:.1f} ± {ev.std_return:.1f} over {len(ev.returns)} episodes; run: {result.run_dir}"
    )
    return 0


def export_run(
    run_dir: Path, out: Path, overwrite: bool = False, parity_samples: int = 10_000, sampler_steps: tuple[int, ...] = ()
) -> dict[Path, object]:
    """Export `run_dir`'s latest checkpoint to the bundle `out` (or one bundle per K in `out/k<K>` when
    `sampler_steps` is given); returns the manifests by bundle directory."""
    from robot_rl.export.onnx_export import export_policy, export_sampler_variants
    from robot_rl.residual.on_base_bundle import export_run_on_base_bundle, needs_base_bundle, recorded_base
    from robot_rl.train.from_run import load_run_policy

    if needs_base_bundle(recorded_base(run_dir)):  # a residual whose base keeps its own bundle (bundle/chunked)
        if sampler_steps:
            raise ValueError("--sampler-steps does not apply to a residual on a base bundle (the base keeps its K)")
        return {out: export_run_on_base_bundle(run_dir, out, overwrite, parity_samples)}
    run = load_run_policy(run_dir)
    extra = {"run_dir": str(run_dir), "checkpoint": run.checkpoint.name, "training_summary": run.summary}
    if sampler_steps:
        by_k = export_sampler_variants(
            run.policy, out, sampler_steps, run.config, extra, n_parity=parity_samples, overwrite=overwrite
        )
        return {out / f"k{k}": m for k, m in by_k.items()}
    manifest = export_policy(
        run.policy,
        out,
        training_config=run.config,
        extra=extra,
        n_parity=parity_samples,
        overwrite=overwrite,
        lyapunov=run.lyapunov,  # a LAC run's critic becomes the bundle's lyapunov.onnx
    )
    return {out: manifest}


def _export(argv: list[str]) -> int:
    args = tyro.cli(ExportArgs, args=argv, prog="robot-rl export")
    try:
        manifests = export_run(args.run_dir, args.out, args.overwrite, args.parity_samples, args.sampler_steps)
    except ValueError as exc:  # e.g. --sampler-steps on a policy without a sampler
        return _fail(str(exc))
    for path, manifest in manifests.items():
        parity = getattr(manifest, "parity", {})
        print(
            f"exported {path} (sha256 {getattr(manifest, 'onnx_sha256', '?')[:16]}…, parity max |Δ| "
            f"{parity.get('max_abs_diff', float('nan')):.2e} on {parity.get('n_samples', '?')} observations)"
        )
        critic = getattr(manifest, "lyapunov", None)
        if critic is not None:
            print(
                f"  with its Lyapunov critic {critic.file} (alpha3 {critic.alpha3:g}, parity max rel |Δ| "
                f"{critic.parity['max_rel_diff']:.2e} on {critic.parity['n_samples']} pairs)"
            )
    return 0


def eval_bundle(bundle: Path, env: str, episodes: int, seed: int, backend: str = "") -> tuple[EvalResult, str]:
    """Evaluate an ONNX bundle in sim (optionally in a given physics backend); returns (EvalResult, env id)."""
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.evaluate import evaluate

    policy = OnnxPolicy.load(bundle)
    env_id = env or policy.spec.env_id
    if not env_id:
        raise ValueError(f"{bundle}: the manifest records no env; pass --env")
    # on_reset: a chunked bundle's observation history and chunk queue start afresh every episode.
    res = evaluate(policy.act, env_id, episodes, seed, backend=backend, on_reset=policy.reset, spec=policy.spec)
    return res, env_id


def trained_backend(bundle: Path) -> str:
    """The physics backend a bundle's policy was trained in ("" when the manifest records none)."""
    from robot_rl.export.manifest import read_manifest

    robot = read_manifest(bundle).policy_spec.robot
    return robot.backend if robot is not None else ""


def _describe(res: EvalResult) -> str:
    dist = f", final distance {res.mean_final_distance_m * 100:.1f} cm" if res.final_distances_m else ""
    return f"return {res.mean_return:.1f} ± {res.std_return:.1f}, success {res.success_rate:.2f}{dist}"


def _eval(argv: list[str]) -> int:
    args = tyro.cli(EvalArgs, args=argv, prog="robot-rl eval")
    if not args.ray:
        if args.ray_workers or args.address:
            return _fail("--ray-workers and --address belong to --ray")
        return _eval_args(args)
    if args.ray_workers < 0:
        return _fail(f"--ray-workers must be >= 0, got {args.ray_workers}")
    if args.safety:
        return _fail("--ray does not run --safety evaluations; drop one of them")
    from robot_rl.scale.ray_env import RayUnavailable  # imports no Ray: a missing Ray fails where it is used

    try:
        return _eval_args(args)
    except RayUnavailable as exc:
        return _fail(str(exc), 2)


def _eval_args(args: EvalArgs) -> int:
    if args.episodes < 1:
        return _fail(f"--episodes must be >= 1, got {args.episodes}")
    if args.robustness:
        if args.safety:
            return _fail("--robustness and --safety are separate evaluations; run them one at a time")
        return _eval_robust(args)
    if args.perturb or args.out is not None:
        return _fail("--perturb and --out belong to --robustness")
    if args.safety:
        return _eval_safe(args)
    run = eval_bundle
    if args.ray:
        from functools import partial

        from robot_rl.scale.parallel_eval import eval_bundle_ray

        run = partial(eval_bundle_ray, workers=args.ray_workers, address=args.address)
    res, env_id = run(args.policy, args.env, args.episodes, args.seed, args.backend)
    where = f"{env_id} [{args.backend}]" if args.backend else env_id
    print(f"{args.policy} on {where}: {_describe(res)} over {args.episodes} episodes")
    home = trained_backend(args.policy)
    if args.backend and home and args.backend != home:
        ref, _ = run(args.policy, env_id, args.episodes, args.seed, home)
        print(f"{args.policy} on {env_id} [{home}] (trained here): {_describe(ref)}")
        gap = res.success_rate - ref.success_rate
        d_return = res.mean_return - ref.mean_return
        print(
            f"sim-to-sim gap {home} → {args.backend}: success {gap:+.2f}, return {d_return:+.1f}"
            + (
                f", final distance {100 * (res.mean_final_distance_m - ref.mean_final_distance_m):+.1f} cm"
                if res.final_distances_m
                else ""
            )
            + "   (docs/sim2sim.md explains how to read it)"
        )
    return 0


def _eval_safe(args: EvalArgs) -> int:
    """`robot-rl eval --safety ...`: the same evaluation with the policy node's safety chain in the loop."""
    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.evaluate import evaluate
    from robot_rl.train.safe_eval import limit_violations, load_safety_config, safe_actor

    policy = OnnxPolicy.load(args.policy)
    env_id = args.env or policy.spec.env_id
    config = load_safety_config(args.safety, policy.spec.robot, policy.spec.control_hz)
    actor = safe_actor(policy.act, policy.spec.robot, config)

    def on_reset(first_obs: Any) -> None:
        policy.reset()  # a chunked bundle's history and chunk queue
        actor.reset(first_obs)

    res = evaluate(actor, env_id, args.episodes, args.seed, backend=args.backend, on_reset=on_reset, spec=policy.spec)
    print(
        f"{args.policy} on {env_id} behind the safety chain ({args.safety}): {_describe(res)} "
        f"over {args.episodes} episodes"
    )
    acted = {k: v for k, v in actor.chain.counters.items() if v}
    print(f"safety chain activations: {acted or 'none'} over {sum(len(e) for e in actor.executed)} steps")
    bad = limit_violations(actor.executed, config, config.control_period_s, actor.measured)
    counts = ", ".join(f"{k} {v}" for k, v in bad.items() if k != "steps")
    print(f"executed commands beyond the {config.command_interface}-interface limits: {counts} of {bad['steps']} steps")
    return 0


def _eval_robust(args: EvalArgs) -> int:
    """`robot-rl eval --robustness ...`: the LAC robustness protocol on a bundle (robot_rl/train/robustness.py)."""
    import json

    from tqdm import tqdm

    from robot_rl.export.runtime import OnnxPolicy
    from robot_rl.train.envs import EnvError
    from robot_rl.train.robustness import RobustnessConfig, parse_perturbation, run_robustness

    try:
        config = RobustnessConfig(
            perturbations=tuple(parse_perturbation(p) for p in args.perturb),
            episodes=args.episodes,
            seed=args.seed,
            impulse_time_s=args.impulse_time_s,
            impulse_body=args.impulse_body,
        )
    except ValueError as exc:
        return _fail(str(exc))
    policy = OnnxPolicy.load(args.policy)
    env_id = args.env or policy.spec.env_id
    if not env_id:
        return _fail(f"{args.policy}: the manifest records no env; pass --env")

    def on_reset(first_obs: Any) -> None:
        policy.reset(first_obs)  # a chunked bundle's history and chunk queue start afresh

    bars: list[Any] = []  # the bar opens once the levels, hence the episode count, are known

    def start(total: int) -> None:
        bars.append(tqdm(total=total, unit="episode", disable=not args.progress, dynamic_ncols=True))

    try:
        if args.ray:
            from robot_rl.scale.parallel_eval import robustness_ray

            report = robustness_ray(
                args.policy, env_id, config, backend=args.backend, workers=args.ray_workers, address=args.address
            )
        else:
            report = run_robustness(
                policy.act,
                env_id,
                config,
                backend=args.backend,
                spec=policy.spec,
                on_reset=on_reset,
                reseed=policy.reseed,  # a sampler bundle draws the same noise in episode i at every level
                on_start=start,
                progress=lambda n: bars[0].update(n),
            )
    except (EnvError, ValueError) as exc:
        return _fail(str(exc))
    finally:
        for bar in bars:
            bar.close()
    print(f"{args.policy} on {report.env_id} [{report.backend}], {config.episodes} seeded episodes per level:")
    print(report.table())
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = {"policy": str(args.policy), **report.to_json()}
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


@dataclass(frozen=True)
class EpisodesArgs:
    """List the MCAP episodes a deployment recorded; recover the ones a crashed writer left unfinished."""

    directory: Annotated[Path, tyro.conf.Positional]
    """Recording directory (the policy node's `record_dir`)."""
    recover: bool = False
    """Rebuild every unfinished `episode_*.mcap.partial` up to its last flush (idempotent), then list."""


def _episodes(argv: list[str]) -> int:
    from robot_rl.data.mcap_reader import list_episodes, read_episode
    from robot_rl.data.mcap_recover import recover

    args = tyro.cli(EpisodesArgs, args=argv, prog="robot-rl episodes")
    if not args.directory.is_dir():
        return _fail(f"{args.directory} is not a directory")
    partials = sorted(args.directory.glob("episode_*.mcap.partial"))
    if args.recover:
        for partial in partials:
            try:
                print(f"recovered {partial.name} -> {recover(partial).name}")
            except ValueError as exc:  # nothing usable in it (died before its metadata): say so, keep going
                print(f"could not recover {partial.name}: {exc}")
        partials = sorted(args.directory.glob("episode_*.mcap.partial"))
    for path in list_episodes(args.directory):
        try:
            ep = read_episode(path)
        except ValueError as exc:
            print(f"{path.name}: unreadable: {exc}")
            continue
        rewards = ", ".join(f"{k} {float(v.sum()):+.2f}" for k, v in ep.rewards.items())
        flags = " (recovered)" if ep.recovered else ""
        print(
            f"{path.name}: {len(ep.steps)} steps, success {ep.metadata.get('is_success', '?')}, "
            f"{int(ep.intervention.sum())} intervention steps, rewards [{rewards}]{flags}"
        )
    for partial in partials:
        print(f"{partial.name}: unfinished (the writer stopped): robot-rl episodes {args.directory} --recover")
    return 0


def _envs(argv: list[str]) -> int:
    from robot_rl.train.envs import list_continuous_envs

    if argv and argv[0] in ("-h", "--help"):
        print("usage: robot-rl envs   (lists every continuous-control env: backends, observation and action spec)")
        return 0
    for row in list_continuous_envs():
        print(f"{row.env_id}  [{', '.join(row.backends)}]  obs {row.obs_dim}  act {row.act_dim}")
        print(f"    observation: {row.observation}")
        print(f"    action:      {row.action}")
    return 0


def _demo(argv: list[str]) -> int:
    from robot_rl.train.demo import run_demo

    args = tyro.cli(DemoArgs, args=argv, prog="robot-rl demo")
    return run_demo(args)


def _dataset(argv: list[str]) -> int:
    from robot_rl.data.datasets.cli import main as dataset_main

    return dataset_main(argv)


def _deploy(argv: list[str]) -> int:
    from ros_nodes.bringup import main as deploy_main  # ROS pieces load only here (robot_rl never imports rclpy)

    return deploy_main(argv)


def _learn(argv: list[str]) -> int:
    from ros_nodes.learner_node import cli_main  # ROS pieces load only here

    return cli_main(argv)


def _sweep(argv: list[str]) -> int:
    """`robot-rl sweep ALGO ...` on Ray Tune; Ray is imported only here (the `scale` extra)."""
    from robot_rl.scale.ray_env import RayUnavailable
    from robot_rl.scale.sweep_cli import main as sweep_main

    try:
        return sweep_main(argv)
    except RayUnavailable as exc:
        return _fail(str(exc), 2)


def _sign(argv: list[str]) -> int:
    from robot_rl.export.sign_cli import main as sign_main

    return sign_main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "export": _export,
    "eval": _eval,
    "envs": _envs,
    "demo": _demo,
    "episodes": _episodes,
    "deploy": _deploy,
    "learn": _learn,
    "sign": _sign,
    "dataset": _dataset,
    "sweep": _sweep,
}


def _split_plugins(args: list[str]) -> tuple[list[str], list[str]]:
    """Leading global `--plugin MODULE` / `--plugin=MODULE` options, and the rest of the command line."""
    plugins: list[str] = []
    while args and (args[0] == "--plugin" or args[0].startswith("--plugin=")):
        if args[0] == "--plugin":
            if len(args) < 2 or args[1].startswith("-"):
                raise ValueError("--plugin needs a module name: robot-rl --plugin my_pkg.my_algo train my_algo ...")
            plugins.append(args[1])
            args = args[2:]
        else:
            plugins.append(args[0].split("=", 1)[1])
            args = args[1:]
    return plugins, args


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        plugins, args = _split_plugins(args)
    except ValueError as exc:
        return _fail(str(exc))
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    try:
        if plugins:
            from robot_rl.algos.registry import load_plugins

            load_plugins(plugins)
        if cmd == "train":
            if rest and rest[0] in ("-h", "--help"):
                print(_train_usage())
                return 0
            if not rest or rest[0].startswith("-"):
                return _fail(f"train needs an algorithm: robot-rl train ALGO [options]\n{_train_usage()}")
            return _train(rest[0], rest[1:])
        if cmd not in COMMANDS:
            return _fail(f"unknown command {cmd!r}\n{USAGE}")
        return COMMANDS[cmd](rest)
    except KeyboardInterrupt:
        return _fail("interrupted; the last checkpoint is intact (resume with --resume)", 130)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, RuntimeError) as exc:
        # Config validation, bad env ids, unwritable dirs, tampered bundles, divergence: one line, no traceback.
        return _fail(str(exc), 1 if type(exc).__name__ == "TrainingDiverged" else 2)


if __name__ == "__main__":
    sys.exit(main())
