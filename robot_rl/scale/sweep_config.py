"""What a sweep runs: its command-line options and its plan (configurations × seeds → named trials).

A sweep is planned in full before anything runs: every configuration (a grid point, or a random draw from Tune's
distributions) gets an id, every (configuration, seed) pair a trial name. The plan is saved in `sweep.json`, so an
interrupted sweep resumes the same trials, and every seed of a configuration trains the very same hyperparameters
(Tune's own random search would draw afresh for every seed, which makes a per-configuration IQM meaningless).
How `--grid`/`--space` options are read is `robot_rl.scale.sweep_keys`.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from robot_rl.core.config import config_from_json, config_to_json
from robot_rl.scale.sweep_keys import FIXED_TRAIN_FIELDS, fit_value, make_domain, parse_grid, parse_space, plain_value
from robot_rl.train.config import TrainConfig


@dataclass(frozen=True)
class SweepOptions:
    """`robot-rl sweep ALGO`: train ALGO once per (configuration, seed) on Ray Tune; every trial is an ordinary
    `robot-rl train` run in `<out>/trials/<trial>/`; results per configuration (IQM over seeds, bootstrap 95% CI)
    go to `<out>/results.md` and `results.json`."""

    seeds: tuple[int, ...] = ()
    """Seeds every configuration is trained with (empty = the single `--seed`)."""
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """A grid axis, repeatable: KEY=V1,V2,... (e.g. `algo.critic_lr=1e-3,3e-4`, `train.total_steps=2000`); the
    values may also be a JSON list, needed when they hold commas: `algo.actor_hidden=[[64,64],[256,256]]`. Every
    combination of the axes is one configuration."""
    space: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """--search random: a distribution to draw from, repeatable: KEY=DIST:ARGS with DIST one of uniform:LOW,HIGH,
    loguniform:LOW,HIGH, randint:LOW,HIGH (HIGH excluded), choice:V1,V2,...
    (e.g. `algo.critic_lr=loguniform:1e-4,1e-2`)."""
    search: Literal["grid", "random"] = "grid"
    """`grid`: the `--grid` combinations; `random`: `--samples` draws from the `--space` distributions (each combined
    with every `--grid` point), with early stopping (ASHA) on the periodic evaluation return by default."""
    samples: int = 8
    """--search random: configurations drawn."""
    search_seed: int = 0
    """--search random: seed of the draws (the same seed draws the same configurations)."""
    scheduler: Literal["auto", "fifo", "asha"] = "auto"
    """Trial scheduler: `fifo` runs every trial to the end, `asha` stops trials whose evaluation return falls behind
    (Ray Tune's AsyncHyperBandScheduler on the periodic evaluations, `--eval-every`); `auto` = asha for random search,
    fifo for a grid."""
    grace_steps: int = 0
    """ASHA: env steps before a trial may be stopped (0 = `--eval-every`)."""
    reduction_factor: int = 3
    """ASHA: 1 / the share of trials kept at each rung."""
    max_failures: int = 2
    """Times a failing trial is restarted (from its last checkpoint) before it is given up."""
    out: Path | None = None
    """Sweep folder (sweep.json, trials/, results.md); default `<out-dir>/sweep-<algo>`."""
    resume: bool = False
    """Continue the sweep in `--out`: finished trials are skipped, unfinished ones resume from their checkpoints."""
    cpus: int = 0
    """CPUs of the local Ray (0 = every core); one trial runs per CPU (per `--torch-threads` CPUs)."""
    address: str = ""
    """Join the Ray cluster at HOST:PORT (`ray start --head` prints it) instead of starting a local Ray; `--out` must
    then be on a filesystem every node shares."""
    ray_temp_dir: Path | None = None
    """Local Ray's sockets and logs (default: Ray's, under /tmp; keep the path short: unix socket paths are limited)."""


@dataclass(frozen=True)
class SchedulerPlan:
    """How Tune schedules the trials."""

    kind: Literal["fifo", "asha"] = "fifo"
    """`fifo`: every trial runs to the end; `asha`: AsyncHyperBandScheduler stops the laggards."""
    metric: str = "eval_return"
    """Reported result ASHA compares (the mean return of a periodic evaluation)."""
    mode: Literal["max", "min"] = "max"
    """Whether a larger `metric` is better."""
    time_attr: str = "step"
    """Progress measure of the rungs: env steps (not report counts, which restart when a trial resumes)."""
    max_t: int = 0
    """ASHA: the largest `total_steps` of the plan."""
    grace_period: int = 0
    """ASHA: steps before a trial may be stopped."""
    reduction_factor: int = 3
    """ASHA: 1 / the share of trials kept at each rung."""


@dataclass(frozen=True)
class ConfigPlan:
    """One configuration of the sweep."""

    id: str
    """`c00`, `c01`, ... (the prefix of its trials' names)."""
    overrides: dict[str, Any]
    """`{"algo.critic_lr": 0.001, "train.total_steps": 2000}` applied to the base configs."""


@dataclass(frozen=True)
class TrialPlan:
    """One trial: a configuration trained with one seed."""

    name: str
    """`<config id>-s<seed>`: its run folder `trials/<name>` and its Tune trial name."""
    config: str
    """Id of its configuration."""
    seed: int
    """TrainConfig.seed of the run."""


@dataclass(frozen=True)
class SweepPlan:
    """Everything that decides which runs a sweep holds (saved as `sweep.json["plan"]`)."""

    algo: str
    """Registered algorithm name."""
    algo_module: str
    """Module whose import registers it (a plug-in is imported in every Ray worker)."""
    base_train: dict[str, Any]
    """TrainConfig of every trial before overrides, without the fields the sweep sets per trial."""
    base_algo: dict[str, Any]
    """The algorithm's config before overrides."""
    seeds: tuple[int, ...]
    """Seeds of every configuration."""
    search: Literal["grid", "random"]
    """How the configurations were made."""
    grid: dict[str, list[Any]]
    """Grid axes (canonical key → values)."""
    space: dict[str, str]
    """Random search: canonical key → the distribution as given (`loguniform:1e-4,1e-2`)."""
    samples: int
    """Random search: draws (0 for a grid)."""
    search_seed: int
    """Random search: seed of the draws."""
    scheduler: SchedulerPlan
    """Tune's trial scheduler."""
    configs: tuple[ConfigPlan, ...]
    """Every configuration, in order."""
    trials: tuple[TrialPlan, ...]
    """Every trial, configuration-major."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (`sweep.json["plan"]`)."""
        return config_to_json(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> SweepPlan:
        """Rebuild from `to_json` output."""
        return config_from_json(SweepPlan, data)

    def config(self, config_id: str) -> ConfigPlan:
        """The configuration `config_id`."""
        for c in self.configs:
            if c.id == config_id:
                return c
        raise KeyError(f"no configuration {config_id!r} in the plan")

    def trial_configs(self, trial: TrialPlan, trials_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
        """The trial's TrainConfig (its run folder `trials_dir/<name>`, one torch thread per CPU it gets, no progress
        bar) and its algorithm config as JSON."""
        overrides = self.config(trial.config).overrides
        train = {**self.base_train, **_section(overrides, "train")}
        fixed = {
            "seed": trial.seed,
            "run_name": trial.name,
            "out_dir": str(trials_dir),
            "progress": False,  # a bar per Ray worker only garbles the driver's output
            "torch_threads": self.cpus_per_trial,
        }
        cfg = config_from_json(TrainConfig, {**train, **fixed})
        return cfg, {**self.base_algo, **_section(overrides, "algo")}

    @property
    def cpus_per_trial(self) -> int:
        """CPUs Ray reserves for each trial: its torch threads (`--torch-threads`, at least 1)."""
        return max(1, int(self.base_train.get("torch_threads", 0)))


def _section(overrides: dict[str, Any], section: str) -> dict[str, Any]:
    prefix = f"{section}."
    return {k[len(prefix) :]: v for k, v in overrides.items() if k.startswith(prefix)}


def _checked(cls: type, base: dict[str, Any], overrides: dict[str, Any], config_id: str) -> dict[str, Any]:
    """`base` with `overrides` applied, validated by building the config; returns its JSON."""
    hints = typing.get_type_hints(cls)
    data = {**base, **{k: fit_value(hints[k], v) for k, v in overrides.items()}}
    try:
        return config_to_json(config_from_json(cls, data))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"configuration {config_id} ({overrides}): {exc}") from None


def build_plan(
    opts: SweepOptions, algo: str, algo_module: str, train: TrainConfig, algo_cfg: Any, algo_cls: type
) -> SweepPlan:
    """The sweep's configurations and trials from the command line.

    Raises:
        ValueError: a bad `--grid`/`--space`, an override a config refuses, or options that do not fit together.
    """
    if opts.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {opts.samples}")
    if opts.max_failures < 0:
        raise ValueError(f"--max-failures must be >= 0, got {opts.max_failures}")
    if train.run_name:
        raise ValueError("--run-name does not apply to a sweep: each trial is named `<config>-s<seed>` under --out")
    seeds = opts.seeds or (train.seed,)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must be distinct and >= 0, got {list(seeds)}")
    grid = parse_grid(opts.grid, algo_cls)
    space = parse_space(opts.space, algo_cls)
    if opts.search == "grid" and space:
        raise ValueError("--space draws configurations: add --search random (a grid takes --grid KEY=V1,V2)")
    if opts.search == "random" and not space:
        raise ValueError("--search random needs at least one --space KEY=DIST:ARGS")
    if set(grid) & set(space):
        raise ValueError(f"{sorted(set(grid) & set(space))} are both a --grid axis and a --space distribution")

    draws: list[dict[str, Any]] = [{}]
    if opts.search == "random":
        import numpy as np

        rng = np.random.default_rng(opts.search_seed)
        domains = {k: make_domain(v, f"--space {k}={v}") for k, v in space.items()}
        draws = [{k: plain_value(d.sample(random_state=rng)) for k, d in domains.items()} for _ in range(opts.samples)]
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    overrides_list = [{**point, **draw} for draw in draws for point in points]

    width = max(2, len(str(len(overrides_list) - 1)))
    base_train = {k: v for k, v in config_to_json(train).items() if k not in FIXED_TRAIN_FIELDS}
    base_train["torch_threads"] = train.torch_threads  # decides the CPUs per trial (0 → 1)
    base_algo = config_to_json(algo_cfg)
    configs: list[ConfigPlan] = []
    trials: list[TrialPlan] = []
    total_steps: list[int] = []
    eval_every: list[int] = []
    for i, overrides in enumerate(overrides_list):
        cid = f"c{i:0{width}d}"
        tj = _checked(TrainConfig, base_train, _section(overrides, "train"), cid)
        aj = _checked(algo_cls, base_algo, _section(overrides, "algo"), cid)
        if int(tj.get("actors", 0)) > 0:
            # A trial is one Ray worker whose CPUs Tune reserved; actors it started would compete outside them.
            raise ValueError("--actors (distributed collection) inside sweep trials is not supported: use --actors 0")
        canonical = {f"train.{k}": tj[k] for k in _section(overrides, "train")}
        canonical |= {f"algo.{k}": aj[k] for k in _section(overrides, "algo")}
        configs.append(ConfigPlan(cid, {k: canonical[k] for k in overrides}))
        trials.extend(TrialPlan(f"{cid}-s{seed}", cid, seed) for seed in seeds)
        total_steps.append(int(tj["total_steps"]))
        eval_every.append(int(tj["eval_every"]))

    kind = ("asha" if opts.search == "random" else "fifo") if opts.scheduler == "auto" else opts.scheduler
    scheduler = SchedulerPlan(kind=kind)
    if kind == "asha":
        if min(eval_every) <= 0:
            raise ValueError("early stopping (ASHA) compares periodic evaluations: set --eval-every > 0")
        grace = opts.grace_steps or min(eval_every)
        if opts.reduction_factor < 2:
            raise ValueError(f"--reduction-factor must be >= 2, got {opts.reduction_factor}")
        if not 0 < grace <= max(total_steps):
            raise ValueError(f"--grace-steps must be in (0, {max(total_steps)}], got {grace}")
        scheduler = SchedulerPlan(
            kind="asha", max_t=max(total_steps), grace_period=grace, reduction_factor=opts.reduction_factor
        )
    return SweepPlan(
        algo=algo,
        algo_module=algo_module,
        base_train=base_train,
        base_algo=base_algo,
        seeds=tuple(seeds),
        search=opts.search,
        grid=grid,
        space=space,
        samples=opts.samples if opts.search == "random" else 0,
        search_seed=opts.search_seed if opts.search == "random" else 0,
        scheduler=scheduler,
        configs=tuple(configs),
        trials=tuple(trials),
    )
