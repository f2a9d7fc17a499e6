"""Safety limits of one deployment: a frozen, validated config read from ROS 2 parameter YAML or a dict."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_rl.core.robot import RobotInterface

COMMAND_INTERFACES = ("position", "velocity", "effort")
"""Command interfaces the chain knows: rad targets, rad/s, N·m (or N for prismatic joints)."""

GATE_LINKS = ("estop", "observation_watchdog", "command_watchdog")
"""Built-in gates: the chain starts with the e-stop, then both watchdogs (in either order)."""
INPUT_LINKS = ("shape", "non_finite")
"""Built-in input checks: after the gates, before any link that reads the command's values."""
CLAMP_LINK = "joint_limits"
"""The final joint-limit clamp: only checks (links that pass or hold, like `workspace`) may follow it."""
PLAUSIBILITY_LINK = "plausibility"
"""The sensor-fault gate (robot_rl/safety/links/plausibility.py): after the built-in gates, before the checks."""
DEFAULT_LINKS = (*GATE_LINKS, PLAUSIBILITY_LINK, *INPUT_LINKS, CLAMP_LINK, "workspace")
"""Today's chain, link by link; a config without `links` gets exactly this."""

_PLAUSIBILITY_DEFAULTS: dict[str, float | int] = {
    "plausibility_position_margin_rad": 0.2,
    "plausibility_velocity_factor": 2.0,
    "plausibility_jump_slack_rad": 0.05,
    "plausibility_stamp_jump_s": 1.0,
    "plausibility_recovery_readings": 3,
}
"""Defaults of the plausibility fields; `to_json` leaves a field out while it has its default, so the hash of
every config written before the plausibility link existed is unchanged."""

_PER_JOINT_FIELDS = (
    "position_lower_rad",
    "position_upper_rad",
    "velocity_limit_rad_s",
    "acceleration_limit_rad_s2",
    "effort_limit",
)


@dataclass(frozen=True)
class SafetyConfig:
    """Per-joint limits, timeouts and the optional workspace box the safety chain enforces (all SI units)."""

    joint_names: tuple[str, ...]
    """Joints in command order; every per-joint tuple below follows this order."""
    command_interface: str
    """"position" (rad targets), "velocity" (rad/s) or "effort" (N·m, or N for prismatic joints)."""
    control_period_s: float
    """Nominal control period; rate limits never allow more than one period's worth of motion per step."""
    position_lower_rad: tuple[float, ...]
    """Lower joint position limits, rad."""
    position_upper_rad: tuple[float, ...]
    """Upper joint position limits, rad (each strictly above its lower limit, margin included)."""
    velocity_limit_rad_s: tuple[float, ...]
    """Maximum |joint velocity|, rad/s (> 0)."""
    acceleration_limit_rad_s2: tuple[float, ...]
    """Maximum |joint acceleration|, rad/s² (> 0); also sets the braking distance before position limits."""
    effort_limit: tuple[float, ...] = ()
    """Maximum |effort|, N·m or N (> 0); required for the effort interface, () otherwise allowed."""
    position_margin_rad: float = 0.0
    """Position limits are shrunk by this much on both sides (>= 0)."""
    workspace_lower_m: tuple[float, float, float] | None = None
    """Lower corner of the allowed end-effector box (x, y, z), m; needs forward kinematics in the chain."""
    workspace_upper_m: tuple[float, float, float] | None = None
    """Upper corner of the allowed end-effector box (x, y, z), m."""
    stale_observation_periods: float = 3.0
    """An observation older than this many control periods makes the chain hold."""
    command_timeout_s: float = 0.5
    """A command older than this makes the chain hold (no command lives forever)."""
    plausibility_position_margin_rad: float = 0.2
    """A joint reading outside the (unmargined) position limits by more than this is a sensor fault, rad (>= 0)."""
    plausibility_velocity_factor: float = 2.0
    """A measured |velocity| above this × the velocity limit, or a jump between consecutive readings that this ×
    the velocity limit cannot explain over the elapsed time (+ one control period), is a sensor fault (>= 1)."""
    plausibility_jump_slack_rad: float = 0.05
    """Absolute slack added to the explainable jump between consecutive readings (noise, quantization), rad (>= 0)."""
    plausibility_stamp_jump_s: float = 1.0
    """A reading's stamp may run ahead of the chain clock's advance since the previous reading by at most this, s
    (> 0); a stamp going backwards is always a fault."""
    plausibility_recovery_readings: int = 3
    """After a sensor fault the chain holds until this many consecutive new readings were plausible (>= 1)."""
    links: tuple[str, ...] = DEFAULT_LINKS
    """The chain's links in order: built-in names, registered names, entry points (group
    `robot_rl.safety_links`) or import paths "package.module:Class". Rules: "estop" first, then both watchdogs;
    "shape" and "non_finite" before any other link; "joint_limits" after every link that changes the action
    (only checks such as "workspace" may follow it); each link at most once."""
    link_params: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    """Parameters of links that take their own, by link name (e.g. `{"cbf": {"alpha": 0.3}}`); each link parses
    and validates its section when the chain is built. A ROS 2 parameter file gives them nested
    (`safety: {cbf: {alpha: 0.3}}`) or flat (`safety.cbf.alpha`). Only links named in `links` may have
    parameters; values are numbers, strings, booleans or lists of them (what ROS 2 parameters can hold)."""

    def __post_init__(self) -> None:
        # Normalize first (lists → tuples, ints → floats) so equal configs hash equally, then validate everything
        # and report all problems at once: a deployment engineer fixes the YAML in one pass.
        problems: list[str] = []
        object.__setattr__(self, "joint_names", _names(self.joint_names, problems))
        object.__setattr__(self, "links", _link_names(self.links, problems))
        for name in _PER_JOINT_FIELDS:
            object.__setattr__(self, name, _floats(name, getattr(self, name), problems))
        for name in ("control_period_s", "position_margin_rad", "stale_observation_periods", "command_timeout_s"):
            object.__setattr__(self, name, _float(name, getattr(self, name), problems))
        for name in _PLAUSIBILITY_DEFAULTS:
            if name != "plausibility_recovery_readings":
                object.__setattr__(self, name, _float(name, getattr(self, name), problems))
        readings = self.plausibility_recovery_readings
        if not isinstance(readings, numbers.Integral) or isinstance(readings, bool) or readings < 1:
            problems.append(f"plausibility_recovery_readings must be an integer >= 1, got {readings!r}")
        else:
            object.__setattr__(self, "plausibility_recovery_readings", int(readings))
        for name in ("workspace_lower_m", "workspace_upper_m"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _floats(name, value, problems))
        object.__setattr__(self, "link_params", _link_params(self.link_params, self.links, problems))
        if problems:
            raise ValueError("invalid SafetyConfig: " + "; ".join(problems))
        self._validate(problems)
        if problems:
            raise ValueError("invalid SafetyConfig: " + "; ".join(problems))

    def _validate(self, problems: list[str]) -> None:
        n = len(self.joint_names)
        if n == 0:
            problems.append("joint_names must not be empty")
        if len(set(self.joint_names)) != n:
            dupes = sorted({j for j in self.joint_names if self.joint_names.count(j) > 1})
            problems.append(f"joint_names must be unique, duplicated: {dupes}")
        if self.command_interface not in COMMAND_INTERFACES:
            problems.append(
                f"command_interface must be one of {list(COMMAND_INTERFACES)}, got {self.command_interface!r}"
            )
        for name in ("control_period_s", "stale_observation_periods", "command_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name} must be finite and > 0, got {value}")
        if not (math.isfinite(self.position_margin_rad) and self.position_margin_rad >= 0):
            problems.append(f"position_margin_rad must be finite and >= 0, got {self.position_margin_rad}")
        for name in _PER_JOINT_FIELDS:
            values = getattr(self, name)
            if name == "effort_limit" and not values and self.command_interface != "effort":
                continue
            if len(values) != n:
                problems.append(f"{name} needs {n} values (one per joint), got {len(values)}: {list(values)}")
            bad = [v for v in values if not math.isfinite(v)]
            if bad:
                problems.append(f"{name} must be finite, got {list(values)}")
            elif name in ("velocity_limit_rad_s", "acceleration_limit_rad_s2", "effort_limit"):
                if any(v <= 0 for v in values):
                    problems.append(f"{name} must be > 0, got {list(values)}")
        lo, hi, m = self.position_lower_rad, self.position_upper_rad, self.position_margin_rad
        if len(lo) == len(hi) == n and all(map(math.isfinite, lo + hi)) and math.isfinite(m):
            bad_joints = [
                f"{j}: {a} + {m} >= {b} - {m}"
                for j, a, b in zip(self.joint_names, lo, hi, strict=True)
                if a + m >= b - m
            ]
            if bad_joints:
                problems.append(f"position_lower_rad + margin must be < position_upper_rad - margin ({bad_joints})")
        self._validate_plausibility(problems)
        self._validate_workspace(problems)
        self._validate_links(problems)

    def _validate_plausibility(self, problems: list[str]) -> None:
        bounds = (
            ("plausibility_position_margin_rad", 0.0, ">= 0"),
            ("plausibility_velocity_factor", 1.0, ">= 1"),
            ("plausibility_jump_slack_rad", 0.0, ">= 0"),
        )
        for name, low, text in bounds:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= low):
                problems.append(f"{name} must be finite and {text}, got {value}")
        if not (math.isfinite(self.plausibility_stamp_jump_s) and self.plausibility_stamp_jump_s > 0):
            problems.append(f"plausibility_stamp_jump_s must be finite and > 0, got {self.plausibility_stamp_jump_s}")

    def _validate_links(self, problems: list[str]) -> None:
        links = self.links
        if not links:
            return  # _link_names reported it
        dupes = sorted({k for k in links if links.count(k) > 1})
        if dupes:
            problems.append(f"links must name each link at most once, repeated: {dupes} (links: {list(links)})")
            return
        required = [*GATE_LINKS, *INPUT_LINKS, CLAMP_LINK] + (["workspace"] if self.has_workspace else [])
        missing = [k for k in required if k not in links]
        if missing:
            why = " (the config has a workspace box)" if "workspace" in missing else ""
            problems.append(f"links is missing {missing}{why}: got {list(links)}")
            return
        if links[0] != "estop" or set(links[1:3]) != set(GATE_LINKS[1:]):
            problems.append(
                f"links must start with the e-stop and both watchdogs: {list(GATE_LINKS)} (the watchdogs in "
                f"either order), got {list(links[:3])}"
            )
        inputs_last = max(links.index(k) for k in INPUT_LINKS)
        early = [k for k in (CLAMP_LINK, "workspace") if k in links and links.index(k) < inputs_last]
        if early:
            problems.append(
                f"links: {early} must come after {list(INPUT_LINKS)} (the raw command is checked before any "
                f"link reads it), got {list(links)}"
            )
        clamp = links.index(CLAMP_LINK)
        if "workspace" in links and links.index("workspace") < clamp:
            problems.append(
                f"links: 'workspace' must come after {CLAMP_LINK!r} (it checks the clamped command), got {list(links)}"
            )

    def _validate_workspace(self, problems: list[str]) -> None:
        wlo, whi = self.workspace_lower_m, self.workspace_upper_m
        if (wlo is None) != (whi is None):
            problems.append(f"workspace_lower_m and workspace_upper_m must be given together, got {wlo} and {whi}")
            return
        if wlo is None or whi is None:
            return
        if len(wlo) != 3 or len(whi) != 3:
            problems.append(f"workspace corners need 3 values (x, y, z), got {list(wlo)} and {list(whi)}")
        elif not all(map(math.isfinite, wlo + whi)):
            problems.append(f"workspace corners must be finite, got {list(wlo)} and {list(whi)}")
        elif any(a >= b for a, b in zip(wlo, whi, strict=True)):
            problems.append(
                f"workspace_lower_m must be < workspace_upper_m on every axis, got {list(wlo)} / {list(whi)}"
            )
        if self.command_interface == "effort":
            # An effort command does not determine where the arm will be next period, so the box cannot be
            # enforced; refusing is better than a limit that silently does nothing.
            problems.append("a workspace box is not supported with command_interface 'effort'")

    def __hash__(self) -> int:
        # Explicit because `link_params` holds dicts (the generated hash would raise); equal configs hash equally.
        return hash(self.sha256())

    def params_of(self, link: str) -> Mapping[str, Any]:
        """The parameters given for `link` ({} when none)."""
        return self.link_params.get(link, {})

    @property
    def n_joints(self) -> int:
        """Number of commanded joints."""
        return len(self.joint_names)

    @property
    def has_workspace(self) -> bool:
        """True when a Cartesian end-effector box is configured."""
        return self.workspace_lower_m is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SafetyConfig:
        """Build from plain data (JSON, YAML); unknown keys are an error, lists become tuples.

        A link's parameters may also come as `<link>: {param: value}` or flat `<link>.<param>: value` keys (how
        rclpy flattens nested parameters) for any link named in `links`; they are gathered into `link_params`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"safety config must be a mapping, got {type(data).__name__}: {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        data = _gather_link_params(data, names)
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise ValueError(
                f"unknown safety config keys {unknown}; known keys: {sorted(names)}, or `<link>.<param>` for a "
                f"link named in `links`"
            )
        missing = sorted(f.name for f in dataclasses.fields(cls) if _required(f) and f.name not in data)
        if missing:
            raise ValueError(f"missing safety config keys {missing}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_yaml(
        cls, path: str | Path, node_name: str = "policy_node", defaults: Mapping[str, Any] | None = None
    ) -> SafetyConfig:
        """Read the `safety` mapping from a ROS 2 parameter file, the way the policy node reads it.

        Looks under the first of `/**/<node_name>`, `/<node_name>`, `<node_name>`, `/**` that exists, then
        `ros__parameters`, then `safety` (a nested mapping, or flat `safety.<field>` keys). What the file leaves to
        the bundle — a key it leaves out, an empty value (`""`, `[]`), or no `safety` mapping at all (the shipped
        launch/params/*.yaml do all three) — comes from `defaults`; the node takes those from the bundle's
        manifest, and so can a caller: `defaults=manifest_safety_params(spec.robot, spec.control_hz)`.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file has no such node section, or the limits (file over `defaults`) are incomplete or
                invalid (the message names the file).
        """
        section = safety_section_from_yaml(path, node_name, missing_ok=True)
        # As the node does (ros_nodes/core/deployment.py): an empty value means "the bundle's value".
        given = {k: v for k, v in section.items() if v not in ("", None, [], ())}
        try:
            return cls.from_dict({**(defaults or {}), **given})
        except ValueError as exc:
            hint = ""
            if "missing safety config keys" in str(exc):
                hint = (
                    "; the policy node takes what its file leaves out from the bundle's manifest: pass "
                    "defaults=manifest_safety_params(spec.robot, spec.control_hz) (robot_rl.safety.config)"
                )
            if not section:
                hint = (
                    f"; the file has no 'safety' mapping for {node_name!r}, so `defaults` must give every limit{hint}"
                )
            raise ValueError(f"{path}: {exc}{hint}") from exc

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data (tuples → lists); `from_dict(to_json())` round-trips.

        The default `links` and plausibility fields at their defaults are left out, so the JSON (and `sha256`)
        of every config written before they existed is unchanged.
        """
        return {
            f.name: _to_plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if (f.name != "links" or self.links != DEFAULT_LINKS)
            and (f.name != "link_params" or self.link_params)
            and getattr(self, f.name) != _PLAUSIBILITY_DEFAULTS.get(f.name, _NO_DEFAULT)
        }

    def sha256(self) -> str:
        """Hash of the canonical JSON (sorted keys, no spaces): identifies the limits in episode metadata."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def for_joints(
        cls,
        joint_names: Sequence[str],
        command_interface: str,
        control_period_s: float,
        lower: Sequence[float],
        upper: Sequence[float],
        velocity: Sequence[float],
        acceleration: Sequence[float] | None = None,
        effort: Sequence[float] | None = None,
        **kw: Any,
    ) -> SafetyConfig:
        """Convenience constructor; acceleration defaults to 10 × velocity per second (v_max reached in 0.1 s)."""
        accel = tuple(acceleration) if acceleration is not None else tuple(10.0 * float(v) for v in velocity)
        return cls(
            joint_names=tuple(joint_names),
            command_interface=command_interface,
            control_period_s=control_period_s,
            position_lower_rad=tuple(lower),
            position_upper_rad=tuple(upper),
            velocity_limit_rad_s=tuple(velocity),
            acceleration_limit_rad_s2=accel,
            effort_limit=tuple(effort) if effort is not None else (),
            **kw,
        )


_NO_DEFAULT = object()


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def manifest_safety_params(robot: RobotInterface | None, control_hz: float) -> dict[str, Any]:
    """The `SafetyConfig` fields a bundle's typed robot interface implies (`PolicySpec.robot`).

    Commanded joints, command interface and period always; position, velocity and effort limits when the
    interface carries the robot description's limits, with acceleration limits from the description or, when it
    gives none, 10 × v_max per second (v_max reached in 0.1 s: a conservative default; real arms publish theirs,
    give them in the YAML).

    Raises:
        ValueError: the bundle has no robot interface (it was not trained on a robot env).
    """
    if robot is None:
        raise ValueError(
            "the bundle has no robot interface (policy_spec.robot): it was not trained on a robot_rl/* robot env, "
            "so nothing says which joints and command interface the safety chain guards"
        )
    cmd = robot.command
    out: dict[str, Any] = {
        "joint_names": cmd.joints,
        "command_interface": cmd.ros2_control,
        "control_period_s": 1.0 / control_hz,
    }
    lim = robot.limits
    if lim is not None:
        out.update(
            position_lower_rad=lim.position_lower,
            position_upper_rad=lim.position_upper,
            velocity_limit_rad_s=lim.velocity,
            acceleration_limit_rad_s2=lim.acceleration_or_default(),
            effort_limit=lim.effort,
        )
    return out


def safety_section_from_yaml(
    path: str | Path, node_name: str = "policy_node", missing_ok: bool = False
) -> dict[str, Any]:
    """The raw `safety` mapping of a node in a ROS 2 parameter file (see `SafetyConfig.from_yaml`).

    With `missing_ok`, a node section without a `safety` mapping gives {} (every limit from the bundle).
    """
    import yaml  # deploy extra; imported here so the chain itself needs numpy only

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safety parameter file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: expected a mapping of node names at the top level, got {type(doc).__name__}")
    candidates = (f"/**/{node_name}", f"/{node_name}", node_name, "/**")
    node_key = next((k for k in candidates if k in doc), None)
    if node_key is None:
        raise ValueError(f"{path}: none of the keys {list(candidates)} found; top-level keys: {list(doc)}")
    params = doc[node_key].get("ros__parameters") if isinstance(doc[node_key], Mapping) else None
    if not isinstance(params, Mapping):
        raise ValueError(f"{path}: '{node_key}' has no 'ros__parameters' mapping")
    section = _safety_section(params)
    if section is None and missing_ok:
        return {}
    if section is None:
        raise ValueError(f"{path}: '{node_key}: ros__parameters' has no 'safety' mapping")
    return dict(section)


def _safety_section(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    nested = params.get("safety")
    if isinstance(nested, Mapping):
        return nested
    # rclpy flattens nested parameters to `safety.<field>`; accept a file written that way too.
    flat = {k[len("safety.") :]: v for k, v in params.items() if isinstance(k, str) and k.startswith("safety.")}
    return flat or None


def _names(value: Any, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        problems.append(f"joint_names must be a sequence of strings, got {value!r}")
        return ()
    if not all(isinstance(v, str) and v for v in value):
        problems.append(f"joint_names must be non-empty strings, got {list(value)}")
        return ()
    return tuple(value)


def _link_names(value: Any, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        problems.append(f"links must be a non-empty sequence of link names, got {value!r}")
        return ()
    if not all(isinstance(v, str) and v and v != "held" for v in value):
        problems.append(f"links must be non-empty strings other than 'held', got {list(value)}")
        return ()
    return tuple(value)


def _is_real(v: Any) -> bool:
    # bool is an int subclass: `True` as a limit is a YAML typo, not 1.0. numbers.Real admits numpy scalars.
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _float(name: str, value: Any, problems: list[str]) -> float:
    if not _is_real(value):
        problems.append(f"{name} must be a number, got {value!r}")
        return math.nan
    return float(value)


def _floats(name: str, value: Any, problems: list[str]) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        problems.append(f"{name} must be a sequence of numbers, got {value!r}")
        return ()
    if not all(_is_real(v) for v in value):
        problems.append(f"{name} must contain only numbers, got {list(value)}")
        return ()
    return tuple(float(v) for v in value)


def _gather_link_params(data: Mapping[str, Any], fields: set[str]) -> dict[str, Any]:
    """`data` with `<link>.<param>` keys and `<link>: {..}` mappings (links named in `links`) moved into
    `link_params`; anything else is left for the unknown-key check."""
    links = data.get("links", DEFAULT_LINKS)
    links = set(links) if isinstance(links, Sequence) and not isinstance(links, str) else set()
    out = dict(data)
    given = out.get("link_params", {})
    gathered: dict[str, dict[str, Any]] = (
        {k: dict(v) if isinstance(v, Mapping) else v for k, v in given.items()} if isinstance(given, Mapping) else given
    )
    if not isinstance(gathered, dict):
        return out  # __post_init__ reports the bad type
    for key in list(out):
        if not isinstance(key, str) or key in fields:
            continue
        link, dot, param = key.partition(".")
        if dot and link in links and param:
            section = gathered.setdefault(link, {})
            if isinstance(section, dict):
                section[param] = out.pop(key)
        elif not dot and key in links and isinstance(out[key], Mapping):
            section = gathered.setdefault(key, {})
            if isinstance(section, dict):
                section.update(out.pop(key))
    if gathered:
        out["link_params"] = gathered
    return out


def _param_value(value: Any) -> Any:
    """A link parameter as stored: scalars as given, sequences as tuples; None if not a ROS 2 parameter value."""
    if isinstance(value, bool | str) or _is_real(value):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, bool | str) or _is_real(v) for v in value):
        return tuple(value)
    return None


def _link_params(value: Any, links: tuple[str, ...], problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        problems.append(f"link_params must be a mapping of link name -> parameters, got {value!r}")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for link, params in value.items():
        if link not in links:
            problems.append(f"link_params names {link!r}, which is not in links {list(links)}")
            continue
        if not isinstance(params, Mapping) or not all(isinstance(k, str) and k for k in params):
            problems.append(f"link_params[{link!r}] must be a mapping of parameter name -> value, got {params!r}")
            continue
        section: dict[str, Any] = {}
        for name, raw in params.items():
            v = _param_value(raw)
            if v is None:
                problems.append(
                    f"{link}.{name} must be a number, string, boolean or a list of them (a ROS 2 parameter), "
                    f"got {raw!r}"
                )
            else:
                section[name] = v
        out[link] = dict(sorted(section.items()))
    return out


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    return [_to_plain(v) for v in value] if isinstance(value, tuple) else value
