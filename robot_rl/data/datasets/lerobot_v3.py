"""Episodes → a LeRobotDataset v3.0 folder (Parquet frames + `meta/`), written with pyarrow alone.

The `lerobot` package is not a dependency (it pins its own torch); this module writes the published v3.0 layout
and `lerobot_v3_check.check_lerobot_v3` — which shares no code with it — reads it back before it is declared
written. Layout:

```
<out>/meta/info.json                                   codebase_version "v3.0", fps, features, path templates
<out>/meta/stats.json                                  per feature: min, max, mean, std, count, q01 … q99
<out>/meta/tasks.parquet                               task (string, the pandas index), task_index
<out>/meta/episodes/chunk-000/file-000.parquet         one row per episode: length, tasks, file and frame range,
                                                       stats/<feature>/<stat>, robot_rl/* (success, source, …)
<out>/meta/robot_rl.json                               our provenance: the policy spec that says what actions mean
<out>/data/chunk-{c:03d}/file-{f:03d}.parquet           frames; whole episodes, a new file past data_file_size_mb
```

One frame per transition t of an `Episode` (T frames for T steps): `observation.state` = s_t, `action` = the
**executed** physical action a_t, `next.reward` = r_t, `next.observation.state` = s_t+1 (so the final
next-observation survives), `next.done` on the last frame (LeRobot's "the episode ended here": terminated **or**
truncated), and `next.terminated` / `next.truncated` beside it — only `next.terminated` stops bootstrapping.
`robot_rl.*` frame features carry the policy's own action, the intervention and safety flags and the cost.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import Episode

CODEBASE_VERSION = "v3.0"
"""LeRobotDataset layout version written to `meta/info.json`."""
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
"""Frame files, relative to the dataset root (info.json `data_path`)."""
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
"""Per-episode metadata files."""
INFO_PATH, STATS_PATH, TASKS_PATH = "meta/info.json", "meta/stats.json", "meta/tasks.parquet"
PROVENANCE_PATH = "meta/robot_rl.json"
"""Our own metadata (format version, action units, policy spec); LeRobot ignores files it does not know."""
PROVENANCE_FORMAT = 1
"""Version of `meta/robot_rl.json`."""
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
"""Quantile statistics written beside min/max/mean/std/count (quantile normalization in newer LeRobot policies)."""
EXTRA = "robot_rl."
"""Namespace of our own frame features; not "observation*"/"action*", which LeRobot would feed to a policy."""


@dataclass(frozen=True)
class LeRobotV3Config:
    """How episodes become a LeRobotDataset v3.0 (`LeRobotV3Config.from_spec` fills it from a policy spec)."""

    fps: float
    """Frames per second = the control rate the episodes were acted at, Hz (`timestamp = frame_index / fps`)."""
    robot_type: str = ""
    """info.json `robot_type` ("panda", …; "" writes null)."""
    task: str = ""
    """Task description of every episode whose metadata has no non-empty "task" entry."""
    state_names: tuple[str, ...] = ()
    """One name per observation element (`observation.state` names; () = "state_0", "state_1", …)."""
    action_names: tuple[str, ...] = ()
    """One name per action element, e.g. the commanded joints (() = "action_0", …)."""
    chunks_size: int = 1000
    """Files per `chunk-NNN` folder (LeRobot's default)."""
    data_file_size_mb: float = 100.0
    """A frame file takes whole episodes until this many MB (in-memory Arrow size), then a new file starts."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"LeRobotV3Config: fps must be a positive number, got {self.fps}")
        if self.chunks_size < 1 or not self.data_file_size_mb > 0:
            raise ValueError(
                f"LeRobotV3Config: chunks_size {self.chunks_size} and data_file_size_mb {self.data_file_size_mb} "
                "must be positive"
            )

    @classmethod
    def from_spec(cls, spec: PolicySpec, *, task: str = "", **overrides: Any) -> LeRobotV3Config:
        """fps from `spec.control_hz`, robot type and element names from its robot interface or layout; the task
        defaults to the spec's env id."""
        fields: dict[str, Any] = {
            "fps": float(spec.control_hz),
            "robot_type": spec.robot.robot if spec.robot is not None else "",
            "task": task or spec.env_id or (spec.robot.task if spec.robot is not None else ""),
            "state_names": state_names(spec),
            "action_names": action_names(spec),
        }
        fields.update(overrides)
        return cls(**fields)


def state_names(spec: PolicySpec) -> tuple[str, ...]:
    """`<entry>.<joint>` for per-joint entries, `<entry>.<i>` for other vectors, `<entry>` for scalars."""
    if spec.robot is not None:
        entries = [(e.name, e.size) for e in spec.robot.observation]
        joints = spec.robot.joint_names
    else:
        entries = [(k, int(np.prod(s))) for k, s in zip(spec.observation.keys, spec.observation.shapes, strict=True)]
        joints = ()
    names: list[str] = []
    for entry, size in entries:
        if size == 1:
            names.append(entry)
        elif joints and size == len(joints) and entry.startswith("joint_"):
            names += [f"{entry}.{j}" for j in joints]
        else:
            names += [f"{entry}.{i}" for i in range(size)]
    return tuple(names) if len(names) == spec.observation.dim else ()


def action_names(spec: PolicySpec) -> tuple[str, ...]:
    """The action spec's names, else the robot's commanded joints, else () (generic names)."""
    if spec.action.names:
        return tuple(spec.action.names)
    if spec.robot is not None and len(spec.robot.command.joints) == spec.action.dim:
        return tuple(spec.robot.command.joints)
    return ()


def features(obs_dim: int, act_dim: int, config: LeRobotV3Config) -> dict[str, dict[str, Any]]:
    """The info.json `features` of a dataset of `[O]` observations and `[A]` actions (all per-frame columns)."""
    for what, names, dim in (
        ("state_names", config.state_names, obs_dim),
        ("action_names", config.action_names, act_dim),
    ):
        if names and len(names) != dim:
            raise ValueError(f"{what} has {len(names)} names for {dim} elements: {list(names)}")
    state = list(config.state_names) or [f"state_{i}" for i in range(obs_dim)]
    action = list(config.action_names) or [f"action_{i}" for i in range(act_dim)]

    def vec(names: list[str]) -> dict[str, Any]:
        return {"dtype": "float32", "shape": [len(names)], "names": names}

    def scalar(dtype: str) -> dict[str, Any]:
        return {"dtype": dtype, "shape": [1], "names": None}

    feats = {
        "observation.state": vec(state),
        "action": vec(action),
        "next.observation.state": vec(state),
        "next.reward": scalar("float32"),
        "next.done": scalar("bool"),
        "next.terminated": scalar("bool"),
        "next.truncated": scalar("bool"),
        f"{EXTRA}policy_action": vec(action),
        f"{EXTRA}intervention": scalar("bool"),
        f"{EXTRA}safety_activated": scalar("bool"),
        f"{EXTRA}cost": scalar("float32"),
        "timestamp": scalar("float32"),
        "frame_index": scalar("int64"),
        "episode_index": scalar("int64"),
        "index": scalar("int64"),
        "task_index": scalar("int64"),
    }
    for ft in feats.values():
        ft["fps"] = _fps_value(config.fps)  # v3.0 states the rate on every non-video feature too
    return feats


def _fps_value(fps: float) -> int | float:
    # LeRobot's own datasets store an integer fps; keep a fractional control rate (12.5 Hz) exact instead.
    return int(fps) if float(fps).is_integer() else float(fps)


def _frames(ep: Episode, episode_index: int, first_index: int, task_index: int, fps: float) -> dict[str, Any]:
    """The per-frame columns of one episode as numpy arrays (`[T]` or `[T, n]`)."""
    t = len(ep)
    last = np.zeros(t, np.bool_)
    last[-1] = True
    frame_index = np.arange(t, dtype=np.int64)
    return {
        "observation.state": ep.observations[:-1].astype(np.float32),
        "action": ep.actions.astype(np.float32),  # the executed command, physical units
        "next.observation.state": ep.observations[1:].astype(np.float32),
        "next.reward": ep.rewards.astype(np.float32),
        "next.done": last,  # LeRobot's episode end: terminated or truncated
        "next.terminated": last & ep.terminated,  # truncation is not termination
        "next.truncated": last & ep.truncated,
        f"{EXTRA}policy_action": ep.policy_actions.astype(np.float32),
        f"{EXTRA}intervention": ep.intervention.copy(),
        f"{EXTRA}safety_activated": ep.safety_activated.copy(),
        f"{EXTRA}cost": ep.cost.astype(np.float32),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(t, episode_index, np.int64),
        "index": np.arange(first_index, first_index + t, dtype=np.int64),
        "task_index": np.full(t, task_index, np.int64),
    }


def _arrow(values: npt.NDArray[Any]) -> pa.Array:
    """`[T]` → a scalar column, `[T, n]` → fixed_size_list<n> (what LeRobot's own writer stores for shape [n])."""
    if values.ndim == 1:
        return pa.array(values)
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(values.shape[1]))


def _stats(values: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    """min/max/mean/std/count and quantiles over frames of a `[N]` or `[N, n]` column (NaN-aware: a recording may
    hold NaN policy actions); every statistic but count has n (1 for scalars) entries."""
    x = values.reshape(values.shape[0], -1).astype(np.float64)
    with warnings.catch_warnings():  # an all-NaN element yields NaN, which is the truth
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {
            "min": np.nanmin(x, axis=0),
            "max": np.nanmax(x, axis=0),
            "mean": np.nanmean(x, axis=0),
            "std": np.nanstd(x, axis=0),
            "count": np.array([x.shape[0]], np.int64),
        }
        for name, q in QUANTILES.items():
            out[name] = np.nanquantile(x, q, axis=0)
    return out


def write_lerobot_v3(
    episodes: Sequence[Episode],
    out: str | Path,
    config: LeRobotV3Config,
    *,
    spec: PolicySpec | None = None,
    overwrite: bool = False,
    progress: Callable[[Episode], None] | None = None,
) -> Path:
    """Write `episodes` as a LeRobotDataset v3.0 in `out` (built in a temporary sibling folder, checked with
    `check_lerobot_v3`, then renamed into place); returns `out`.

    Args:
        episodes: episodes of one observation and action size.
        out: dataset folder to create.
        config: fps, robot type, task and names (`LeRobotV3Config.from_spec`).
        spec: the policy spec the physical actions are stated in, stored in `meta/robot_rl.json` (optional).
        overwrite: replace an existing LeRobot dataset at `out` (never a folder that is not one).
        progress: called once per episode written.

    Raises:
        ValueError: no episodes, mixed sizes, names of the wrong length, an episode without a task.
        FileExistsError: `out` is not empty (and `overwrite` is off, or it holds no LeRobot dataset).
        RuntimeError: the written folder fails the layout check (a bug: nothing is left at `out`).
    """
    out = Path(out).absolute()
    if not episodes:
        raise ValueError(f"no episodes to write to {out}")
    obs_dim, act_dim = episodes[0].obs_dim, episodes[0].act_dim
    bad = [i for i, e in enumerate(episodes) if (e.obs_dim, e.act_dim) != (obs_dim, act_dim)]
    if bad:
        e = episodes[bad[0]]
        raise ValueError(
            f"episode {bad[0]} has observations of size {e.obs_dim} and actions of size {e.act_dim}; episode 0 has "
            f"{obs_dim} and {act_dim}"
        )
    episode_tasks = [str(e.metadata.get("task") or config.task) for e in episodes]
    untasked = [i for i, t in enumerate(episode_tasks) if not t]
    if untasked:
        raise ValueError(f"episodes {untasked[:5]} have no task: set LeRobotV3Config.task (--task)")
    feats = features(obs_dim, act_dim, config)
    _refuse(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        _write(tmp, episodes, episode_tasks, feats, config, spec, progress)
        from robot_rl.data.datasets.lerobot_v3_check import check_lerobot_v3

        problems = check_lerobot_v3(tmp)
        if problems:
            raise RuntimeError(f"the LeRobot v3 export failed its layout check: {'; '.join(problems)}")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write(
    root: Path,
    episodes: Sequence[Episode],
    episode_tasks: list[str],
    feats: Mapping[str, Mapping[str, Any]],
    config: LeRobotV3Config,
    spec: PolicySpec | None,
    progress: Callable[[Episode], None] | None,
) -> None:
    tasks = list(dict.fromkeys(episode_tasks))  # first-seen order: task_index 0 is the first episode's task
    task_of = {t: i for i, t in enumerate(tasks)}
    limit_bytes = config.data_file_size_mb * 1024 * 1024
    chunk, file, file_bytes = 0, 0, 0
    pending: list[pa.Table] = []
    rows: list[dict[str, Any]] = []
    all_frames: dict[str, list[npt.NDArray[Any]]] = {k: [] for k in feats}
    first = 0

    def flush() -> None:
        path = root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(pending), path)
        pending.clear()

    for i, (ep, task) in enumerate(zip(episodes, episode_tasks, strict=True)):
        frames = _frames(ep, i, first, task_of[task], config.fps)
        table = pa.table({k: _arrow(frames[k]) for k in feats})
        if pending and file_bytes + table.nbytes > limit_bytes:
            # Whole episodes per file: LeRobot finds an episode through one (chunk, file) pair.
            flush()
            chunk, file = (chunk + 1, 0) if file + 1 == config.chunks_size else (chunk, file + 1)
            file_bytes = 0
        pending.append(table)
        file_bytes += table.nbytes
        row: dict[str, Any] = {
            "episode_index": i,
            "tasks": [task],
            "length": len(ep),
            "data/chunk_index": chunk,
            "data/file_index": file,
            "dataset_from_index": first,
            "dataset_to_index": first + len(ep),
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            "robot_rl/success": ep.success,
            "robot_rl/terminated": ep.terminated,
            "robot_rl/truncated": ep.truncated,
            "robot_rl/source": ep.source,
            "robot_rl/metadata": json.dumps(_jsonable(ep.metadata), sort_keys=True),
        }
        for key, values in frames.items():
            all_frames[key].append(values)
            for stat, value in _stats(values).items():
                row[f"stats/{key}/{stat}"] = value.tolist()
        rows.append(row)
        first += len(ep)
        if progress is not None:
            progress(ep)
    flush()

    _write_episodes(root, rows)
    _write_tasks(root, tasks)
    stats = {k: {s: v.tolist() for s, v in _stats(np.concatenate(parts)).items()} for k, parts in all_frames.items()}
    _write_json(root / STATS_PATH, stats)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": config.robot_type or None,
        "total_episodes": len(episodes),
        "total_frames": first,
        "total_tasks": len(tasks),
        "chunks_size": config.chunks_size,
        "data_files_size_in_mb": config.data_file_size_mb,
        "video_files_size_in_mb": 200,  # LeRobot's default; no videos are written
        "fps": _fps_value(config.fps),
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": None,  # low-dimensional data only
        "features": feats,
    }
    _write_json(root / INFO_PATH, info)
    provenance = {
        "format": PROVENANCE_FORMAT,
        "action_units": "physical",
        "policy_spec": spec.to_json() if spec is not None else None,
        "sources": sorted({e.source for e in episodes}),
    }
    _write_json(root / PROVENANCE_PATH, provenance)


def _write_episodes(root: Path, rows: list[dict[str, Any]]) -> None:
    # One metadata file: a row per episode is small (LeRobot rolls these files only past data_file_size_mb too).
    def arrow_type(key: str) -> pa.DataType | None:
        if key == "tasks":
            return pa.list_(pa.string())
        if key.startswith("stats/"):  # per-feature statistics as lists, `count` a one-element integer list
            return pa.list_(pa.int64() if key.endswith("/count") else pa.float64())
        return None  # inferred: int64, bool, string

    table = pa.table({key: pa.array([row[key] for row in rows], type=arrow_type(key)) for key in rows[0]})
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _write_tasks(root: Path, tasks: list[str]) -> None:
    """`task_index` plus the task string, marked (pandas' parquet metadata) as the index: LeRobot reads this file
    with pandas and looks tasks up by index."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    # The `pandas` schema metadata as pandas' developer guide specifies it ("Storing pandas DataFrame objects in
    # Apache Parquet format"): a named index stored as the column of the same name. pandas is not needed to write it;
    # `pandas_version` names the metadata layout pandas >= 2 reads, not an installed pandas.
    column = {"metadata": None}
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", **column}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", **column},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", **column},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    table = table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})
    pq.write_table(table, root / TASKS_PATH)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN stays NaN (Python's json writes and reads it; a recording may hold NaN policy actions).
    path.write_text(json.dumps(data, indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    """`value` through a JSON round trip (numpy scalars and arrays become plain numbers and lists)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _refuse(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
        if not (out / INFO_PATH).is_file():
            raise FileExistsError(f"{out} is not empty and holds no LeRobot dataset: refusing to replace it")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an old dataset there is moved aside first and removed last, so a crash
    leaves either the old or the new dataset at `out`, never a half-written one."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
