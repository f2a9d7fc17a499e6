"""The portable subset of ROS 2 XML launch files: parse and validate them without ROS (stdlib XML + PyYAML).

robot_rl's launch files stay inside a small subset of the ROS 2 XML launch format, so the same file runs under
`ros2 launch robot_rl <file>` on a ROS install and under `robot-rl deploy <file>` where only pip wheels exist
(there is no `launch`/`launch_ros` package on PyPI). launch/README.md documents the subset; in short:

    <launch>
      <arg name="x" default="..." description="..."/>        (no default = required)
      <let name="y" value="..."/>
      <node pkg="robot_rl" exec="policy_node" name="..." namespace="..." output="screen|log|both"
            if="$(var flag)" unless="$(var flag)">
        <param name="k" value="..."/>   or   <param from="file.yaml"/>
        <remap from="/a" to="/b"/>
      </node>
    </launch>

    substitutions: $(var NAME)  $(find-pkg-share robot_rl)  $(env NAME)  $(env NAME DEFAULT)   (not nested)

Parameter values are typed the way launch_ros types them (YAML: `0` is an int, `0.0` a double, `[1.0, 2.0]` a
double array, `true` a bool); a value that must stay a string is quoted: `value="'$(var record_dir)'"`. That quoting
is also what makes an empty string legal: launch_ros rejects a param value that evaluates to nothing.
"""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "robot_rl"
"""The only package whose nodes (and share directory) the subset knows."""


@dataclass(frozen=True)
class Executable:
    """One node executable of the robot_rl package."""

    console_script: str
    """pip's entry point in `<prefix>/bin`."""
    module: str
    """`python -m <module>` runs the same node."""
    node_name: str
    """The name the node gives itself when launch does not rename it."""
    lifecycle: bool = False
    """A managed (lifecycle) node: something must configure + activate it."""
    robot: bool = False
    """The robot itself (or its driver): `robot-rl deploy` stops it first, so it holds still before anything
    that commands it is torn down."""


EXECUTABLES: dict[str, Executable] = {
    "policy_node": Executable("robot-rl-policy-node", "ros_nodes.policy_node", "policy_node", lifecycle=True),
    "sim_robot": Executable("robot-rl-sim-robot", "ros_nodes.sim_robot_node", "sim_robot", robot=True),
    "teleop": Executable("robot-rl-teleop", "ros_nodes.teleop_node", "teleop"),
    "scripted_operator": Executable("robot-rl-scripted-operator", "ros_nodes.scripted_operator", "scripted_operator"),
    "hil_operator": Executable("robot-rl-hil-operator", "ros_nodes.hil_operator", "hil_operator"),
    "learner": Executable("robot-rl-learner", "ros_nodes.learner_node", "learner"),
}
"""`<node exec=...>` names → what runs. ros2 launch finds them as `<prefix>/lib/robot_rl/<exec>` (launch/bin/)."""

ELEMENTS: dict[str, frozenset[str]] = {
    "launch": frozenset(),
    "arg": frozenset({"name", "default", "description"}),
    "let": frozenset({"name", "value"}),
    "node": frozenset({"pkg", "exec", "name", "namespace", "output", "if", "unless"}),
    "param": frozenset({"name", "value", "from"}),
    "remap": frozenset({"from", "to"}),
}
"""Elements of the subset and the attributes each may carry."""
_CHILDREN = {
    "launch": {"arg", "let", "node"},
    "node": {"param", "remap"},
    "arg": set(),
    "let": set(),
    "param": set(),
    "remap": set(),
}
SUBSTITUTIONS = ("var", "find-pkg-share", "env")
OUTPUTS = ("screen", "log", "both")

_PLACEHOLDER = "\x00unset:"  # value of a required arg while validating without it


class LaunchSubsetError(ValueError):
    """A launch file is outside the portable subset, or cannot be resolved (message says where and why)."""


@dataclass(frozen=True)
class ArgSpec:
    """A declared launch argument."""

    name: str
    default: str | None
    """Unresolved default text; None = required."""
    description: str = ""


@dataclass(frozen=True)
class ParamFile:
    """`<param from="..."/>`: a ROS 2 parameter YAML file."""

    path: Path


@dataclass(frozen=True)
class NodeSpec:
    """One `<node>` after substitution: what to run, how it is named, its parameters and remappings."""

    pkg: str
    exec: str
    name: str
    """Node name (the executable's own name when the launch file gives none)."""
    namespace: str = ""
    output: str = "screen"
    params: tuple[ParamFile | dict[str, Any], ...] = ()
    """Parameter sources in file order (a later source wins): files and runs of inline `<param name value>`."""
    remaps: tuple[tuple[str, str], ...] = ()
    condition: str = ""
    """The condition as written after substitution, e.g. `if=true` ("" = unconditional)."""
    enabled: bool = True
    """The condition holds: the node is started."""

    @property
    def param_files(self) -> tuple[Path, ...]:
        """Parameter files in order."""
        return tuple(p.path for p in self.params if isinstance(p, ParamFile))

    @property
    def inline_params(self) -> dict[str, Any]:
        """Inline parameters merged in order (the last `<param name=k>` wins)."""
        out: dict[str, Any] = {}
        for p in self.params:
            if isinstance(p, dict):
                out.update(p)
        return out

    @property
    def executable(self) -> Executable:
        """What runs this node (KeyError for an exec outside the package: the parser never yields one)."""
        return EXECUTABLES[self.exec]

    @property
    def fqn(self) -> str:
        """Fully qualified node name, e.g. `/policy_node` or `/arm/policy_node`."""
        ns = "/" + self.namespace.strip("/") if self.namespace.strip("/") else ""
        return f"{ns}/{self.name}"


@dataclass(frozen=True)
class LaunchDescription:
    """A parsed launch file: resolved argument values and the nodes (with their conditions evaluated)."""

    path: Path
    args: dict[str, str]
    """Every declared argument's resolved value."""
    declared: tuple[ArgSpec, ...]
    nodes: tuple[NodeSpec, ...]
    """All nodes in file order, enabled or not."""

    @property
    def enabled_nodes(self) -> tuple[NodeSpec, ...]:
        """The nodes whose `if`/`unless` holds."""
        return tuple(n for n in self.nodes if n.enabled)


# ---------------------------------------------------------------------------------------------- resolution
def package_share_dir(launch_file: Path | None = None) -> Path:
    """Where `$(find-pkg-share robot_rl)` points.

    A launch file inside `<dir>/launch/` whose `<dir>/package.xml` names robot_rl resolves to `<dir>`: the source
    checkout (repo root) and an installed `share/robot_rl` look the same, so edits in a checkout are used as-is.
    Otherwise the ament index: each prefix of AMENT_PREFIX_PATH, then this interpreter's prefix.

    Raises:
        LaunchSubsetError: no robot_rl share directory can be found.
    """
    if launch_file is not None:
        candidate = Path(launch_file).resolve().parent.parent
        if _is_robot_rl_share(candidate):
            return candidate
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        marker = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
        if marker.is_file():
            return Path(prefix) / "share" / PACKAGE
    raise LaunchSubsetError(
        f"$(find-pkg-share {PACKAGE}): package not found (not in a checkout, not in AMENT_PREFIX_PATH "
        f"{os.environ.get('AMENT_PREFIX_PATH', '')!r}, not installed in {sys.prefix})"
    )


def _is_robot_rl_share(directory: Path) -> bool:
    pkg = directory / "package.xml"
    if not pkg.is_file():
        return False
    try:
        name = ET.parse(pkg).getroot().findtext("name")
    except ET.ParseError:
        return False
    return (name or "").strip() == PACKAGE


def evaluate_bool(text: str, where: str) -> bool:
    """launch's condition rule: true/1 or false/0 (any case); anything else is an error."""
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise LaunchSubsetError(f"{where}: condition {text!r} is not a boolean (true, false, 1 or 0)")


def yaml_param_value(text: str, where: str) -> Any:
    """Type a `<param value>` the way launch_ros does: YAML scalar, or a non-empty list of one scalar type."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LaunchSubsetError(f"{where}: value {text!r} is not valid YAML: {exc}") from exc
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if value and len(kinds) == 1 and kinds <= {bool, int, float, str}:
            return value
        raise LaunchSubsetError(
            f"{where}: list value {text!r} must be non-empty with items of one type (bool, int, float or str)"
        )
    if value is None:
        raise LaunchSubsetError(
            f"{where}: value {text!r} evaluates to nothing (launch_ros rejects it); "
            "quote it to pass a string, e.g. value=\"'$(var x)'\""
        )
    raise LaunchSubsetError(
        f"{where}: value {text!r} is a {type(value).__name__}; only scalars and lists are parameter values"
    )


@dataclass
class _Scope:
    launch_file: Path
    values: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    problems: list[str] | None = None
    """Lenient mode (validate): problems are collected here instead of raised."""
    share_dir: Path | None = None

    def fail(self, msg: str) -> None:
        if self.problems is None:
            raise LaunchSubsetError(f"{self.launch_file}: {msg}")
        self.problems.append(msg)

    def substitute(self, text: str, where: str) -> str:
        """Resolve every `$(...)` in `text` (no nesting)."""
        out: list[str] = []
        i = 0
        while True:
            start = text.find("$(", i)
            if start < 0:
                out.append(text[i:])
                return "".join(out)
            out.append(text[i:start])
            end = text.find(")", start)
            nested = text.find("$(", start + 2)
            if end < 0:
                self.fail(f"{where}: unterminated substitution in {text!r}")
                return "".join(out)
            if 0 <= nested < end:
                self.fail(f"{where}: nested substitutions are outside the portable subset: {text!r}")
                return "".join(out)
            out.append(self._one(text[start + 2 : end].split(), where))
            i = end + 1

    def _one(self, parts: list[str], where: str) -> str:
        kind, rest = (parts[0], parts[1:]) if parts else ("", [])
        if kind == "var" and len(rest) == 1:
            name = rest[0]
            self.used.add(name)
            if name not in self.values:
                self.fail(f"{where}: $(var {name}) is not a declared <arg> or an earlier <let>")
                return ""
            return self.values[name]
        if kind == "find-pkg-share" and len(rest) == 1:
            if rest[0] != PACKAGE:
                self.fail(f"{where}: $(find-pkg-share {rest[0]}): only {PACKAGE} is in the portable subset")
                return ""
            if self.share_dir is None:
                try:
                    self.share_dir = package_share_dir(self.launch_file)
                except LaunchSubsetError as exc:
                    self.fail(f"{where}: {exc}")
                    return ""
            return str(self.share_dir)
        if kind == "env" and len(rest) in (1, 2):
            value = os.environ.get(rest[0], rest[1] if len(rest) == 2 else None)
            if value is None:
                self.fail(f"{where}: $(env {rest[0]}): the variable is not set and no default is given")
                return ""
            return value
        if kind in SUBSTITUTIONS:
            self.fail(f"{where}: $({' '.join(parts)}): wrong number of arguments")
        else:
            self.fail(
                f"{where}: unknown substitution $({' '.join(parts)}); the portable subset has "
                f"{', '.join(f'$({s} ...)' for s in SUBSTITUTIONS)}"
            )
        return ""


def _check_element(el: ET.Element, parent: str, scope: _Scope) -> bool:
    """Element and attributes inside the subset; False when the element must be skipped."""
    if el.tag not in ELEMENTS or el.tag not in _CHILDREN.get(parent, set()):
        scope.fail(
            f"<{el.tag}> inside <{parent}> is outside the portable subset (allowed there: "
            f"{', '.join(sorted(_CHILDREN.get(parent, set()))) or 'nothing'})"
        )
        return False
    extra = sorted(set(el.attrib) - ELEMENTS[el.tag])
    if extra:
        scope.fail(
            f"<{el.tag} {_label(el)}>: attribute(s) {extra} outside the portable subset (allowed: "
            f"{sorted(ELEMENTS[el.tag])})"
        )
    return True


def _label(el: ET.Element) -> str:
    for key in ("name", "exec", "from"):
        if key in el.attrib:
            return f'{key}="{el.attrib[key]}"'
    return ""


def _is_placeholder(value: str) -> bool:
    return _PLACEHOLDER in value


def _parse(path: Path, overrides: Mapping[str, str], problems: list[str] | None) -> LaunchDescription:
    path = Path(path)
    scope = _Scope(path, problems=problems)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise LaunchSubsetError(f"{path}: cannot read the launch file: {exc}") from exc
    if root.tag != "launch":
        raise LaunchSubsetError(f"{path}: the root element is <{root.tag}>, expected <launch>")
    extra = sorted(set(root.attrib) - ELEMENTS["launch"])
    if extra:
        scope.fail(f"<launch>: attribute(s) {extra} outside the portable subset")
    declared: list[ArgSpec] = []
    nodes: list[NodeSpec] = []
    lets: set[str] = set()
    for el in root:
        if not isinstance(el.tag, str) or not _check_element(el, "launch", scope):
            continue  # comments are not str-tagged
        if el.tag == "arg":
            spec = _declare_arg(el, overrides, scope, declared, lets)
            if spec is not None:
                declared.append(spec)
        elif el.tag == "let":
            name, raw = el.get("name"), el.get("value")
            if not name or raw is None:
                scope.fail("<let> needs name and value")
                continue
            scope.values[name] = scope.substitute(raw, f"<let name={name!r}>")
            lets.add(name)
        elif el.tag == "node":
            node = _node(el, scope)
            if node is not None:
                nodes.append(node)
    names = {a.name for a in declared}
    unknown = sorted(set(overrides) - names)
    if unknown:
        scope.fail(f"unknown launch argument(s) {unknown}; declared: {sorted(names)}")
    seen: dict[str, int] = {}
    for n in nodes:
        if n.enabled:
            seen[n.fqn] = seen.get(n.fqn, 0) + 1
    for fqn, count in seen.items():
        if count > 1:
            scope.fail(f"{count} enabled nodes share the name {fqn}")
    args = {a.name: scope.values.get(a.name, "") for a in declared}
    if problems is not None:
        for a in declared:
            if a.name not in scope.used:
                problems.append(f"warning: <arg name={a.name!r}> is declared but never used")
    return LaunchDescription(path, args, tuple(declared), tuple(nodes))


def _declare_arg(
    el: ET.Element, overrides: Mapping[str, str], scope: _Scope, declared: list[ArgSpec], lets: set[str]
) -> ArgSpec | None:
    name = el.get("name")
    if not name:
        scope.fail("<arg> without a name")
        return None
    if any(a.name == name for a in declared) or name in lets:
        scope.fail(f"<arg name={name!r}> is declared twice")
        return None
    spec = ArgSpec(name, el.get("default"), el.get("description", ""))
    if name in overrides:
        scope.values[name] = str(overrides[name])
        if spec.default is not None:  # still check the default's substitutions
            scope.substitute(spec.default, f"<arg name={name!r}> default")
    elif spec.default is not None:
        scope.values[name] = scope.substitute(spec.default, f"<arg name={name!r}> default")
    elif scope.problems is not None:
        scope.values[name] = _PLACEHOLDER + name
    else:
        raise LaunchSubsetError(
            f"{scope.launch_file}: launch argument {name!r} is required (no default); pass "
            f"{name}:=<value>" + (f"  ({spec.description})" if spec.description else "")
        )
    return spec


def _node(el: ET.Element, scope: _Scope) -> NodeSpec | None:
    attr = {k: scope.substitute(v, f"<node {_label(el)}> {k}") for k, v in el.attrib.items()}
    where = f"<node {_label(el)}>"
    pkg, exe = attr.get("pkg", ""), attr.get("exec", "")
    ok = True
    if pkg != PACKAGE:
        scope.fail(f"{where}: pkg={pkg!r}; the portable subset only runs {PACKAGE} nodes")
        ok = False
    if exe not in EXECUTABLES:
        scope.fail(f"{where}: exec={exe!r} is not a {PACKAGE} executable (known: {sorted(EXECUTABLES)})")
        ok = False
    output = attr.get("output", "screen")
    if output not in OUTPUTS:
        scope.fail(f"{where}: output={output!r}; use one of {OUTPUTS}")
    if "if" in attr and "unless" in attr:
        scope.fail(f"{where}: has both if and unless")
    enabled, condition = True, ""
    for key, want in (("if", True), ("unless", False)):
        if key in attr:
            condition = f"{key}={attr[key]}"
            if _is_placeholder(attr[key]):
                continue
            try:
                enabled = evaluate_bool(attr[key], where) == want
            except LaunchSubsetError as exc:
                scope.fail(str(exc))
    name = attr.get("name") or (EXECUTABLES[exe].node_name if exe in EXECUTABLES else exe)
    params: list[ParamFile | dict[str, Any]] = []
    remaps: list[tuple[str, str]] = []
    for child in el:
        if not isinstance(child.tag, str) or not _check_element(child, "node", scope):
            continue
        cwhere = f"{where} <{child.tag} {_label(child)}>"
        c = {k: scope.substitute(v, f"{cwhere} {k}") for k, v in child.attrib.items()}
        if child.tag == "remap":
            if not c.get("from") or not c.get("to"):
                scope.fail(f"{cwhere}: <remap> needs from and to")
                continue
            remaps.append((c["from"], c["to"]))
            continue
        if "from" in c:
            if "name" in c or "value" in c:
                scope.fail(f"{cwhere}: <param> has either from=FILE or name+value, not both")
            _check_param_file(c["from"], name, attr.get("namespace", ""), cwhere, scope)
            params.append(ParamFile(Path(c["from"])))
        elif "name" in c and "value" in c:
            if _is_placeholder(c["value"]):
                continue
            try:
                value = yaml_param_value(c["value"], cwhere)
            except LaunchSubsetError as exc:
                scope.fail(str(exc))
                continue
            if params and isinstance(params[-1], dict):
                params[-1][c["name"]] = value
            else:
                params.append({c["name"]: value})
        else:
            scope.fail(f"{cwhere}: <param> needs from=FILE or name and value")
    if not ok:
        return None
    return NodeSpec(pkg, exe, name, attr.get("namespace", ""), output, tuple(params), tuple(remaps), condition, enabled)


def _check_param_file(raw: str, node: str, namespace: str, where: str, scope: _Scope) -> None:
    if _is_placeholder(raw):
        return  # depends on a required argument: checked when the file is launched
    problems = param_file_problems(Path(raw), node, namespace, strict_section=scope.problems is not None)
    for p in problems:
        scope.fail(f"{where}: {p}")


def param_file_problems(
    path: Path, node: str | None = None, namespace: str = "", strict_section: bool = True
) -> list[str]:
    """What is wrong with a ROS 2 parameter YAML file (as a file for `node`, when given).

    A usable file is a mapping of node keys (`/**/policy_node`, `/**`, `policy_node`, ...) to mappings with a
    `ros__parameters` mapping. With `strict_section`, a file that has no section for `node` is a problem too (ROS
    would silently ignore it: usually a typo in the node name).
    """
    if not path.is_file():
        return [f"parameter file {str(path)!r} does not exist"]
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        return [f"parameter file {str(path)!r} is not valid YAML: {exc}"]
    if not isinstance(doc, dict) or not doc:
        return [f"parameter file {str(path)!r}: expected a mapping of node names at the top level"]
    problems: list[str] = []
    for key, section in doc.items():
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            problems.append(f"parameter file {str(path)!r}: {key!r} has no 'ros__parameters' mapping")
    if node is not None and strict_section and not any(_key_matches(str(k), node, namespace) for k in doc):
        problems.append(
            f"parameter file {str(path)!r} has no section for node {node!r} (keys: {list(doc)}); add '/**/{node}:'"
        )
    return problems


def _key_matches(key: str, node: str, namespace: str) -> bool:
    """Does a parameter-file key apply to `<namespace>/<node>`? (`/**`, `/**/name`, `name`, `/ns/name`)."""
    fqn = ("/" + namespace.strip("/") if namespace.strip("/") else "") + "/" + node
    if key in ("/**", "**"):
        return True
    if key.startswith("/**/"):
        return fqn.endswith("/" + key[4:])
    return key.lstrip("/") == fqn.lstrip("/")


# ---------------------------------------------------------------------------------------------- public API
def parse_launch_args(tokens: Sequence[str]) -> dict[str, str]:
    """`name:=value` command-line tokens → {name: value} (ValueError for anything else)."""
    out: dict[str, str] = {}
    for tok in tokens:
        name, sep, value = tok.partition(":=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LaunchSubsetError(f"launch arguments are name:=value, got {tok!r}")
        out[name] = value
    return out


def parse(path: Path | str, args: Mapping[str, str] | None = None) -> LaunchDescription:
    """Parse a launch file with `name:=value` argument overrides; every problem is an error here.

    Raises:
        LaunchSubsetError: outside the subset, a required argument missing, an unknown argument given, a parameter
            file missing or malformed, a condition that is not a boolean (the message names what and where).
    """
    return _parse(Path(path), dict(args or {}), None)


def validate(path: Path | str, args: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of a launch file (empty = inside the subset and resolvable); warnings start with `warning:`.

    Both branches of every condition are checked, and required arguments need not be given (what depends on them
    is checked when the file is launched).
    """
    problems: list[str] = []
    try:
        _parse(Path(path), dict(args or {}), problems)
    except LaunchSubsetError as exc:
        problems.append(str(exc))
    return problems
