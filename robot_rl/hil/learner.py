"""The human-in-the-loop learner's ROS-free core: episodes in, updates, checkpoints and verified bundles out.

The learner beside the robot (issue 15) receives the policy node's executed steps, assembled into `Episode`s by
the same rules as a recording (`robot_rl.data.datasets.sources.mcap`), and trains any registered off-policy
learner on them. Residual RL on the deployed base is the default: the learner sees every episode through the
base's `data_view` (the base's proposal appended to each observation), exactly as `robot-rl train residual_sac`
sees its env, so what it learns exports as the same composite bundle.

Buffers (HIL-SERL's layout): `online` holds every step the robot executed (the human's too: they are what
happened), `demo` holds demonstrations given at start (`add_demonstrations`) and every intervention step again,
so a batch draws `demo_ratio` of its rows from what the human did (RLPD's symmetric sampling at 0.5).

A run folder is an ordinary training run (config.json, checkpoints/, metrics.jsonl), so `robot-rl export` works
on it too; its checkpoints also carry both buffers, the update and episode counters, and the bundles already
announced, so a learner killed at any point resumes where its last checkpoint was. A folder that already holds a
run is resumed only when asked (`resume=True`) and refused with the reason otherwise: never silently overwritten.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_rl.algos.base import Algorithm
from robot_rl.algos.registry import algo_config_from_json, get_algorithm, make_algorithm
from robot_rl.core.config import config_to_json
from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import Batch, TrainingStats
from robot_rl.data.datasets.episode import Episode
from robot_rl.data.datasets.replay_fill import episode_columns
from robot_rl.data.replay import ReplayBuffer
from robot_rl.train import checkpoint as ckpt
from robot_rl.train.batches import mixed_batches, requested_layout, sample_batches, torch_batches
from robot_rl.train.config import TrainConfig
from robot_rl.train.device import device_rng_state, place_algorithm, resolve_device, restore_device_rng
from robot_rl.train.metrics import MetricsLogger
from robot_rl.train.session import check_finite

FORMAT = 1
"""Version of the learner's own checkpoint state (buffers, counters, announced bundles)."""


@dataclass(frozen=True)
class HilLearnerConfig:
    """What the learner trains, on what data, and how often it checkpoints and exports."""

    env: str
    """The task's env id (the deployed bundle's `spec.env_id`): the spec, the base view and exports use it; the
    learner never steps it."""
    run_dir: Path
    """The learner's run folder (config.json, checkpoints/, bundles/, metrics.jsonl)."""
    algo: str = "residual_sac"
    """Registered off-policy learner (`residual_sac` / `residual` on the deployed base by default; `sac` for RL
    from scratch, RLPD-style with `demo_ratio` 0.5)."""
    algo_config: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of the learner's default config (JSON values, as `config.json["algo_config"]` holds them)."""
    base: str = ""
    """The frozen base of a residual learner: the deployed bundle's directory (sets the learner config's `base`;
    empty = the learner config's own)."""
    backend: str = ""
    """Physics backend of the task env the spec is read from (empty = its default)."""
    seed: int = 0
    """Seed of the networks and the batch draws."""
    buffer_size: int = 200_000
    """Capacity of the online and of the demonstration buffer (transitions each)."""
    demo_ratio: float = 0.5
    """Share of each batch drawn from the demonstration buffer once it holds data (0.5 = symmetric sampling)."""
    learning_starts: int = 500
    """Online transitions received before the first update."""
    updates_per_step: float = 1.0
    """`update()` calls per online transition received (each call does the learner's own UTD inside)."""
    export_every_updates: int = 1_000
    """Export and announce a verified bundle every this many `update()` calls."""
    checkpoint_every_updates: int = 1_000
    """Checkpoint (networks, optimizers, both buffers, counters) every this many `update()` calls."""
    parity_samples: int = 2_000
    """Observations of each export's parity check (the export refuses a bundle that disagrees with torch)."""
    keep_bundles: int = 5
    """Exported bundles kept on disk (the oldest are deleted; the one in use by the robot is never the oldest)."""
    torch_threads: int = 1
    """Intra-op threads of the learner (the robot's control loop shares the machine)."""
    device: str = "auto"
    """Where the learner trains: `auto` (a CUDA GPU when torch sees one, else the CPU), `cpu`, `cuda` or `cuda:N`
    (`robot_rl.train.device`); exported bundles run on the CPU either way."""
    signing_key: str = ""
    """Ed25519 private key PEM (`robot-rl sign --generate-key`) that signs every exported bundle before it is
    announced, so a robot that pins its bundle and sets `trusted_keys` to the public half accepts the swap (empty =
    exports are unsigned)."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("buffer_size", "export_every_updates", "checkpoint_every_updates", "parity_samples"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.keep_bundles < 2:
            problems.append(
                f"keep_bundles must be >= 2 (the robot may still run the previous one), got {self.keep_bundles}"
            )
        if self.learning_starts < 0 or self.torch_threads < 0 or self.seed < 0:
            problems.append("learning_starts, torch_threads and seed must be >= 0")
        if not 0.0 <= self.demo_ratio <= 1.0:
            problems.append(f"demo_ratio must be in [0, 1], got {self.demo_ratio}")
        if not (math.isfinite(self.updates_per_step) and self.updates_per_step > 0):
            problems.append(f"updates_per_step must be positive and finite, got {self.updates_per_step}")
        if not self.env:
            problems.append("env is empty: give the task's env id (the bundle's spec.env_id)")
        if self.signing_key:
            from robot_rl.export.signing import load_private_key

            try:  # at start, not at the first export an hour in: a wrong key path is a configuration error
                load_private_key(self.signing_key)
            except ValueError as exc:
                problems.append(f"signing_key: {exc}")
        if problems:
            raise ValueError("invalid HilLearnerConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class ExportedBundle:
    """A verified bundle the learner wrote, ready to announce."""

    bundle_dir: Path
    """The bundle directory (written to a temporary name, verified, then renamed into place)."""
    onnx_sha256: str
    """sha256 of its policy.onnx (what the node checks before swapping)."""
    updates: int
    """The learner's update count when it was exported."""
    metrics: Mapping[str, float]
    """Recent training figures (episodes, success and intervention rates, losses)."""


class RunFolderExists(FileExistsError):
    """The run folder already holds a run and resuming was not asked for."""


class HilLearner:
    """See the module docstring. Not thread-safe: one thread (the learner node's loop) calls everything."""

    def __init__(self, cfg: HilLearnerConfig, resume: bool = False) -> None:
        self.cfg = cfg
        device = resolve_device(cfg.device)  # a missing GPU is refused before the run folder is touched
        run_dir = cfg.run_dir
        saved_cfg: dict[str, Any] = {}
        if (run_dir / "config.json").exists():
            if not resume:
                raise RunFolderExists(
                    f"{run_dir} already holds a learner run: resume it (`--resume`) or choose another folder; "
                    "nothing in it was touched"
                )
            saved_cfg = json.loads((run_dir / "config.json").read_text())
        elif resume and run_dir.exists() and any(run_dir.iterdir()):
            raise RunFolderExists(f"{run_dir} is not empty and holds no learner run (no config.json): refusing it")
        run_dir.mkdir(parents=True, exist_ok=True)

        entry = get_algorithm(cfg.algo)
        algo_json = {**config_to_json(entry.default_config()), **dict(cfg.algo_config)}
        if cfg.base and "base" in algo_json:  # a learner on a base (residual); others learn without one
            algo_json["base"] = cfg.base
        algo_cfg = algo_config_from_json(cfg.algo, algo_json, entry.module)
        if saved_cfg and saved_cfg.get("algo") != cfg.algo:
            raise RunFolderExists(f"{run_dir} holds a {saved_cfg.get('algo')!r} run, not {cfg.algo!r}")
        self.train_cfg = TrainConfig(
            env=cfg.env,
            backend=cfg.backend,
            data="mixed",
            demo_ratio=cfg.demo_ratio,
            seed=cfg.seed,
            buffer_size=cfg.buffer_size,
            out_dir=run_dir.parent,
            run_name=run_dir.name,
            torch_threads=cfg.torch_threads,
            device=cfg.device,
            progress=False,
            tensorboard=False,
        )
        self.env_spec, self.spec, self.view = _spec_and_view(entry, algo_cfg, cfg)
        if self.view is not None and "base" in saved_cfg:
            self.view.check(saved_cfg["base"])  # a resume on another base is refused (BaseError)
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.algo_cfg = algo_cfg
        # An imitation learner (bc, diffusion, ...) learns only from what people did: the demonstrations and the
        # interventions (HG-DAgger). Fed the robot's own executed steps it would imitate its own mistakes.
        self.imitation = bool(entry.needs_dataset)
        self.algo: Algorithm = place_algorithm(
            lambda: make_algorithm(cfg.algo, self.spec, algo_cfg, entry.module), device
        )
        self.config_json: dict[str, Any] = {
            "algo": cfg.algo,
            "algo_module": entry.module,
            "algo_config": config_to_json(algo_cfg),
            "train": config_to_json(self.train_cfg),
            "policy_spec": self.spec.to_json(),
            "learner": {k: (str(v) if isinstance(v, Path) else v) for k, v in config_to_json(cfg).items()},
        }
        if self.view is not None:
            self.config_json["base"] = self.view.record()
        ckpt.atomic_write_text(run_dir / "config.json", json.dumps(self.config_json, indent=1))

        obs_dim, act_dim = self.spec.observation.dim, self.spec.action.dim
        self.online = ReplayBuffer(cfg.buffer_size, obs_dim, act_dim)
        self.demo = ReplayBuffer(cfg.buffer_size, obs_dim, act_dim)
        self.rng = np.random.default_rng([cfg.seed, 2])
        self.updates = 0
        """`update()` calls so far (the checkpoint step)."""
        self.episodes = 0
        """Online episodes received."""
        self.pending_updates = 0.0
        """Updates owed to the data received (`updates_per_step` per online transition)."""
        self.announced: list[dict[str, Any]] = []
        """Every bundle exported so far (dir, sha256, updates), oldest first."""
        self.recent: list[dict[str, float]] = []
        """The last 20 episodes' success, intervention share and length (the metrics announced with a bundle)."""
        self._stats_acc: dict[str, float] = {}
        self._stats_n = 0
        self._next_export = cfg.export_every_updates
        self._next_checkpoint = cfg.checkpoint_every_updates
        self._stream: Iterator[Batch[torch.Tensor]] | None = None
        self._stream_has_demo = False
        self.logger = MetricsLogger(run_dir, False)
        if saved_cfg:
            self._restore()

    # ----------------------------------------------------------------------------------------------- data

    def add_demonstrations(self, episodes: Sequence[Episode]) -> int:
        """Recorded episodes given at start (MCAP recordings, expert datasets) into the demonstration buffer;
        returns the transitions added."""
        n = 0
        for ep in self._viewed(episodes):
            columns, _ = episode_columns(ep, self.env_spec)
            self.demo.add_batch(**columns)
            n += len(ep)
        return n

    def add_episode(self, episode: Episode, *, success: bool | None = None) -> int:
        """One episode the robot executed (or a cut piece of one): every step into the online buffer, the
        intervention steps into the demonstration buffer too; owes `updates_per_step` updates per step (an
        imitation learner only once people have shown it something)."""
        (viewed,) = self._viewed([episode])
        columns, _ = episode_columns(viewed, self.env_spec, online=True)
        self.online.add_batch(**columns)
        human = columns["intervention"] > 0.5
        if human.any():
            self.demo.add_batch(**{k: v[human] for k, v in columns.items()})
        self.algo.observe(np.asarray(viewed.observations, np.float32))
        if not self.imitation or len(self.demo) > 0:  # an imitation learner with nothing to imitate owes nothing
            self.pending_updates += self.cfg.updates_per_step * len(viewed)
        self.episodes += 1
        won = bool(episode.success if success is None else success)
        self.recent = [
            *self.recent,
            {"success": float(won), "intervention": float(human.mean()), "length": float(len(viewed))},
        ][-20:]
        return len(viewed)

    def _viewed(self, episodes: Sequence[Episode]) -> list[Episode]:
        return list(episodes) if self.view is None else self.view.episodes(episodes, self.env_spec)

    # ---------------------------------------------------------------------------------------------- train

    @property
    def ready(self) -> bool:
        """Enough online data for the first update (and, for an imitation learner, some people's data)."""
        return len(self.online) >= max(self.cfg.learning_starts, 1) and (not self.imitation or len(self.demo) > 0)

    def train(self, max_updates: int | None = None) -> int:
        """Do the updates owed (at most `max_updates`); returns how many ran. Writes checkpoints as they fall due."""
        if not self.ready:
            return 0
        todo = int(self.pending_updates)
        if max_updates is not None:
            todo = min(todo, max_updates)
        stream = self._batches()
        for _ in range(todo):
            t0 = time.perf_counter()
            stats = self.algo.update(stream)
            check_finite(stats, self.updates, self.cfg.run_dir)
            self._accumulate(stats, time.perf_counter() - t0)
            self.updates += 1
            self.pending_updates -= 1.0
            if self.updates >= self._next_checkpoint:
                self.save()
        return todo

    @property
    def export_due(self) -> bool:
        """`export_every_updates` updates have run since the last export."""
        return self.updates >= self._next_export

    def defer_export(self) -> None:
        """Skip the export that is due (it failed; the next one falls `export_every_updates` later)."""
        every = self.cfg.export_every_updates
        self._next_export = (self.updates // every + 1) * every

    def _batches(self) -> Iterator[Batch[torch.Tensor]]:
        """The batch stream: online only until the demonstration buffer holds data, then mixed (an imitation
        learner: the demonstration buffer only, demonstrations and interventions)."""
        has_demo = len(self.demo) > 0 and (self.cfg.demo_ratio > 0 or self.imitation)
        if self._stream is None or has_demo != self._stream_has_demo:
            layout = requested_layout(self.algo)
            size = int(getattr(self.algo_cfg, "batch_size", 256))
            if self.imitation:
                raw = sample_batches(self.demo, size, self.rng, layout)
            elif has_demo:
                raw = mixed_batches(self.online, self.demo, self.cfg.demo_ratio, size, self.rng, layout)
            else:
                raw = sample_batches(self.online, size, self.rng, layout)
            self._stream, self._stream_has_demo = torch_batches(raw), has_demo
        return self._stream

    def _accumulate(self, stats: TrainingStats, wall_s: float) -> None:
        for k, v in stats.values.items():
            self._stats_acc[k] = self._stats_acc.get(k, 0.0) + v
        self._stats_acc["time/update_s"] = self._stats_acc.get("time/update_s", 0.0) + wall_s
        self._stats_n += 1
        if self._stats_n >= 100:
            self.flush_metrics()

    def flush_metrics(self) -> None:
        """Write the averaged statistics since the last call, with the recent episode figures."""
        values = {k: v / max(self._stats_n, 1) for k, v in self._stats_acc.items()}
        values.update(self.metrics())
        self.logger.log(self.updates, 0.0, values)
        self._stats_acc, self._stats_n = {}, 0

    def metrics(self) -> dict[str, float]:
        """Episodes, buffer sizes and the recent success / intervention rates."""
        out = {
            "episodes": float(self.episodes),
            "updates": float(self.updates),
            "online_transitions": float(len(self.online)),
            "demo_transitions": float(len(self.demo)),
        }
        if self.recent:
            out["recent_success"] = float(np.mean([r["success"] for r in self.recent]))
            out["recent_intervention"] = float(np.mean([r["intervention"] for r in self.recent]))
        return out

    # ------------------------------------------------------------------------------ checkpoint and export

    def save(self) -> Path:
        """Checkpoint the learner, both buffers and the counters (atomic; the latest valid one is kept)."""
        data = {f"online/{k}": torch.from_numpy(v) for k, v in self.online.state_arrays().items()}
        data.update({f"demo/{k}": torch.from_numpy(v) for k, v in self.demo.state_arrays().items()})
        data["rng/torch"] = torch.get_rng_state()
        data.update(device_rng_state(self.algo))
        state = {
            "hil_format": FORMAT,
            "online_pos": self.online.pos,
            "demo_pos": self.demo.pos,
            "episodes": self.episodes,
            "pending_updates": self.pending_updates,
            "announced": self.announced,
            "recent": self.recent,
            "rng": {"sample": self.rng.bit_generator.state},
            "algo_meta": self.algo.state_meta(),
            "config": self.config_json,
            "train_wall_s": 0.0,
        }
        path = ckpt.save_checkpoint(
            self.cfg.run_dir / "checkpoints", self.updates, self.algo.state_tensors(), data, state
        )
        self._next_checkpoint = (
            self.updates // self.cfg.checkpoint_every_updates + 1
        ) * self.cfg.checkpoint_every_updates
        return path

    def _restore(self) -> None:
        latest = ckpt.latest_checkpoint(self.cfg.run_dir / "checkpoints")
        if latest is None:  # config.json written, killed before the first checkpoint: start the data again
            return
        saved = ckpt.load_checkpoint(latest)
        st = saved.state
        if st.get("hil_format") != FORMAT:
            raise ckpt.CheckpointError(f"{latest} is not a learner checkpoint of format {FORMAT}")
        self.algo.load_state_tensors(saved.model, st["algo_meta"])
        for name, buf in (("online", self.online), ("demo", self.demo)):
            prefix = f"{name}/"
            arrays = {k[len(prefix) :]: v.numpy() for k, v in saved.data.items() if k.startswith(prefix)}
            if arrays and arrays["reward"].shape[0]:
                buf.load_state_arrays(arrays, pos=int(st[f"{name}_pos"]))
        torch.set_rng_state(saved.data["rng/torch"])
        restore_device_rng(self.algo, saved.data)
        self.rng.bit_generator.state = st["rng"]["sample"]
        self.updates = int(st["step"])
        self.episodes = int(st["episodes"])
        self.pending_updates = float(st["pending_updates"])
        self.announced = list(st["announced"])
        self.recent = list(st["recent"])
        every_e, every_c = self.cfg.export_every_updates, self.cfg.checkpoint_every_updates
        self._next_export = (self.updates // every_e + 1) * every_e
        self._next_checkpoint = (self.updates // every_c + 1) * every_c

    def export(self) -> ExportedBundle:
        """Checkpoint, export the current policy as a verified bundle (`robot-rl export`'s path: parity and, for a
        residual on a base bundle, the end-to-end check), move it into `bundles/` atomically and return it."""
        from robot_rl.cli import export_run  # torch + onnx: only the learner process pays for the import

        self.save()
        bundles = self.cfg.run_dir / "bundles"
        bundles.mkdir(exist_ok=True)
        name = f"u{self.updates:09d}"
        tmp = bundles / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        (manifest,) = export_run(self.cfg.run_dir, tmp, overwrite=True, parity_samples=self.cfg.parity_samples).values()
        if self.cfg.signing_key:  # signed under the temporary name: the announced directory is complete when it appears
            from robot_rl.export.signing import sign_bundle

            sign_bundle(tmp, self.cfg.signing_key)
        final = bundles / name
        if final.exists():  # re-exported after a resume at the same update count
            shutil.rmtree(final)
        os.replace(tmp, final)
        sha = str(manifest.onnx_sha256)  # type: ignore[attr-defined]
        self.announced.append({"dir": str(final), "sha256": sha, "updates": self.updates})
        self._prune(bundles)
        self._next_export = (self.updates // self.cfg.export_every_updates + 1) * self.cfg.export_every_updates
        self.save()  # the announced list is part of the state a restart resumes from
        return ExportedBundle(final, sha, self.updates, self.metrics())

    def _prune(self, bundles: Path) -> None:
        keep = {Path(a["dir"]).name for a in self.announced[-self.cfg.keep_bundles :]}
        for d in bundles.iterdir():
            if d.is_dir() and not d.name.startswith(".") and d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)

    def close(self) -> None:
        """Write the last statistics (the caller checkpoints first if it wants the latest state kept)."""
        if self._stats_n:
            self.flush_metrics()
        self.logger.close()


def _spec_and_view(entry: Any, algo_cfg: Any, cfg: HilLearnerConfig) -> tuple[PolicySpec, PolicySpec, Any]:
    """(the task's spec, the learner's spec, the base view or None): the env is built only to read them."""
    from robot_rl.export.manifest import read_manifest
    from robot_rl.train.envs import make_env, make_env_for, policy_spec_for

    base = Path(cfg.base) if cfg.base else None
    if base is not None and (base / "manifest.json").exists():  # the deployed bundle: its command interface
        env = make_env_for(read_manifest(base).policy_spec, cfg.env, backend=cfg.backend, label="the base bundle")
    else:
        env = make_env(cfg.env, backend=cfg.backend)
    try:
        env_spec = policy_spec_for(env, cfg.env)
        data_view = getattr(entry.algo_cls, "data_view", None)
        if data_view is None:
            return env_spec, env_spec, None
        view = data_view(algo_cfg, cfg.env, cfg.seed)
        env = view.wrap(env)  # loads and checks the base against the task, records its identity
        return env_spec, view.spec(env_spec), view
    finally:
        env.close()


__all__ = ["ExportedBundle", "HilLearner", "HilLearnerConfig", "RunFolderExists"]
