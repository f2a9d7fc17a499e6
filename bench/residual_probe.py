"""Does a residual learner's critic know which way to correct its base? A probe on robot_rl/PandaPush-v0.

A residual actor (TD3 or SAC) moves its correction along the critic's action gradient ∂Q/∂a. This probe asks
whether that direction is worth following before any actor is trained, in minutes instead of a 10⁵-step run:

1. The frozen base is `bench/residual_push.py`'s (the same scripted-expert demonstrations, the same flow recipe).
2. It is rolled out for `--rollout-episodes` episodes with independent Gaussian noise of std `--rollout-noise` per
   step on its normalized action: the data a residual learner collects around its base.
3. `--critics` independent critic ensembles of the registered `residual` learner are trained on those rollouts
   mixed 50/50 with the demonstrations replayed through the base (as `residual_push` mixes them), with the
   learner's own update (n-step TD targets, target networks); the actor never moves (its warm-up outlasts the run),
   so the critics evaluate the base.
4. The base is then steered with no actor at all: executed = clip(a_base + α·d, −1, 1) on the normalized action,
   where d is the unit direction of the critics' mean ∂Q/∂a at the base's action (`critic`), or a random unit
   direction drawn once per episode (`random`, the control), for each `--alphas` step; α = 0 is the base alone.
   Every condition runs the same seeded evaluation episodes, with a freshly seeded base.

5. Without gradients (`--candidates N`): at every replan the base samples N chunks with independent noise and
   executes the one whose first action the critics value most (`best`), or least (`worst`); the base's own pick
   is a random one. best > base > worst says the critics rank the base's own alternatives, a use of the critic
   that never leaves the base's actions (best-of-N selection).

If the critics' gradient carries the information a residual actor needs, `critic` beats `random` at equal α (and a
small step beats the base alone). Also reported: the cosine between the action gradients of independently trained
critics on held-out rollout states (1 = they agree on the direction, 0 = unrelated).

Writes <out-dir>/<name>.{json,md} (`--name`, default residual_probe).

Usage: .venv/bin/python bench/residual_probe.py [--rollout-noise 0.01] [--alphas 0.02 0.05] [--work-dir DIR]
       .venv/bin/python bench/residual_probe.py --from-json docs/benchmarks/residual_probe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from bench.bench_common import cpu_model  # noqa: E402

DIRECTIONS = ("critic", "random")
"""Steering directions: the critics' mean action gradient, and the control (a random unit vector per episode)."""
HELD_OUT = 0.2
"""Share of the rollout episodes kept out of critic training (the gradient-agreement states)."""


def unit(v: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    """`v` scaled to length 1 along its last axis (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = np.where(n > 0, v / np.where(n > 0, n, 1.0), 0.0)
    return out


def mean_cosine(a: npt.NDArray[np.floating[Any]], b: npt.NDArray[np.floating[Any]]) -> float:
    """Mean over rows of the cosine between rows of `a` and `b` (`[N, A]` each)."""
    return float(np.mean(np.sum(unit(a) * unit(b), axis=-1)))


def random_direction(episode: int, dim: int) -> npt.NDArray[np.float64]:
    """The control's direction for evaluation episode `episode`: a seeded random unit vector."""
    return unit(np.random.default_rng(episode).standard_normal(dim))


# ----------------------------------------------------------------------------- the measurement


def collect_rollouts(
    env: Any, action_spec: Any, episodes: int, noise: float, seed: int
) -> tuple[Any, list[bool], list[int]]:
    """Roll the base out (`env`: the base-proposal view; `action_spec` maps normalized to physical actions) with
    per-step Gaussian noise on its normalized action. Returns a `ReplayBuffer` of the transitions (normalized
    actions, as the learners store them), each episode's final success, and each transition's episode index."""
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.train.envs import episode_seed

    rng = np.random.default_rng(seed)
    rows: list[tuple[Any, ...]] = []
    success: list[bool] = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep))
        done = False
        info: dict[str, Any] = {}
        while not done:
            a = np.clip(env.last_proposal + noise * rng.standard_normal(env.last_proposal.shape), -1.0, 1.0)
            a = a.astype(np.float32)
            nobs, r, term, trunc, info = env.step(action_spec.to_physical(a).astype(np.float32))
            rows.append((obs, a, float(r), nobs, bool(term), bool(trunc), ep))
            obs, done = nobs, bool(term or trunc)
        success.append(bool(info.get("is_success", False)))
    buffer = ReplayBuffer(len(rows), len(rows[0][0]), len(rows[0][1]))
    for o, a, r, no, te, tr, _ in rows:
        buffer.add(o, a, r, no, te, tr)
    return buffer, success, [row[-1] for row in rows]


def split_buffer(buffer: Any, episode_of: Sequence[int], held_out: float) -> tuple[Any, npt.NDArray[np.float32]]:
    """The training buffer (the first episodes) and the held-out episodes' observations."""
    from robot_rl.core.types import DataSource
    from robot_rl.data.replay import ReplayBuffer

    ep = np.asarray(episode_of)
    first_held = round((1.0 - held_out) * (int(ep.max()) + 1))
    train_rows = np.flatnonzero(ep < first_held)
    out = ReplayBuffer(len(train_rows), buffer.obs.shape[1], buffer.action.shape[1])
    b = buffer.gather(train_rows)
    out.add_batch(b.obs, b.action, b.reward, b.next_obs, b.terminated, b.truncated, source=DataSource.ONLINE)
    held: npt.NDArray[np.float32] = buffer.obs[np.flatnonzero(ep >= first_held)]
    return out, held


def train_critics(
    spec: Any, base_dir: str, online: Any, demos: Any, seeds: int, ensemble: int, updates: int, n_step: int
) -> list[Any]:
    """`seeds` residual TD3 learners whose critics are trained `updates` updates on online/demo batches (50/50);
    their actors never move."""
    import torch

    from robot_rl.algos.registry import get_algorithm, make_algorithm
    from robot_rl.train.batches import mixed_batches, requested_layout, torch_batches

    learners = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        cfg = dataclasses.replace(
            get_algorithm("residual").default_config(),
            base=base_dir,
            num_critics=ensemble,
            n_step=n_step,
            critic_warmup_updates=updates + 1,  # the actor never moves: the critics evaluate the base
        )
        algo = make_algorithm("residual", spec, cfg)
        algo.observe(online.obs[: len(online)])
        batches = torch_batches(
            mixed_batches(online, demos, 0.5, cfg.batch_size, np.random.default_rng(seed), requested_layout(algo))
        )
        t0 = time.perf_counter()
        for _ in range(updates):
            algo.update(batches)
        print(f"critic {seed}: {updates} updates in {time.perf_counter() - t0:.0f} s", flush=True)
        learners.append(algo)
    return learners


def action_gradients(learners: Sequence[Any], obs: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float64]]:
    """Per learner: ∂(mean over its ensemble of Q)/∂a at the base's action (the observation's proposal), `[N, A]`."""
    import torch

    out = []
    for algo in learners:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        a = algo.base_action(x).clone().requires_grad_(True)
        q = algo.critic(algo.normalizer(x), a).mean(0).sum()
        out.append(torch.autograd.grad(q, a)[0].numpy().astype(np.float64))
    return out


def steer(
    env: Any, action_spec: Any, learners: Sequence[Any], alpha: float, direction: str, episodes: int, seed: int
) -> float:
    """Success of the base (`env`: a freshly wrapped base-proposal view, closed here) steered by `alpha` along
    `direction` on `episodes` seeded episodes."""
    from robot_rl.train.envs import episode_seed

    success = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=episode_seed(seed, ep))
            fixed = random_direction(ep, action_spec.dim)
            done = False
            info: dict[str, Any] = {}
            while not done:
                a = env.last_proposal.astype(np.float64)
                if alpha > 0:
                    d = fixed if direction == "random" else unit(sum(action_gradients(learners, obs[None])))[0]
                    a = np.clip(a + alpha * d, -1.0, 1.0)
                obs, _, term, trunc, info = env.step(action_spec.to_physical(a).astype(np.float32))
                done = bool(term or trunc)
            success.append(bool(info.get("is_success", False)))
    finally:
        env.close()
    return float(np.mean(success))


def pick_chunks(
    env: Any,
    action_spec: Any,
    policy: Any,
    learners: Sequence[Any],
    candidates: int,
    pick: str,
    episodes: int,
    seed: int,
) -> float:
    """Success of the base (`policy`, a chunked sampler with T_o = 1, run on the plain env) choosing at every replan
    the `pick` (`best` or `worst`) of `candidates` chunks sampled with independent noise, ranked by the critics'
    mean Q of the chunk's first action (executed as proposed, residual zero). The base's own choice is a random
    one, so best > base > worst means the critics rank the base's own alternatives."""
    import torch

    from robot_rl.train.envs import episode_seed

    if int(policy.obs_history) != 1 or policy.noise_shape is None:
        raise ValueError("pick_chunks needs a sampler base with one observation of history")
    from robot_rl.train.policy_actor import PolicyActor

    horizon = PolicyActor(policy).horizon  # the runtime's own rule: the spec's execution horizon, else the chunk
    gen = torch.Generator().manual_seed(seed)
    success = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep))
        queue: list[npt.NDArray[np.float32]] = []
        done = False
        info: dict[str, Any] = {}
        while not done:
            if not queue:
                with torch.no_grad():
                    x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).expand(candidates, -1)
                    noise = torch.randn((candidates, *policy.noise_shape), generator=gen)
                    chunks = policy(x, noise).numpy()  # [N, H, A] physical
                    first = torch.as_tensor(action_spec.to_normalized(chunks[:, 0]).astype(np.float32))
                    viewed = torch.cat([x, first], dim=-1)  # the learners' observation: [obs, proposal]
                    q = sum(a.critic(a.normalizer(viewed), first).mean(0) for a in learners)
                i = int(torch.argmax(q) if pick == "best" else torch.argmin(q))
                queue = list(chunks[i, :horizon])
            obs, _, term, trunc, info = env.step(queue.pop(0).astype(np.float32))
            done = bool(term or trunc)
        success.append(bool(info.get("is_success", False)))
    return float(np.mean(success))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Base, rollouts, critics, steering: the JSON-ready results."""
    import torch

    import bench.residual_push as rp
    from robot_rl.data.datasets import fill_replay, read_dataset
    from robot_rl.data.replay import ReplayBuffer
    from robot_rl.residual.view import ProposalView
    from robot_rl.train.envs import make_env, policy_spec_for

    torch.set_num_threads(args.torch_threads)
    work: Path = args.work_dir
    dataset = work / f"expert-{args.expert_episodes}"
    demos_info, base = rp.seed0_flow_base(work, args.expert_episodes, args.flow_updates)
    base_dir = base["run_dir"]

    probe_env = make_env(rp.ENV_ID)
    env_spec = policy_spec_for(probe_env, rp.ENV_ID)
    probe_env.close()
    view = ProposalView(base_dir, rp.ENV_ID, 0)
    t0 = time.perf_counter()
    roll_env = view.wrap(make_env(rp.ENV_ID))
    try:
        buffer, roll_success, episode_of = collect_rollouts(
            roll_env, env_spec.action, args.rollout_episodes, args.rollout_noise, 1
        )
    finally:
        roll_env.close()
    print(f"rollouts: {len(buffer)} steps, success {np.mean(roll_success):.2f} ({time.perf_counter() - t0:.0f} s)")
    online, held_obs = split_buffer(buffer, episode_of, HELD_OUT)
    spec = view.spec(env_spec)
    data = read_dataset(dataset)
    demo_eps = view.episodes(data.episodes, env_spec)
    demos = ReplayBuffer(max(sum(len(e) for e in demo_eps), 1), spec.observation.dim, spec.action.dim)
    fill_replay(demos, demo_eps, spec)

    learners = train_critics(spec, base_dir, online, demos, args.critics, args.ensemble, args.updates, args.n_step)
    grads = action_gradients(learners, held_obs)
    pairs = [(i, j) for i in range(len(grads)) for j in range(i + 1, len(grads))]
    agreement = [mean_cosine(grads[i], grads[j]) for i, j in pairs]

    def run(alpha: float, direction: str) -> float:  # a fresh base (seeded alike) for every condition
        env = view.wrap(make_env(rp.ENV_ID))
        return steer(env, env_spec.action, learners, alpha, direction, args.eval_episodes, args.eval_seed)

    results: dict[str, dict[str, float]] = {"0": {"base": run(0.0, "critic")}}
    for alpha in args.alphas:
        results[f"{alpha:g}"] = {}
        for direction in DIRECTIONS:
            t0 = time.perf_counter()
            results[f"{alpha:g}"][direction] = run(alpha, direction)
            print(
                f"alpha {alpha:g} {direction}: {results[f'{alpha:g}'][direction]:.3f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    picked: dict[str, Any] = {}
    if args.candidates > 1:
        from robot_rl.train.from_run import load_run_policy

        policy = load_run_policy(Path(base_dir)).policy
        policy.eval()
        picked = {"candidates": args.candidates}
        for pick in ("best", "worst"):
            env = make_env(rp.ENV_ID)
            try:
                picked[pick] = pick_chunks(
                    env, env_spec.action, policy, learners, args.candidates, pick, args.eval_episodes, args.eval_seed
                )
            finally:
                env.close()
            print(f"{pick} of {args.candidates} chunks: {picked[pick]:.3f}", flush=True)
    return {
        "picked_chunks": picked,
        "demos": demos_info,
        "base_run_success": float(base["summary"]["final_eval_success_rate"]),
        "rollouts": {
            "episodes": args.rollout_episodes,
            "steps": len(buffer),
            "success_rate": round(float(np.mean(roll_success)), 3),
            "held_out_states": len(held_obs),
        },
        "gradient_agreement": {
            "pairs": len(pairs),
            "mean_cosine": None if not agreement else float(np.mean(agreement)),
        },
        "steering": results,
    }


# ----------------------------------------------------------------------------- report (pure)


def diff_se_points(p: float, q: float, episodes: int) -> float:
    """Standard error, in points, of the difference of two success rates measured on `episodes` episodes each."""
    return 100.0 * math.sqrt((p * (1.0 - p) + q * (1.0 - q)) / episodes)


def verdict(steering: dict[str, dict[str, float]], episodes: int) -> dict[str, Any]:
    """Per α: critic − random and critic − the base alone (points), each with its standard error over `episodes`
    evaluation episodes per cell; whether the critic's direction beats the random one, or the base, by more than
    two standard errors at any α."""
    base = steering["0"]["base"]
    rows = {
        a: {
            "critic_minus_random_points": round(100 * (r["critic"] - r["random"]), 1),
            "critic_minus_random_se_points": round(diff_se_points(r["critic"], r["random"], episodes), 1),
            "critic_minus_base_points": round(100 * (r["critic"] - base), 1),
            "critic_minus_base_se_points": round(diff_se_points(r["critic"], base, episodes), 1),
        }
        for a, r in steering.items()
        if a != "0"
    }
    return {
        "base": base,
        "per_alpha": rows,
        "beats_random": [
            a for a, v in rows.items() if v["critic_minus_random_points"] > 2 * v["critic_minus_random_se_points"]
        ],
        "beats_base": [
            a for a, v in rows.items() if v["critic_minus_base_points"] > 2 * v["critic_minus_base_se_points"]
        ],
        "worse_than_random": [
            a for a, v in rows.items() if v["critic_minus_random_points"] < -2 * v["critic_minus_random_se_points"]
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown; every figure in the prose is computed from the JSON."""
    cfg, res, m = report["config"], report["results"], report["machine"]
    v = verdict(res["steering"], cfg["eval_episodes"])
    ag = res["gradient_agreement"]
    lines = [
        "# Does the residual critic know which way to correct the base? (PandaPush)",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"robot_rl/PandaPush-v0 (sparse reward). Base: the flow policy of `bench/residual_push.py` from "
        f"{res['demos']['episodes']} scripted-expert episodes ({cfg['flow_updates']:,} updates; "
        f"{res['base_run_success']:.0%} success in its own 30-episode evaluation). Rollouts: "
        f"{res['rollouts']['episodes']} episodes ({res['rollouts']['steps']:,} steps) of the base with per-step "
        f"Gaussian noise of std {cfg['rollout_noise']:g} on its normalized action, "
        f"{res['rollouts']['success_rate']:.0%} success. Critics: {cfg['critics']} independent ensembles of "
        f"{cfg['ensemble']} (the `residual` learner's critic, {cfg['n_step']}-step targets), each trained "
        f"{cfg['updates']:,} updates on those rollouts ({1 - HELD_OUT:.0%} of the episodes) mixed 50/50 with the "
        "demonstrations replayed through the base; no actor. Steering: executed = clip(a_base + α·d, −1, 1) on "
        "the normalized action, d the unit direction of the critics' mean ∂Q/∂a at the base's action (`critic`) "
        "or a random unit vector fixed per episode (`random`); "
        f"{cfg['eval_episodes']} seeded evaluation episodes per cell, the same ones in every cell. "
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs. How it works: the docstring of "
        "`bench/residual_probe.py`.",
        "",
        "| α (normalized) | base + critic direction | base + random direction | critic − random (points ± 1 SE) | "
        "critic − base alone (points ± 1 SE) |",
        "|---|---|---|---|---|",
        f"| 0 (the base alone) | {v['base']:.0%} | {v['base']:.0%} | – | – |",
    ]
    for a, r in res["steering"].items():
        if a == "0":
            continue
        row = v["per_alpha"][a]
        lines.append(
            f"| {a} | {r['critic']:.0%} | {r['random']:.0%} | {row['critic_minus_random_points']:+.1f} ± "
            f"{row['critic_minus_random_se_points']:.1f} | {row['critic_minus_base_points']:+.1f} ± "
            f"{row['critic_minus_base_se_points']:.1f} |"
        )
    lines += [""]
    if ag["mean_cosine"] is not None:
        lines += [
            f"Agreement of independently trained critics on the direction: mean cosine "
            f"{ag['mean_cosine']:.2f} between their action gradients on "
            f"{res['rollouts']['held_out_states']:,} held-out rollout states ({ag['pairs']} pair(s); 1 = the same "
            "direction, 0 = unrelated).",
            "",
        ]

    def listed(alphas: list[str]) -> str:
        return ", ".join(f"α = {a}" for a in alphas)

    if v["beats_base"]:
        reading = (
            f"a step along the critics' gradient beats the base alone by more than two standard errors at "
            f"{listed(v['beats_base'])}: the gradient points somewhere a residual actor can follow."
        )
    elif v["beats_random"]:
        reading = (
            f"no step along the critics' gradient beats the base alone by more than two standard errors, though it "
            f"does better than a random step at {listed(v['beats_random'])}: the gradient holds some direction, "
            "but every step tried costs success."
        )
    else:
        reading = (
            "no step along the critics' gradient beats the base alone, nor a random step of the same size, by more "
            "than two standard errors at any α. The gradient a residual actor climbs carries no usable direction "
            "here, and a correction of this size in any direction tried costs success."
        )
    if v["worse_than_random"]:
        reading += (
            f" At {listed(v['worse_than_random'])} the step along the gradient does worse than the random one by "
            "more than two standard errors: the critics point the wrong way there."
        )
    lines += [f"Reading: {reading}", ""]
    picked = res.get("picked_chunks") or {}
    if picked:
        n, base_s = picked["candidates"], v["base"]
        spread_se = diff_se_points(picked["best"], picked["worst"], cfg["eval_episodes"])
        spread = 100 * (picked["best"] - picked["worst"])
        lines += [
            f"Picking among the base's own chunks ({n} sampled per replan, ranked by the critics' mean Q of the "
            "first action; same episodes):",
            "",
            "| the base executes | success | vs the base alone (points ± 1 SE) |",
            "|---|---|---|",
            f"| its own sample (the base alone) | {base_s:.0%} | – |",
        ]
        for pick in ("best", "worst"):
            d = 100 * (picked[pick] - base_s)
            se = diff_se_points(picked[pick], base_s, cfg["eval_episodes"])
            lines.append(f"| the {pick} of {n} by Q | {picked[pick]:.0%} | {d:+.1f} ± {se:.1f} |")
        ranks = spread > 2 * spread_se
        lines += [
            "",
            f"Best minus worst: {spread:+.1f} ± {spread_se:.1f} points: "
            + (
                "the critics do rank the base's own alternatives, so a use of the critic that stays on the base's "
                "actions (selection, not a gradient step) has something to work with."
                if ranks
                else "within two standard errors, so the critics do not rank even the base's own alternatives reliably."
            ),
            "",
        ]
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path, name: str = "residual_probe", write_json: bool = True) -> None:
    """`<out_dir>/<name>.json` (unless `write_json` is False) and `<name>.md`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--expert-episodes", type=int, default=10)
    ap.add_argument("--flow-updates", type=int, default=6_000, help="flow base: offline updates")
    ap.add_argument("--rollout-episodes", type=int, default=150)
    ap.add_argument("--rollout-noise", type=float, default=0.01, help="per-step noise std (normalized action)")
    ap.add_argument("--critics", type=int, default=2, help="independently trained critic ensembles")
    ap.add_argument("--ensemble", type=int, default=5, help="Q-networks per critic ensemble")
    ap.add_argument("--updates", type=int, default=5_000, help="critic updates per ensemble")
    ap.add_argument("--n-step", type=int, default=3)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.02, 0.05], help="steering step sizes")
    ap.add_argument("--eval-episodes", type=int, default=40)
    ap.add_argument(
        "--candidates", type=int, default=8, help="chunks sampled per replan for the best/worst pick (1 = no pick)"
    )
    ap.add_argument("--eval-seed", type=int, default=999)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "docs" / "benchmarks")
    ap.add_argument("--work-dir", type=Path, help="the dataset and the base (default: a temporary directory)")
    ap.add_argument("--name", default="residual_probe", help="output file stem (a variant's own files)")
    ap.add_argument("--from-json", type=Path, help="re-render <name>.md from this JSON (no measuring)")
    args = ap.parse_args(argv)
    if args.from_json:
        write(json.loads(args.from_json.read_text()), args.out_dir, args.name, write_json=False)
        return 0
    if (
        min(args.rollout_episodes, args.critics, args.ensemble, args.updates, args.eval_episodes) < 1
        or min(args.alphas) <= 0
    ):
        ap.error("episode, critic and update counts must be >= 1 and every --alphas step > 0")
    if args.ensemble < 2:
        ap.error("--ensemble must be >= 2 (the residual learner's critic ensemble)")
    command = (".venv/bin/python bench/residual_probe.py " + shlex.join(argv or sys.argv[1:])).strip()
    tmp = None
    if args.work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="residual-probe-")
        args.work_dir = Path(tmp.name)
    try:
        results = measure(args)
    finally:
        if tmp is not None:
            tmp.cleanup()
    config = {k: v for k, v in vars(args).items() if k not in ("out_dir", "work_dir", "from_json", "name")}
    report = {
        "command": command,
        "config": config,
        "machine": {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count()},
        "results": results,
    }
    write(report, args.out_dir, args.name)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
