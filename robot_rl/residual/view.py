"""`ProposalView`: what the training loop needs to train a learner on top of a frozen base.

A learner class that defines `data_view(cfg, env_id, seed)` sees every env through that view (the training env
and each evaluation env): `wrap(env)` loads the base for that env instance (an expert reads its own env's state,
so every env gets its own base) and appends the proposal to the observations; `spec(env_spec)` is the policy spec
of the wrapped env; `record()` goes into the run's config.json and `check(recorded)` refuses to resume on top of a
different base.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from robot_rl.core.specs import ObservationSpec, PolicySpec
from robot_rl.data.datasets.episode import Episode
from robot_rl.residual.base import base_record, check_same_base, load_base, load_base_for_spec
from robot_rl.residual.proposals import BaseProposalObservation, episode_with_proposals


class ProposalView:
    """The env seen with the base `ref`'s proposal appended to each observation (see the module docstring)."""

    def __init__(self, ref: str, env_id: str, seed: int) -> None:
        self.ref, self.env_id, self.seed = ref, env_id, seed
        self._record: dict[str, Any] | None = None

    def wrap(self, env: gym.Env[Any, Any]) -> BaseProposalObservation:
        """`env` with a freshly loaded base's proposals (raises `BaseError` for a bad or mismatched base)."""
        base = load_base(self.ref, env, self.env_id, self.seed)
        record = base_record(base, self.ref)
        if self._record is None:
            self._record = record
        else:  # every env of one run must see the same base (a bundle rewritten mid-run is refused)
            check_same_base(self._record, base.identity)
        return BaseProposalObservation(env, base)

    def episodes(self, episodes: Sequence[Episode], env_spec: PolicySpec) -> list[Episode]:
        """Recorded `episodes` (demonstrations, base rollouts) with the base's proposals, replayed in order from a
        reset per episode; the base must be the one the envs see (a bundle or run: an expert cannot replay)."""
        base = load_base_for_spec(self.ref, env_spec, self.seed)
        if self._record is not None:
            check_same_base(self._record, base.identity)
        return [episode_with_proposals(e, base) for e in episodes]

    def spec(self, env_spec: PolicySpec) -> PolicySpec:
        """The learner's spec: the env's, with the observation extended by the proposal (A values). The robot's
        observation layout no longer describes it, so the robot interface is left out (the actions are
        unchanged: same physical range and affine map)."""
        dim = env_spec.observation.dim + env_spec.action.dim
        return dataclasses.replace(env_spec, observation=ObservationSpec.flat(dim), robot=None)

    def record(self) -> dict[str, Any]:
        """The base's reference, kind and identity (after the first `wrap`)."""
        if self._record is None:
            raise RuntimeError("ProposalView.record() before any env was wrapped")
        return dict(self._record)

    def check(self, recorded: dict[str, Any]) -> None:
        """Refuse a resume whose base differs from the `recorded` one (raises `BaseError`)."""
        if self._record is None:
            raise RuntimeError("ProposalView.check() before any env was wrapped")
        check_same_base(recorded, self._record["identity"])
