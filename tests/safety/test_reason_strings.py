"""Every safety rule reads differently: an operator (or a recording's `safety_reasons`) can tell which rule acted.

Each case drives one rule of the default chain once; its reason, with numbers and joint names masked, must start
with the counter key it is counted under and must differ from every other rule's. One rule applied by two
interfaces (the braking rule: position and velocity) reads the same in both.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from robot_rl.safety import LINK_NAMES, ChainResult, SafetyChain, SafetyConfig, build_chain

N = 2


def chain_for(interface: str, **kw: object) -> SafetyChain:
    cfg = SafetyConfig.from_dict(
        {
            "joint_names": ["j1", "j2"],
            "command_interface": interface,
            "control_period_s": 0.01,
            "position_lower_rad": [-1.0, -1.0],
            "position_upper_rad": [1.0, 1.0],
            "velocity_limit_rad_s": [1.0, 1.0],
            "acceleration_limit_rad_s2": [10.0, 10.0],
            "effort_limit": [5.0, 5.0],
            **kw,
        }
    )
    return build_chain(cfg)


def step(chain: SafetyChain, command: object, q: object = (0.0, 0.0), t: float = 1.0, **kw: object) -> ChainResult:
    args: dict[str, object] = {"now_s": t, "joint_pos_rad": q, "joint_vel_rad_s": None}
    args.update(observation_stamp_s=t, command_stamp_s=t)
    args.update(kw)
    return chain.filter(command, **args)  # type: ignore[arg-type]


def ready(interface: str, q: tuple[float, ...] = (0.0, 0.0), **kw: object) -> SafetyChain:
    chain = chain_for(interface, **kw)
    chain.reset(joint_pos_rad=np.array(q))
    return chain


def _braking_position() -> ChainResult:
    # 1 rad/s from 0.99 would stop at 1.005 rad (a_max 100 rad/s²): past the limit, so it brakes.
    chain = ready("position", (0.99, 0.0), acceleration_limit_rad_s2=[100.0, 100.0])
    return step(chain, [1.0, 0.0], q=(0.99, 0.0))


def _estop() -> ChainResult:
    chain = ready("position")
    chain.engage_estop("pendant")
    return step(chain, [0.0, 0.0])


def _released() -> ChainResult:
    chain = ready("position")
    chain.engage_estop("pendant")
    chain.release_estop()
    return step(chain, [0.0, 0.0])


def _two_readings(first: dict[str, object], second: dict[str, object]) -> ChainResult:
    """Two steps 10 ms apart: the second reading is judged against the first."""
    chain = ready("position")
    step(chain, [0.0, 0.0], t=1.0, **first)
    return step(chain, [0.0, 0.0], t=1.01, **second)


CASES: dict[str, tuple[str, Callable[[], ChainResult]]] = {
    # rule: (counter key, one step that triggers exactly that rule)
    "estop engaged": ("estop", _estop),
    "estop released": ("estop", _released),
    "stale observation": ("observation_watchdog", lambda: step(ready("position"), [0, 0], observation_stamp_s=0.5)),
    "no observation stamp": (
        "observation_watchdog",
        lambda: step(ready("position"), [0, 0], observation_stamp_s=None),
    ),
    "stale command": ("command_watchdog", lambda: step(ready("position"), [0, 0], command_stamp_s=0.0)),
    "no command stamp": ("command_watchdog", lambda: step(ready("position"), [0, 0], command_stamp_s=None)),
    "wrong shape": ("shape", lambda: step(ready("position"), [0.0, 0.0, 0.0])),
    "non-finite": ("non_finite", lambda: step(ready("position"), [np.nan, 0.0])),
    "position clip": ("position_limit", lambda: step(ready("position", (0.995, 0.0)), [1.5, 0.0], q=(0.995, 0.0))),
    "braking": ("position_limit", _braking_position),
    "braking (velocity)": ("position_limit", lambda: step(ready("velocity", (0.999, 0.0)), [0.5, 0.0], q=(0.999, 0))),
    "outward effort": ("position_limit", lambda: step(ready("effort", (1.0, 0.0)), [1.0, 0.0], q=(1.0, 0.0))),
    "no measurement (position)": ("position_limit", lambda: step(chain_for("position"), [0.0, 0.0], q=None)),
    "no measurement (velocity)": ("position_limit", lambda: step(ready("velocity"), [0.1, 0.0], q=None)),
    "velocity limit": ("velocity_limit", lambda: step(ready("velocity"), [3.0, 0.0])),
    "acceleration limit": ("acceleration_limit", lambda: step(ready("velocity"), [0.5, 0.0])),
    "effort limit": ("effort_limit", lambda: step(ready("effort"), [9.0, 0.0])),
    "implausible position": ("plausibility_position", lambda: step(ready("position"), [0, 0], q=(10.0, 0.0))),
    "implausible jump": ("plausibility_jump", lambda: _two_readings({}, {"q": (0.5, 0.0)})),
    "implausible velocity": (
        "plausibility_velocity",
        lambda: step(ready("position"), [0, 0], joint_vel_rad_s=np.array([5.0, 0.0])),
    ),
    "stamp backwards": (
        "plausibility_stamp",
        lambda: _two_readings({"measurement_stamp_s": 5.0}, {"measurement_stamp_s": 4.0}),
    ),
    "waiting after a sensor fault": (
        "plausibility",
        lambda: _two_readings({"joint_vel_rad_s": np.array([5.0, 0.0])}, {}),
    ),
}
SAME_RULE = {"braking (velocity)": "braking"}
"""Cases that apply another case's rule in another interface: the same words are right there."""


def masked(reason: str) -> str:
    """The reason's wording: numbers → #, joint names → J."""
    text = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", reason)
    return re.sub(r"\bj[12]\b", "J", text)


def reasons() -> dict[str, tuple[str, str]]:
    out = {}
    for rule, (key, run) in CASES.items():
        r = run()
        assert key in r.changed_by, (rule, r)
        out[rule] = (key, r.reasons[r.changed_by.index(key)])
    return out


def test_the_cases_cover_every_counter_key() -> None:
    assert {key for key, _ in CASES.values()} == set(LINK_NAMES) - {"workspace"}  # workspace: tests/safety/links


@pytest.mark.parametrize("rule", CASES)
def test_a_reason_starts_with_the_key_it_is_counted_under(rule: str) -> None:
    key, reason = reasons()[rule]
    assert reason.startswith(f"{key}: "), reason


def test_different_rules_never_share_a_reason_string() -> None:
    found = reasons()
    by_wording: dict[str, list[str]] = {}
    for rule, (_, reason) in found.items():
        wording = masked(reason)
        if rule in SAME_RULE:  # the rule's name reads the same (the units follow the interface)
            assert wording.split(": ")[:2] == masked(found[SAME_RULE[rule]][1]).split(": ")[:2], (rule, reason)
            continue
        by_wording.setdefault(wording, []).append(rule)
    shared = {w: rules for w, rules in by_wording.items() if len(rules) > 1}
    assert shared == {}, shared
