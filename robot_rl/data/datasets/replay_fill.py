"""A dataset's episodes → a filled `ReplayBuffer` with normalized actions (what every learner samples)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robot_rl.core.specs import PolicySpec
from robot_rl.core.types import DataSource
from robot_rl.data.datasets.episode import Episode
from robot_rl.data.replay import ReplayBuffer


def spec_mismatch(data: PolicySpec, spec: PolicySpec) -> list[str]:
    """Why data stated in `data` cannot train a policy of `spec` (empty when it can).

    Physical ranges may differ (actions are stored physical and mapped with the learner's own range); robot,
    joints, command interface and observation layout may not.
    """
    problems = []
    if data.observation.dim != spec.observation.dim:
        problems.append(f"observation size {data.observation.dim} vs {spec.observation.dim}")
    if data.action.dim != spec.action.dim:
        problems.append(f"action size {data.action.dim} vs {spec.action.dim}")
    dr, sr = data.robot, spec.robot
    if (dr is None) != (sr is None):
        problems.append(
            f"robot interface {'present' if dr else 'absent'} in the dataset, {'present' if sr else 'absent'} in "
            "the spec"
        )
    elif dr is not None and sr is not None:
        if dr.robot and sr.robot and dr.robot != sr.robot:
            problems.append(f"robot {dr.robot!r} vs {sr.robot!r}")
        if dr.joint_names != sr.joint_names:
            problems.append(f"joints {list(dr.joint_names)} vs {list(sr.joint_names)}")
        d_obs = [(e.name, e.shape) for e in dr.observation]
        s_obs = [(e.name, e.shape) for e in sr.observation]
        if d_obs != s_obs:
            problems.append(f"observation layout {d_obs} vs {s_obs}")
        if (dr.command.type, dr.command.joints) != (sr.command.type, sr.command.joints):
            problems.append(
                f"command {dr.command.type} on {list(dr.command.joints)} vs {sr.command.type} on "
                f"{list(sr.command.joints)}"
            )
    elif data.env_id and spec.env_id and data.env_id != spec.env_id:  # no robot: the env id is all we know
        problems.append(f"env {data.env_id!r} vs {spec.env_id!r}")
    return problems


def episode_columns(ep: Episode, spec: PolicySpec, online: bool = False) -> tuple[dict[str, np.ndarray], int]:
    """One episode's transitions as `ReplayBuffer.add_batch` columns, and how many actions were clipped.

    Actions are the executed ones, normalized with `spec` and clipped to [-1, 1] (a policy cannot emit beyond its
    range; a human or an expert sometimes commands beyond it). Only the last step carries the episode's
    `terminated`/`truncated` flag (truncation is not termination). `source` is `DataSource.INTERVENTION` where a
    human acted, elsewhere `DataSource.ONLINE` for data the learner's own policy collected (`online`, the
    human-in-the-loop learner's stream) and `DataSource.DATASET` for everything else.
    """
    t = len(ep)
    norm = spec.action.to_normalized(ep.actions)
    clipped = int(np.any(np.abs(norm) > 1.0, axis=1).sum())
    last = np.zeros(t, np.float32)
    last[-1] = 1.0
    elsewhere = int(DataSource.ONLINE if online else DataSource.DATASET)
    columns = {
        "obs": ep.observations[:-1],
        "action": np.clip(norm, -1.0, 1.0),
        "reward": ep.rewards.astype(np.float32),
        "next_obs": ep.observations[1:],
        "terminated": last * float(ep.terminated),
        "truncated": last * float(ep.truncated),
        "cost": ep.cost.astype(np.float32),
        "intervention": ep.intervention.astype(np.float32),
        "source": np.where(ep.intervention, int(DataSource.INTERVENTION), elsewhere),
    }
    return columns, clipped


def fill_replay(buffer: ReplayBuffer, episodes: Sequence[Episode], spec: PolicySpec) -> int:
    """Append every transition of `episodes` to `buffer` (`episode_columns`); returns how many actions were
    clipped into [-1, 1]."""
    clipped = 0
    for ep in episodes:
        columns, n = episode_columns(ep, spec)
        buffer.add_batch(**columns)
        clipped += n
    return clipped
