"""Configuration of a training run (the algorithm has its own config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """What to train on, for how long, and where the results go."""

    env: str = "Pendulum-v1"
    """Gymnasium environment id with continuous (Box) observations and actions (also the evaluation env of
    offline training)."""
    backend: str = ""
    """Physics backend for the robot_rl/* simulation suite ("mujoco" or "pybullet"); empty = the env's default."""
    data: Literal["online", "offline", "mixed"] = "online"
    """Training data: `online` (the learner's own env steps), `offline` (only `--dataset`; no env steps, the env
    is used for evaluation), `mixed` (env steps, each batch drawing `--demo-ratio` of its rows from the dataset)."""
    dataset: str = ""
    """Dataset folder for `offline`/`mixed` data (`robot-rl dataset` writes one); its actions are normalized."""
    demo_ratio: float = 0.5
    """Share of each batch drawn from the dataset in `mixed` mode (0.5 = RLPD's symmetric sampling)."""
    total_steps: int = 20_000
    """Environment steps to collect in total (including random warm-up steps); with `offline` data, calls of the
    algorithm's update (gradient steps for an update-to-data ratio of 1)."""
    seed: int = 0
    """Seed for networks, sampling and environment resets; same seed → same run on CPU."""
    learning_starts: int = 1_000
    """Steps of uniformly random actions before the first gradient update."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity in transitions."""
    eval_every: int = 5_000
    """Evaluate the deterministic policy every this many env steps (0 = only at the end)."""
    eval_episodes: int = 5
    """Episodes per evaluation (seeded identically at every evaluation)."""
    checkpoint_every: int = 10_000
    """Save a checkpoint at the first episode boundary after every this many steps (0 = only at the end)."""
    out_dir: Path = Path("runs")
    """Directory under which the run directory is created."""
    run_name: str = ""
    """Run directory name; empty means `<algo>-<env>-s<seed>`."""
    torch_threads: int = 0
    """Intra-op threads for the learner; 0 means one per CPU core."""
    device: str = "auto"
    """Where the learner trains: `auto` (a CUDA GPU when torch sees one, else the CPU), `cpu`, `cuda` or `cuda:N`.
    Replay and datasets stay in host memory; each update's batch moves to the device. Export, evaluation and the
    robot side always run on the CPU (`robot_rl.train.device`)."""
    overlap_env: bool = False
    """Step the environment in a worker thread while the learner updates. Bit-identical results; measured no
    gain on MuJoCo tasks (env step ≈ 2% of a step, docs/benchmarks/sac_vs_sb3.md), useful for slow simulators."""
    log_every: int = 1_000
    """Write training statistics every this many env steps."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also write TensorBoard event files (to `<run>/tb`)."""
    safety: str = ""
    """Safe exploration: every training-env action goes through this safety chain before the simulator executes it
    ("" = off; "manifest" = the robot's own limits; or a policy-node parameter YAML, e.g. one with a `cbf` link).
    Counts land in `<run>/safety.json`; evaluation episodes run unfiltered (`eval --safety` runs the chain)."""
    actors: int = 0
    """Ray actors collecting env steps in parallel for an off-policy learner (docs/scale.md, "Distributed
    collection"); 0 = the single-process loop. Online data only."""
    sync_mode: Literal["throttle", "lockstep"] = "throttle"
    """How `--actors` keep one `update()` call per env step: `throttle` (actors collect while the learner trains;
    an actor waits while the learner owes more than one block per actor of updates) or `lockstep` (every actor
    collects one block, then the learner makes the updates those steps call for: no overlap, reproducible under a
    seed)."""
    weight_push_every: int = 100
    """Learner updates between broadcasts of the policy weights to the actors (`--actors`)."""
    actor_block_steps: int = 100
    """Env steps an actor collects per block it hands back (`--actors`); smaller blocks track the learner more
    closely, larger ones cost fewer round trips."""
    ray_address: str = ""
    """Ray cluster that runs the actors: "" starts a local Ray on loopback; "auto" or HOST:PORT joins a running
    one (every node needs this package installed)."""
    actor_randomization: str = ""
    """JSON file with sim domain randomization (`sim.randomization.DomainRandomization` fields) for the actors'
    envs, or a list of them (actor i uses entry i mod length); "" = nominal envs. robot_rl/* suite envs only;
    evaluation stays nominal."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("total_steps", "buffer_size", "eval_episodes", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_starts", "eval_every", "checkpoint_every", "torch_threads", "seed"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.data not in ("online", "offline", "mixed"):
            problems.append(f"data must be online, offline or mixed, got {self.data!r}")
        if not 0.0 <= self.demo_ratio <= 1.0:
            problems.append(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if not self.device.strip():
            problems.append("device must be auto, cpu, cuda or cuda:N, got an empty string")
        problems.extend(self._distributed_problems())
        if "/" in self.run_name or self.run_name in (".", ".."):
            problems.append(f"run_name must be a plain directory name, got {self.run_name!r}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def _distributed_problems(self) -> list[str]:
        """What is wrong with the `--actors` fields (distributed collection)."""
        problems = []
        if self.actors < 0:
            problems.append(f"actors must be >= 0 (0 = the single-process loop), got {self.actors}")
        for name in ("weight_push_every", "actor_block_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sync_mode not in ("throttle", "lockstep"):
            problems.append(f"sync_mode must be throttle or lockstep, got {self.sync_mode!r}")
        if self.actors > 0:
            if self.data != "online":
                problems.append(f"actors > 0 collects online data only; data is {self.data!r} (use --actors 0)")
            if self.safety:
                problems.append("safe exploration (safety) runs in the single-process loop only; use --actors 0")
            if self.overlap_env:
                problems.append("overlap_env applies to the single-process loop; actors already run beside the learner")
        elif self.actor_randomization:
            problems.append("actor_randomization applies to --actors > 0 (the actors' envs)")
        return problems
