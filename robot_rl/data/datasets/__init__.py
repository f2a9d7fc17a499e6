"""Training datasets: sources (scripted experts, bundle rollouts, MCAP recordings) → one `Episode` type → Minari.

```python
from robot_rl.data.datasets import load_episodes, load_replay
episodes = load_episodes("data/reach-expert")          # list[Episode], physical actions
buffer = load_replay("data/reach-expert", spec)         # ReplayBuffer, actions normalized with `spec`
```
`robot-rl dataset expert|rollout|mcap` builds them (docs/datasets.md).
"""

from __future__ import annotations

from pathlib import Path

from robot_rl.core.specs import PolicySpec
from robot_rl.data.datasets.episode import DatasetSummary, Episode
from robot_rl.data.datasets.minari_io import Dataset, read_dataset, write_dataset
from robot_rl.data.datasets.replay_fill import fill_replay, spec_mismatch
from robot_rl.data.replay import ReplayBuffer

__all__ = [
    "Dataset",
    "DatasetSummary",
    "Episode",
    "fill_replay",
    "load_episodes",
    "load_replay",
    "read_dataset",
    "spec_mismatch",
    "write_dataset",
]


def load_episodes(path: str | Path) -> list[Episode]:
    """The episodes of a dataset folder written by `robot-rl dataset` (physical actions)."""
    return read_dataset(path).episodes


def load_replay(path: str | Path, spec: PolicySpec, capacity: int | None = None) -> ReplayBuffer:
    """A replay buffer filled with a dataset's transitions, actions normalized to [-1, 1] with `spec`.

    Args:
        path: dataset folder (or its `data/` folder).
        spec: the spec of the policy to be trained (its physical range does the normalizing).
        capacity: buffer capacity; None = exactly the dataset's size (a larger one leaves room for online data;
            a smaller one keeps the last `capacity` transitions).

    Raises:
        FileNotFoundError: no dataset at `path`.
        ValueError: the dataset's robot, joints, command interface or observation layout differ from `spec`'s.
    """
    data = read_dataset(path)
    problems = spec_mismatch(data.spec, spec)
    if problems:
        raise ValueError(
            f"dataset {path} ({data.spec.env_id or 'no env id'}) does not match the policy spec "
            f"({spec.env_id or 'no env id'}): {'; '.join(problems)}"
        )
    steps = sum(len(e) for e in data.episodes)
    buffer = ReplayBuffer(capacity if capacity is not None else max(steps, 1), spec.observation.dim, spec.action.dim)
    fill_replay(buffer, data.episodes, spec)
    return buffer
