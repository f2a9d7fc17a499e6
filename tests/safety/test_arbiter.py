"""Arbiter: e-stop > human (dead-man, fresh command) > policy; onset/offset edges; stale human → None."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from robot_rl.safety import Arbiter

POLICY, HUMAN = np.array([1.0, 1.0]), np.array([2.0, 2.0])


def pick(arb: Arbiter, now: float = 1.0, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "now_s": now,
        "policy_command": POLICY,
        "human_command": HUMAN,
        "human_stamp_s": now,
        "human_active": False,
        "estop_engaged": False,
    }
    return arb.select(**{**args, **kw})


def test_order_estop_human_policy() -> None:
    arb = Arbiter()
    s = pick(arb)
    assert s.source == "policy" and s.command is POLICY and not s.intervention
    s = pick(arb, human_active=True)
    assert s.source == "human" and s.command is HUMAN and s.intervention
    s = pick(arb, human_active=True, estop_engaged=True)
    assert s.source == "estop" and s.command is None and not s.intervention
    s = pick(arb, policy_command=None)
    assert s.source == "none" and s.command is None


def test_stale_or_missing_human_command_holds_never_falls_back_to_policy() -> None:
    arb = Arbiter(human_timeout_s=0.25)
    for kw in ({"human_stamp_s": 0.5}, {"human_stamp_s": None}, {"human_command": None}, {"human_stamp_s": 1.5},
               {"human_stamp_s": math.nan}, {"now": math.inf}):  # fmt: skip
        s = pick(arb, human_active=True, **kw)
        assert s.source == "human" and s.command is None and s.intervention, kw
    assert pick(arb, human_active=True, human_stamp_s=0.8).command is HUMAN


def test_edges_and_step_count() -> None:
    arb = Arbiter()
    flags = [False, True, True, True, False, False, True, False]
    seen = []
    for active in flags:
        s = pick(arb, human_active=active)
        seen.append((s.onset, s.offset))
    assert seen == [(False, False), (True, False), (False, False), (False, False), (False, True), (False, False),
                    (True, False), (False, True)]  # fmt: skip
    assert arb.intervention_steps == 4
    pick(arb, human_active=True)
    s = pick(arb, human_active=True, estop_engaged=True)  # the e-stop ends the intervention
    assert s.offset and not s.intervention
    arb.reset()
    assert arb.intervention_steps == 0
    assert pick(arb, human_active=True).onset


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_timeout_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="human_timeout_s"):
        Arbiter(human_timeout_s=bad)
