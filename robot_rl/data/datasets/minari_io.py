"""Episodes ⇄ a Minari dataset (arrow backend), written and read through `minari`'s own storage API.

Layout (Minari's): `<out>/data/metadata.json` plus one folder per episode (`<out>/data/<N>/part-0.arrow` and its
`metadata.json`).
Put `<out>` at `$MINARI_DATASETS_PATH/<dataset_id>` and `minari.load_dataset(dataset_id)` opens it; or open it
anywhere with `minari.MinariDataset("<out>/data")`.

What is stored where:
- `observations [T+1, O]` float32, `actions [T, A]` float64 **physical** (the executed command), `rewards`,
  `terminations`, `truncations`: Minari's own columns (the last step's flags are the episode's).
- `infos` (Minari aligns infos with observations: row 0 is the reset, row t+1 belongs to step t):
  `policy_action [T+1, A]`, `intervention`, `safety_activated` (bool) and `cost` `[T+1]`; row 0 is zero/False.
- dataset metadata key `robot_rl`: `{"format", "action_units": "physical", "policy_spec": PolicySpec JSON
  (robot interface included), "source"}` — what `load_replay` needs to map actions to [-1, 1].
- per-episode `metadata.json` key `robot_rl`: `{"success", "source", "metadata"}`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import Episode

DATASET_FORMAT = 1
"""Version of the `robot_rl` metadata this module writes."""
META_KEY = "robot_rl"
"""Key of our entry in Minari's dataset and episode metadata."""
INFO_KEYS = ("policy_action", "intervention", "safety_activated", "cost")
"""Per-step arrays kept in each episode's `infos`."""
DATA_DIR = "data"
"""Minari keeps a dataset's files in `<dataset dir>/data`."""


@dataclass(frozen=True)
class Dataset:
    """A dataset read back: its episodes and the spec its physical actions are stated in."""

    spec: PolicySpec
    """The observation/action spec (robot interface included) of the data."""
    episodes: list[Episode]
    """The episodes in stored order."""
    dataset_id: str
    """Minari dataset id."""
    source: str
    """Source the dataset was built from ("expert", "rollout", "mcap")."""


def data_path(path: str | Path) -> Path:
    """The Minari data folder of a dataset given as its folder or its `data/` folder.

    Raises:
        FileNotFoundError: neither `path/data/metadata.json` nor `path/metadata.json` exists.
    """
    path = Path(path)
    for candidate in (path / DATA_DIR, path):
        if (candidate / "metadata.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path} is not a dataset: no {DATA_DIR}/metadata.json (write one with robot-rl dataset)")


def valid_dataset_id(dataset_id: str) -> bool:
    """True for a Minari id `(namespace/)name-v<version>` (Minari's own parser decides)."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):  # minari raises TypeError for an id without a version
        return False
    return True


def default_dataset_id(out: Path) -> str:
    """`robot_rl/<folder name>`, with `-v0` appended when the name has no Minari version suffix."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in out.resolve().name) or "dataset"
    dataset_id = f"robot_rl/{name}"
    return dataset_id if valid_dataset_id(dataset_id) else dataset_id + "-v0"


def write_dataset(
    out: str | Path,
    episodes: Sequence[Episode],
    spec: PolicySpec,
    *,
    source: str,
    dataset_id: str = "",
    description: str = "",
    overwrite: bool = False,
) -> Path:
    """Write `episodes` as a Minari (arrow) dataset in `out` (a new folder); returns `out`.

    Raises:
        ValueError: no episodes, or an episode's sizes disagree with `spec`.
        FileExistsError: `out` exists and is not empty (with `overwrite`, an existing *dataset* is replaced).
    """
    from minari import __version__ as minari_version
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    # Absolute: minari's arrow storage joins a relative data path with itself (`ds/data/ds/data/0`).
    out = Path(out).absolute()
    if not episodes:
        raise ValueError(f"no episodes to write to {out}")
    obs_dim, act_dim = spec.observation.dim, spec.action.dim
    bad = [i for i, e in enumerate(episodes) if e.obs_dim != obs_dim or e.act_dim != act_dim]
    if bad:
        e = episodes[bad[0]]
        raise ValueError(
            f"episode {bad[0]} has observations of size {e.obs_dim} and actions of size {e.act_dim}; the spec says "
            f"{obs_dim} and {act_dim}"
        )
    dataset_id = dataset_id or default_dataset_id(out)
    if not valid_dataset_id(dataset_id):
        raise ValueError(f"dataset id {dataset_id!r} is not of Minari's form (namespace/)name-v<version>")
    _prepare(out, overwrite)
    storage = MinariStorage.new(
        out / DATA_DIR,
        observation_space=gym.spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32),
        action_space=gym.spaces.Box(
            np.asarray(spec.action.low, np.float64), np.asarray(spec.action.high, np.float64), dtype=np.float64
        ),
        data_format="arrow",
    )
    storage.update_metadata(
        {
            "dataset_id": dataset_id,
            "minari_version": minari_version,
            "algorithm_name": f"robot_rl/{source}",
            "description": description or f"robot_rl {source} dataset of {spec.env_id or 'a robot'}",
            META_KEY: {
                "format": DATASET_FORMAT,
                "action_units": "physical",
                "policy_spec": spec.to_json(),
                "source": source,
            },
        }
    )
    for i, ep in enumerate(episodes):
        seed = ep.metadata.get("seed")
        storage.update_episodes(
            [
                EpisodeBuffer(
                    id=i,
                    seed=int(seed) if isinstance(seed, int) else None,
                    observations=ep.observations,
                    actions=ep.actions,
                    rewards=list(ep.rewards),
                    terminations=[False] * (len(ep) - 1) + [ep.terminated],
                    truncations=[False] * (len(ep) - 1) + [ep.truncated],
                    infos=_infos(ep),
                )
            ]
        )
        storage.update_episode_metadata(
            [{META_KEY: {"success": ep.success, "source": ep.source, "metadata": _jsonable(ep.metadata)}}], [i]
        )
    return out


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
        if not (out / DATA_DIR / "metadata.json").is_file():
            raise FileExistsError(f"{out} is not empty and holds no dataset: refusing to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _infos(ep: Episode) -> dict[str, Any]:
    """Per-step labels as Minari infos: row 0 (the reset) is zero, row t+1 belongs to step t."""

    def shifted(values: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((1, *values.shape[1:]), values.dtype), values])

    # 1-D columns go in as lists: minari's arrow encoder stores an ndarray column with a shape tag that its
    # decoder cannot parse for 1-D data.
    return {
        "policy_action": shifted(ep.policy_actions),
        "intervention": shifted(ep.intervention).tolist(),
        "safety_activated": shifted(ep.safety_activated).tolist(),
        "cost": shifted(ep.cost).tolist(),
    }


def _jsonable(value: Any) -> Any:
    """`value` through a JSON round trip (numpy scalars and arrays become plain numbers and lists)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def read_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by `write_dataset`, through `minari.MinariDataset`.

    Raises:
        FileNotFoundError: `path` holds no dataset.
        ValueError: a Minari dataset that `robot_rl` did not write (no `robot_rl` metadata) or a newer format.
    """
    from minari import MinariDataset

    where = data_path(path)
    dataset = MinariDataset(where)
    meta = dataset.storage.metadata.get(META_KEY)
    if not isinstance(meta, Mapping) or "policy_spec" not in meta:
        raise ValueError(
            f"{path}: a Minari dataset without robot_rl metadata (no policy spec says what its actions mean); "
            "build it with robot-rl dataset"
        )
    if int(meta.get("format", 0)) > DATASET_FORMAT:
        raise ValueError(f"{path}: dataset format {meta['format']} is newer than this robot_rl ({DATASET_FORMAT})")
    spec = PolicySpec.from_json(meta["policy_spec"])
    ids = [int(i) for i in dataset.episode_indices]
    per_episode = {int(m["id"]): m.get(META_KEY, {}) for m in dataset.storage.get_episode_metadata(ids)}
    episodes = []
    for data in dataset.iterate_episodes():
        extra = per_episode.get(int(data.id), {})
        infos = data.infos
        episodes.append(
            Episode.build(
                observations=data.observations,
                actions=data.actions,
                rewards=data.rewards,
                terminated=bool(data.terminations[-1]),
                truncated=bool(data.truncations[-1]),
                policy_actions=np.asarray(infos["policy_action"])[1:],
                intervention=np.asarray(infos["intervention"])[1:],
                safety_activated=np.asarray(infos["safety_activated"])[1:],
                cost=np.asarray(infos["cost"])[1:],
                success=bool(extra.get("success", False)),
                source=str(extra.get("source", meta.get("source", ""))),
                metadata=extra.get("metadata", {}),
            )
        )
    return Dataset(spec=spec, episodes=episodes, dataset_id=dataset.id, source=str(meta.get("source", "")))
