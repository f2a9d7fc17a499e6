"""An independent reader that checks a folder against the published LeRobotDataset v3.0 layout (pyarrow + json).

It shares no code or constants with the writer (`lerobot_v3.py`), so a mistake in one is not repeated in the other;
the rules come from the v3.0 layout as LeRobot publishes it:

- `meta/info.json`: `codebase_version` "v3.0", typed totals, `fps`, `chunks_size`, `data_files_size_in_mb`,
  `data_path` / `video_path` templates with `{chunk_index}` / `{file_index}`, and `features` (dtype, shape, names;
  the five index features always present; no "/" in a name).
- `meta/episodes/chunk-*/file-*.parquet`: one row per episode in order, with `length`, `tasks`, the data file it
  lives in, and a global frame range `[dataset_from_index, dataset_to_index)` that tiles `0 … total_frames`.
- `data/…parquet` (through `data_path`): every declared non-video feature as a column of its dtype and shape; each
  episode's frames in its file, numbered by `index` and `frame_index`, `timestamp` stepping by 1/fps.
- `meta/tasks.parquet`: unique task strings with `task_index` 0 … total_tasks-1.
- `meta/stats.json`: min/max/mean/std/count for every numeric feature, sized like the feature.

```python
from robot_rl.data.datasets.lerobot_v3_check import check_lerobot_v3
problems = check_lerobot_v3("data/reach-lerobot")   # [] when the folder is a valid v3.0 dataset
```
"""

from __future__ import annotations

import glob
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_INFO_TYPES: dict[str, tuple[type, ...]] = {
    "codebase_version": (str,),
    "robot_type": (str, type(None)),
    "total_episodes": (int,),
    "total_frames": (int,),
    "total_tasks": (int,),
    "chunks_size": (int,),
    "data_files_size_in_mb": (int, float),
    "video_files_size_in_mb": (int, float),
    "fps": (int, float),
    "splits": (dict,),
    "data_path": (str,),
    "video_path": (str, type(None)),
    "features": (dict,),
}
_INDEX_FEATURES = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
_NUMERIC = {
    "bool",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
}
_EPISODE_COLUMNS = (
    "episode_index",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
_STATS = ("min", "max", "mean", "std", "count")
_TIMESTAMP_TOLERANCE_S = 1e-4
"""LeRobot's default tolerance when it checks that timestamps step by 1/fps."""


class LeRobotV3Error(ValueError):
    """A folder is not a valid LeRobotDataset v3.0; `problems` lists every finding."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        super().__init__(f"{root} is not a valid LeRobotDataset v3.0: " + "; ".join(problems))
        self.problems = problems


def assert_lerobot_v3(root: str | Path) -> None:
    """Raise `LeRobotV3Error` naming every problem `check_lerobot_v3` finds."""
    problems = check_lerobot_v3(root)
    if problems:
        raise LeRobotV3Error(Path(root), problems)


def check_lerobot_v3(root: str | Path) -> list[str]:
    """Every way the folder `root` departs from the v3.0 layout, one sentence each ([] = valid)."""
    root = Path(root)
    problems: list[str] = []
    info = _check_info(root, problems)
    if info is None:
        return problems
    features: dict[str, dict[str, Any]] = info["features"]
    tasks = _check_tasks(root, info, problems)
    episodes = _check_episodes(root, info, features, problems)
    if episodes is not None:
        _check_data(root, info, features, episodes, tasks, problems)
    _check_stats(root, info, features, problems)
    return problems


def _check_info(root: Path, problems: list[str]) -> dict[str, Any] | None:
    path = root / "meta" / "info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"meta/info.json is missing or not JSON ({exc})")
        return None
    if not isinstance(info, dict):
        problems.append("meta/info.json is not a JSON object")
        return None
    for key, types in _INFO_TYPES.items():
        if key not in info:
            problems.append(f"info.json has no {key!r}")
        elif isinstance(info[key], bool) or not isinstance(info[key], types):
            problems.append(f"info.json {key!r} is {info[key]!r}, expected {' or '.join(t.__name__ for t in types)}")
    if any(p.startswith("info.json") for p in problems):
        return None
    if info["codebase_version"] != "v3.0":
        problems.append(f"info.json codebase_version is {info['codebase_version']!r}, expected 'v3.0'")
    if not info["fps"] > 0 or info["chunks_size"] < 1:
        problems.append(f"info.json fps {info['fps']} and chunks_size {info['chunks_size']} must be positive")
    for key in ("data_path", "video_path"):
        template = info[key]
        if template is not None and not ("{chunk_index" in template and "{file_index" in template):
            problems.append(f"info.json {key} {template!r} lacks {{chunk_index}} / {{file_index}}")
    for name, split in info["splits"].items():
        lo, _, hi = str(split).partition(":")
        if not (lo.isdigit() and hi.isdigit() and int(lo) <= int(hi) <= info["total_episodes"]):
            problems.append(f"info.json split {name!r} = {split!r} is not 'first:end' within the episodes")
    for name, ft in info["features"].items():
        _check_feature(name, ft, problems)
    for name, dtype in _INDEX_FEATURES.items():
        ft = info["features"].get(name)
        if not isinstance(ft, dict) or ft.get("dtype") != dtype or ft.get("shape") != [1]:
            problems.append(f"feature {name!r} must be declared as {dtype} of shape [1]")
    has_video = any(isinstance(f, dict) and f.get("dtype") == "video" for f in info["features"].values())
    if has_video and (info["video_path"] is None or "{video_key}" not in info["video_path"]):
        problems.append("video features are declared but video_path has no {video_key} template")
    return info


def _check_feature(name: str, ft: Any, problems: list[str]) -> None:
    if "/" in name:
        problems.append(f"feature name {name!r} contains '/'")
    if not isinstance(ft, dict):
        problems.append(f"feature {name!r} is not an object")
        return
    dtype, shape, names = ft.get("dtype"), ft.get("shape"), ft.get("names")
    if dtype not in _NUMERIC | {"string", "image", "video"}:
        problems.append(f"feature {name!r} has unknown dtype {dtype!r}")
    if not (isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape)):
        problems.append(f"feature {name!r} shape {shape!r} is not a list of positive integers")
        return
    if isinstance(names, list):
        want = len(shape) if dtype in ("image", "video") else shape[-1]
        if len(names) != want or not all(isinstance(n, str) for n in names):
            problems.append(f"feature {name!r} has {len(names)} names for shape {shape}")
    elif names is not None and not isinstance(names, dict):
        problems.append(f"feature {name!r} names must be a list, an object or null")


def _check_tasks(root: Path, info: dict[str, Any], problems: list[str]) -> dict[int, str]:
    try:
        table = pq.read_table(root / "meta" / "tasks.parquet")
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"meta/tasks.parquet is missing or unreadable ({exc})")
        return {}
    # LeRobot writes it from pandas: the task string is the index, a column named after it (or __index_level_0__).
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    index_cols = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    task_col = next((c for c in [*index_cols, "task", "__index_level_0__"] if c in table.column_names), None)
    if "task_index" not in table.column_names or task_col is None:
        problems.append(f"meta/tasks.parquet needs task_index and a task string column, has {table.column_names}")
        return {}
    if not pa.types.is_integer(table["task_index"].type) or not pa.types.is_string(table[task_col].type):
        problems.append("meta/tasks.parquet task_index must be integers and tasks strings")
        return {}
    indices, texts = table["task_index"].to_pylist(), table[task_col].to_pylist()
    if sorted(indices) != list(range(len(indices))) or len(set(texts)) != len(texts) or not all(texts):
        problems.append("meta/tasks.parquet must hold unique, non-empty tasks numbered 0 … N-1")
    if len(indices) != info["total_tasks"]:
        problems.append(
            f"meta/tasks.parquet has {len(indices)} tasks, info.json total_tasks says {info['total_tasks']}"
        )
    return dict(zip(indices, texts, strict=True))


def _check_episodes(
    root: Path, info: dict[str, Any], features: dict[str, dict[str, Any]], problems: list[str]
) -> list[dict[str, Any]] | None:
    paths = sorted(glob.glob(str(root / "meta" / "episodes" / "chunk-*" / "file-*.parquet")))
    if not paths:
        problems.append("no meta/episodes/chunk-*/file-*.parquet")
        return None
    try:
        table = pa.concat_tables([pq.read_table(p) for p in paths], promote_options="default")
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"episode metadata is unreadable ({exc})")
        return None
    missing = [c for c in (*_EPISODE_COLUMNS, "tasks") if c not in table.column_names]
    if missing:
        problems.append(f"episode metadata lacks columns {missing}")
        return None
    wrong = [c for c in _EPISODE_COLUMNS if not pa.types.is_integer(table[c].type)]
    list_of_str = pa.types.is_list(table["tasks"].type) and pa.types.is_string(table["tasks"].type.value_type)
    if wrong or not list_of_str:
        problems.append(f"episode metadata columns {wrong + ([] if list_of_str else ['tasks'])} have wrong types")
        return None
    for key, ft in features.items():
        if ft.get("dtype") in _NUMERIC:
            absent = [s for s in _STATS if f"stats/{key}/{s}" not in table.column_names]
            if absent:
                problems.append(f"episode metadata lacks stats/{key}/{absent}")
    rows: list[dict[str, Any]] = table.select([*_EPISODE_COLUMNS, "tasks"]).to_pylist()
    if [r["episode_index"] for r in rows] != list(range(len(rows))):
        problems.append("episode_index in the episode metadata is not 0 … E-1 in order")
    if len(rows) != info["total_episodes"]:
        problems.append(f"{len(rows)} episodes in the metadata, info.json total_episodes says {info['total_episodes']}")
    end = 0
    for r in rows:
        if r["dataset_from_index"] != end or r["dataset_to_index"] - r["dataset_from_index"] != r["length"]:
            problems.append(
                f"episode {r['episode_index']}: frames [{r['dataset_from_index']}, {r['dataset_to_index']}) do not "
                f"follow frame {end} with its length {r['length']}"
            )
        if r["length"] < 1:
            problems.append(f"episode {r['episode_index']} has length {r['length']}")
        end = r["dataset_to_index"]
    if end != info["total_frames"]:
        problems.append(f"episodes end at frame {end}, info.json total_frames says {info['total_frames']}")
    return rows


def _expected_type(ft: dict[str, Any]) -> str:
    """A readable description of the Arrow type a feature must have."""
    inner = str(ft["dtype"])
    return inner if ft["shape"] == [1] else f"list<{inner}>[{']['.join(map(str, ft['shape']))}]"


def _type_matches(column: pa.ChunkedArray, ft: dict[str, Any]) -> bool:
    dtype, shape = ft["dtype"], ft["shape"]
    if dtype == "image":
        return bool(pa.types.is_struct(column.type))
    want = pa.string() if dtype == "string" else pa.from_numpy_dtype(dtype)
    typ, values = column.type, column
    if shape == [1]:
        return bool(typ == want or (dtype == "string" and pa.types.is_large_string(typ)))
    for size in shape:  # one list level per dimension; a variable-size list must still hold `size` items per row
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)):
            return False
        if pa.types.is_fixed_size_list(typ):
            if typ.list_size != size:
                return False
        elif len(values) and pc.min_max(pc.list_value_length(values)).as_py() != {"min": size, "max": size}:
            return False
        values = pc.list_flatten(values)
        typ = typ.value_type
    return bool(typ == want)


def _check_data(
    root: Path,
    info: dict[str, Any],
    features: dict[str, dict[str, Any]],
    episodes: list[dict[str, Any]],
    tasks: dict[int, str],
    problems: list[str],
) -> None:
    stored = {k: ft for k, ft in features.items() if isinstance(ft, dict) and ft.get("dtype") != "video"}
    by_file: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for ep in episodes:
        by_file.setdefault((ep["data/chunk_index"], ep["data/file_index"]), []).append(ep)
    referenced = {(root / info["data_path"].format(chunk_index=c, file_index=f)).resolve() for c, f in by_file}
    for path in sorted(glob.glob(str(root / "data" / "**" / "*.parquet"), recursive=True)):
        if Path(path).resolve() not in referenced:
            problems.append(f"{Path(path).relative_to(root)} belongs to no episode")
    rows_seen = 0
    period = 1.0 / float(info["fps"])
    for (chunk, file), eps in sorted(by_file.items()):
        rel = info["data_path"].format(chunk_index=chunk, file_index=file)
        try:
            table = pq.read_table(root / rel)
        except (OSError, pa.ArrowException) as exc:
            problems.append(
                f"{rel} (episodes {[e['episode_index'] for e in eps][:5]}) is missing or unreadable ({exc})"
            )
            continue
        rows_seen += table.num_rows
        absent = [k for k in stored if k not in table.column_names]
        extra = [c for c in table.column_names if c not in stored]
        if absent:
            problems.append(f"{rel}: declared features missing {absent}")
        if extra:
            problems.append(f"{rel}: undeclared columns {extra}")
        for key in stored:
            if key in table.column_names and not _type_matches(table[key], stored[key]):
                problems.append(f"{rel}: {key!r} is {table[key].type}, declared {_expected_type(stored[key])}")
        if any(k not in table.column_names for k in _INDEX_FEATURES):
            continue
        mine = {e["episode_index"] for e in eps}
        strays = set(table["episode_index"].to_pylist()) - mine
        if strays:
            problems.append(f"{rel} holds frames of episodes {sorted(strays)[:5]} that the metadata puts elsewhere")
        for ep in eps:
            _check_episode_frames(rel, table, ep, tasks, period, problems)
    if rows_seen != info["total_frames"]:
        problems.append(f"the data files hold {rows_seen} frames, info.json total_frames says {info['total_frames']}")


def _check_episode_frames(
    rel: str, table: pa.Table, ep: dict[str, Any], tasks: dict[int, str], period: float, problems: list[str]
) -> None:
    e, n = ep["episode_index"], ep["length"]
    frames = table.filter(pc.equal(table["episode_index"], e))
    if frames.num_rows != n:
        problems.append(f"{rel}: episode {e} has {frames.num_rows} frames, its metadata says {n}")
        return
    if frames["index"].to_pylist() != list(range(ep["dataset_from_index"], ep["dataset_to_index"])):
        problems.append(f"{rel}: episode {e} index is not {ep['dataset_from_index']} … {ep['dataset_to_index'] - 1}")
    if frames["frame_index"].to_pylist() != list(range(n)):
        problems.append(f"{rel}: episode {e} frame_index is not 0 … {n - 1}")
    stamps = frames["timestamp"].to_pylist()
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    if stamps[0] < 0 or any(not math.isclose(s, period, abs_tol=_TIMESTAMP_TOLERANCE_S) for s in steps):
        problems.append(f"{rel}: episode {e} timestamps do not step by 1/fps = {period:.6g} s")
    used = set(frames["task_index"].to_pylist())
    unknown = used - set(tasks)
    if unknown:
        problems.append(f"{rel}: episode {e} uses task_index {sorted(unknown)} absent from meta/tasks.parquet")
    elif tasks and not {tasks[t] for t in used} <= set(ep["tasks"]):
        problems.append(f"{rel}: episode {e} frames' tasks are not among its metadata tasks {ep['tasks']}")


def _check_stats(root: Path, info: dict[str, Any], features: dict[str, dict[str, Any]], problems: list[str]) -> None:
    try:
        stats = json.loads((root / "meta" / "stats.json").read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"meta/stats.json is missing or not JSON ({exc})")
        return
    if not isinstance(stats, dict):
        problems.append("meta/stats.json is not a JSON object")
        return
    numeric = {k for k, ft in features.items() if isinstance(ft, dict) and ft.get("dtype") in _NUMERIC}
    if numeric - set(stats) or set(stats) - set(features):
        problems.append(
            f"stats.json keys differ from the features: missing {sorted(numeric - set(stats))}, "
            f"undeclared {sorted(set(stats) - set(features))}"
        )
    for key in sorted(numeric & set(stats)):
        entry, size = stats[key], math.prod(features[key]["shape"])
        if not isinstance(entry, dict) or any(s not in entry for s in _STATS):
            problems.append(f"stats.json {key!r} lacks one of {list(_STATS)}")
            continue
        if entry["count"] != [info["total_frames"]]:
            problems.append(f"stats.json {key!r} count is {entry['count']}, expected [{info['total_frames']}]")
        for s in ("min", "max", "mean", "std"):
            if _flat_len(entry[s]) != size:
                problems.append(f"stats.json {key!r} {s} has {_flat_len(entry[s])} values, the feature has {size}")


def _flat_len(value: Any) -> int:
    return sum(_flat_len(v) for v in value) if isinstance(value, list) else 1
