"""Links as parts: the chain is the config's ordered list, the order rules are enforced, and a link defined here
(outside robot_rl) plugs in by registered name or by import path and reports through counters and reasons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from robot_rl.safety import LINK_NAMES, LinkBase, SafetyChain, SafetyConfig, Step, build_chain, register_link
from robot_rl.safety.config import DEFAULT_LINKS
from robot_rl.safety.link import Link, LinkKind, LinkOutput
from robot_rl.safety.registry import BUILTIN_LINKS, make_link, unregister_link
from robot_rl.safety.urdf_kinematics import UrdfChain

GATES = DEFAULT_LINKS[: DEFAULT_LINKS.index("shape")]
"""The default chain's gates (e-stop, watchdogs, plausibility)."""
THROUGH_INPUTS = DEFAULT_LINKS[: DEFAULT_LINKS.index("non_finite") + 1]
"""The default chain up to and including the input checks."""
PERIOD = 0.01
THIS = __name__


def config(**kw: Any) -> SafetyConfig:
    return SafetyConfig.for_joints(
        ["j1", "j2"], "position", PERIOD, [-1.0, -2.0], [1.0, 2.0], [1.0, 2.0], acceleration=[100.0, 100.0], **kw
    )


class HalfSpeed(LinkBase):
    """A filter: halves every step away from the previous target (a stand-in for a CBF or a speed scaler)."""

    name = "half_speed"
    kind: LinkKind = "filter"

    def __init__(self, cfg: SafetyConfig, kinematics: object = None) -> None:
        super().__init__()

    def filter(self, action: np.ndarray, step: Step) -> LinkOutput:
        prev = step.prev_target
        if prev is None or not (action != prev).any():
            return action, ()
        out = prev + 0.5 * (action - prev)
        return out, (("half_speed", f"half_speed: step halved ({float(np.abs(action - prev).max()):.3g} rad)"),)


class NoJ2Positive(LinkBase):
    """A check after the clamp: holds whenever j2's target is positive."""

    name = "no_j2_positive"
    kind: LinkKind = "check"

    def __init__(self, cfg: SafetyConfig, kinematics: object = None) -> None:
        super().__init__()

    def filter(self, action: np.ndarray, step: Step) -> LinkOutput:
        return (action, ()) if action[1] <= 0.0 else self.hold(f"j2 target {action[1]:.3g} > 0")


@pytest.fixture
def registered() -> Iterator[None]:
    register_link("half_speed", HalfSpeed)
    yield
    unregister_link("half_speed")


def run(chain: SafetyChain, commands: list[np.ndarray]) -> list[Any]:
    chain.reset(np.zeros(2))
    out = []
    for k, u in enumerate(commands, 1):
        now = k * PERIOD
        out.append(
            chain.filter(
                u,
                now_s=now,
                joint_pos_rad=np.zeros(2),
                joint_vel_rad_s=None,
                observation_stamp_s=now,
                command_stamp_s=now,
            )
        )
    return out


def test_default_links_are_todays_chain() -> None:
    cfg = config()
    assert cfg.links == DEFAULT_LINKS
    assert "links" not in cfg.to_json()  # old configs keep their JSON and hash
    assert SafetyConfig.from_dict(cfg.to_json()) == cfg
    chain = build_chain(cfg)
    assert [link.name for link in chain.links] == list(DEFAULT_LINKS)
    assert tuple(chain.counters) == (*LINK_NAMES, "held")
    assert all(isinstance(link, Link) for link in chain.links)


def test_registered_link_is_used_by_name(registered: None) -> None:
    links = (*THROUGH_INPUTS, "half_speed", "joint_limits", "workspace")
    cfg = config(links=links)
    assert cfg.to_json()["links"] == list(links)
    chain = build_chain(cfg)
    results = run(chain, [np.array([0.004, 0.0])] * 3)
    assert results[0].changed_by == ("half_speed",) and "step halved" in results[0].reasons[0]
    np.testing.assert_allclose(results[0].action, [0.002, 0.0])
    assert chain.counters["half_speed"] == 3  # each step halves what is left
    assert {d.name for d in chain.diagnostics()} >= {"safety/half_speed"}
    # The clamp still comes after it: a command halved to a still-too-fast step is rate limited.
    big = run(build_chain(cfg), [np.array([0.9, 0.0])])[0]
    assert big.changed_by[0] == "half_speed" and "velocity_limit" in big.changed_by
    assert abs(big.action[0]) <= 1.0 * PERIOD + 1e-12


def test_import_path_link_after_the_clamp_holds() -> None:
    path = f"{THIS}:NoJ2Positive"
    chain = build_chain(config(links=(*DEFAULT_LINKS, path)))
    r_ok, r_bad = run(chain, [np.array([0.0, -0.002]), np.array([0.0, 0.002])])
    assert not r_ok.held
    assert r_bad.held and r_bad.changed_by == ("no_j2_positive",) and "j2 target" in r_bad.reasons[0]
    np.testing.assert_array_equal(r_bad.action, r_ok.action)  # the hold is the last committed target
    assert chain.counters["no_j2_positive"] == 1 and chain.counters["held"] == 1


@pytest.mark.parametrize(
    ("links", "match"),
    [
        (("observation_watchdog", "estop", *DEFAULT_LINKS[2:]), "must start with the e-stop"),
        ((*DEFAULT_LINKS, "estop"), "at most once"),
        ((*THROUGH_INPUTS, "workspace"), r"missing \['joint_limits'\]"),
        ((*DEFAULT_LINKS[:3], "joint_limits", "shape", "non_finite", "workspace"), "must come after"),
        ((*THROUGH_INPUTS, "workspace", "joint_limits"), "'workspace' must come after 'joint_limits'"),
        ((), "non-empty sequence"),
        ((*DEFAULT_LINKS, "held"), "other than 'held'"),
    ],
)
def test_order_rules_are_checked_at_config_time(links: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        config(links=links)


def test_box_needs_the_workspace_link() -> None:
    box = {"workspace_lower_m": (-2.0, -2.0, -1.0), "workspace_upper_m": (2.0, 2.0, 1.0)}
    with pytest.raises(ValueError, match="workspace box"):
        config(links=DEFAULT_LINKS[:-1], **box)


def test_kind_rules_for_custom_links(registered: None) -> None:
    # A filter after the final clamp could undo it.
    with pytest.raises(ValueError, match="only check links may follow the final clamp"):
        build_chain(config(links=(*DEFAULT_LINKS, "half_speed")))
    # A link that reads the command before the input checks.
    with pytest.raises(ValueError, match="before the input checks"):
        build_chain(config(links=(*GATES, "half_speed", *DEFAULT_LINKS[len(GATES) :])))
    with pytest.raises(ValueError, match="unknown safety link 'nope'"):
        build_chain(config(links=(*DEFAULT_LINKS, "nope")))
    with pytest.raises(ValueError, match="cannot import module"):
        build_chain(config(links=(*DEFAULT_LINKS, "no_such_module_xyz:Link")))
    with pytest.raises(ValueError, match="has no attribute 'Missing'"):
        build_chain(config(links=(*DEFAULT_LINKS, f"{THIS}:Missing")))
    with pytest.raises(ValueError, match="not a Link"):
        make_link(f"{THIS}:not_a_link", config())
    with pytest.raises(ValueError, match="built-in"):
        register_link("joint_limits", HalfSpeed)
    with pytest.raises(ValueError, match="already registered"):
        register_link("half_speed", NoJ2Positive)


def not_a_link(cfg: SafetyConfig, kinematics: object = None) -> object:
    return object()


# The cbf link needs a URDF chain (control-point Jacobians) with the config's joints.
TWO_JOINT_ARM = UrdfChain.from_urdf(
    "<robot name='arm'><link name='a'/><link name='b'/><link name='c'/>"
    "<joint name='j1' type='revolute'><parent link='a'/><child link='b'/><axis xyz='0 0 1'/></joint>"
    "<joint name='j2' type='revolute'><parent link='b'/><child link='c'/><origin xyz='0.5 0 0'/>"
    "<axis xyz='0 0 1'/></joint></robot>",
    "c",
    ["j1", "j2"],
)


def test_builtin_links_never_raise_and_keep_their_contract() -> None:
    cfg = config()
    for name in BUILTIN_LINKS:
        kinematics = {"workspace": lambda q: np.zeros(3), "cbf": TWO_JOINT_ARM}.get(name)
        link = make_link(name, cfg, kinematics)
        assert link.name == name and link.keys and set(link.counters) == set(link.keys)
