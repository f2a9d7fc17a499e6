"""Forward kinematics and the geometric Jacobian of a serial chain read from a URDF: numpy + the standard library.

`UrdfChain.from_urdf(urdf, ee_link, joint_names)` walks the URDF tree from its root link (or `base_link`) to
`ee_link` and keeps the joints on that path (revolute, continuous, prismatic, fixed). The positions it takes are
in `joint_names` order (the command / safety-config order, rad or m); positions are in metres in the frame of the
root (or `base_link`) link — the frame a workspace box is written in.

The static parts of the chain are folded once at load time: every moving joint becomes a rotation about (or a
translation along) its local z axis between two precomputed rigid transforms, so `position(q)` is a short loop
of scalar arithmetic (a few µs for a 7-joint arm) and allocates only its result.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

MOVING_TYPES = ("revolute", "continuous", "prismatic")
"""URDF joint types that move (prismatic in m, the others in rad)."""
SUPPORTED_TYPES = (*MOVING_TYPES, "fixed")
"""URDF joint types a chain may contain (floating and planar joints are refused)."""

PYBULLET_DATA_PREFIX = "pybullet_data:"
"""`pybullet_data:<relative path>` names a URDF shipped with the pybullet_data package."""

_Rigid = tuple[float, float, float, float, float, float, float, float, float, float, float, float]
"""A rigid transform as 12 floats: the rotation row by row (r00 r01 r02 r10 … r22), then the translation."""


@dataclass(frozen=True)
class _UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    origin: F64
    """4x4 homogeneous transform parent → joint frame."""
    axis: F64
    """Unit axis in the joint frame ([1, 0, 0] by default)."""


def _rpy_matrix(roll: float, pitch: float, yaw: float) -> F64:
    """URDF fixed-axis roll-pitch-yaw: R = Rz(yaw) · Ry(pitch) · Rx(roll)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _axis_angle_matrix(axis: F64, angle: float) -> F64:
    """Rotation by `angle` (rad) about the unit `axis` (Rodrigues)."""
    x, y, z = (float(v) for v in axis)
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    out: F64 = np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)
    return out


def _z_to_axis(axis: F64) -> F64:
    """A rotation A with A · ez = axis (so a motion about `axis` is A · (motion about z) · Aᵀ)."""
    z = np.array([0.0, 0.0, 1.0])
    cross = np.cross(z, axis)
    s = float(np.linalg.norm(cross))
    c = float(np.dot(z, axis))
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])  # -z: a half turn about x
    return _axis_angle_matrix(cross / s, math.atan2(s, c))


def _homogeneous(rot: F64, trans: F64) -> F64:
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = trans
    return out


def _rigid(t: F64) -> _Rigid:
    r = t[:3, :3].ravel().tolist()
    p = t[:3, 3].tolist()
    return (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], p[0], p[1], p[2])


def _floats(text: str | None, default: tuple[float, float, float], what: str) -> F64:
    if text is None:
        return np.array(default, dtype=np.float64)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not three numbers") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what}: {text!r} is not three finite numbers")
    return np.array(values, dtype=np.float64)


def _parse_root(urdf: str | os.PathLike[str]) -> ET.Element:
    """The `<robot>` element of a URDF given as XML text or as a file path."""
    text = os.fspath(urdf)
    if text.lstrip().startswith("<"):
        source = "URDF text"
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise ValueError(f"malformed URDF ({source}): {exc}") from None
    else:
        source = text
        if not os.path.isfile(text):
            raise ValueError(f"URDF file not found: {text!r}")
        try:
            root = ET.parse(text).getroot()
        except ET.ParseError as exc:
            raise ValueError(f"malformed URDF {source}: {exc}") from None
    if root.tag != "robot":
        raise ValueError(f"malformed URDF ({source}): the root element is <{root.tag}>, expected <robot>")
    return root


def _parse_joints(root: ET.Element) -> tuple[set[str], dict[str, _UrdfJoint]]:
    """(link names, joints by child link) of a `<robot>` element, checked for what kinematics needs."""
    links = {name for link in root.findall("link") if (name := link.get("name"))}
    by_child: dict[str, _UrdfJoint] = {}
    names: set[str] = set()
    for el in root.findall("joint"):
        name = el.get("name")
        if not name:
            raise ValueError("malformed URDF: a <joint> has no name")
        if name in names:
            raise ValueError(f"malformed URDF: joint {name!r} is defined twice")
        names.add(name)
        jtype = el.get("type", "")
        parent_el, child_el = el.find("parent"), el.find("child")
        parent = parent_el.get("link", "") if parent_el is not None else ""
        child = child_el.get("link", "") if child_el is not None else ""
        if not parent or not child:
            raise ValueError(f"malformed URDF: joint {name!r} needs <parent link=...> and <child link=...>")
        for end in (parent, child):
            if end not in links:
                raise ValueError(f"malformed URDF: joint {name!r} refers to link {end!r}, which is not defined")
        if child in by_child:
            raise ValueError(
                f"malformed URDF: link {child!r} is the child of two joints ({by_child[child].name!r}, {name!r})"
            )
        origin_el = el.find("origin")
        xyz = _floats(
            origin_el.get("xyz") if origin_el is not None else None, (0.0, 0.0, 0.0), f"joint {name!r} origin xyz"
        )
        rpy = _floats(
            origin_el.get("rpy") if origin_el is not None else None, (0.0, 0.0, 0.0), f"joint {name!r} origin rpy"
        )
        axis_el = el.find("axis")
        axis = _floats(axis_el.get("xyz") if axis_el is not None else None, (1.0, 0.0, 0.0), f"joint {name!r} axis")
        by_child[child] = _UrdfJoint(name, jtype, parent, child, _homogeneous(_rpy_matrix(*rpy.tolist()), xyz), axis)
    return links, by_child


class UrdfChain:
    """Forward kinematics of the URDF chain from its root (or `base_link`) to an end-effector link."""

    def __init__(
        self,
        statics: Sequence[F64],
        kinds: Sequence[str],
        read_index: Sequence[int],
        joint_names: Sequence[str],
        *,
        base_link: str,
        ee_link: str,
        joint_links: Sequence[str] = (),
    ) -> None:
        """Use `from_urdf`. Moving joint k (chain order) moves about / along its local z ("revolute" or
        "prismatic" in `kinds[k]`) by `q[read_index[k]]`, between the 4x4 transforms `statics[k]` and
        `statics[k + 1]`; `joint_links[k]` names its child link (default: the joint's name).
        """
        n = len(joint_names)
        if len(statics) != len(kinds) + 1 or len(kinds) != n or sorted(read_index) != list(range(n)):
            raise ValueError("UrdfChain: need n + 1 static transforms, n kinds and a permutation of range(n)")
        self.joint_names: tuple[str, ...] = tuple(joint_names)
        """Joints in the order `position` reads them (rad, or m for prismatic joints)."""
        self.base_link = base_link
        """The frame positions are expressed in."""
        self.ee_link = ee_link
        """The link whose origin `position` returns."""
        links = tuple(joint_links) or tuple(joint_names[i] for i in read_index)
        if len(links) != n:
            raise ValueError(f"UrdfChain: need one child link per moving joint, got {list(links)}")
        self.point_names: tuple[str, ...] = (*links, ee_link)
        """The control points of `point_jacobians`, base to tip: the child link of each moving joint (chain
        order), then the end-effector link."""
        self._n = n
        self._statics = [np.array(s, dtype=np.float64) for s in statics]
        self._prismatic = tuple(k == "prismatic" for k in kinds)
        self._read = tuple(int(i) for i in read_index)
        # position() walks the chain backwards: v <- static_k . motion_k(q) . v, from the tail's origin.
        tail = self._statics[-1]
        self._tail: tuple[float, float, float] = (float(tail[0, 3]), float(tail[1, 3]), float(tail[2, 3]))
        self._backward = tuple(
            (self._read[k], self._prismatic[k], _rigid(self._statics[k])) for k in reversed(range(n))
        )
        # point_jacobians(): the statics as scalars, and which (joint, point) pairs move.
        self._rigids = tuple(_rigid(t) for t in self._statics)
        self._read_cols = np.array(self._read, dtype=np.intp)
        self._prismatic_rows = np.array(self._prismatic, dtype=bool)
        self._any_prismatic = any(self._prismatic)
        self._moves = (np.arange(n + 1)[None, :] >= np.arange(n)[:, None])[..., None].astype(np.float64)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_urdf(
        cls,
        urdf: str | os.PathLike[str],
        ee_link: str,
        joint_names: Sequence[str],
        base_link: str | None = None,
        *,
        fixed_positions: Mapping[str, float] | None = None,
    ) -> UrdfChain:
        """Build the chain `base_link` (default: the URDF's root link) → `ee_link`.

        Args:
            urdf: URDF XML text, or the path of a URDF file.
            ee_link: the end-effector link; `position` returns its origin.
            joint_names: the moving joints of the chain, in the order of the positions `position` is given
                (the command / safety-config order).
            base_link: the link whose frame positions are expressed in (default: the root link).
            fixed_positions: chain joints that are not commanded, held at these positions (rad or m).

        Raises:
            ValueError: malformed URDF, unknown link, a moving chain joint neither in `joint_names` nor in
                `fixed_positions`, a name in `joint_names` that is not a moving joint of the chain (a typo must
                not be silent), an unsupported joint type, or a zero axis.
        """
        root = _parse_root(urdf)
        links, by_child = _parse_joints(root)
        if not links:
            raise ValueError("malformed URDF: no <link> elements")
        roots = sorted(links - set(by_child))
        if ee_link not in links:
            raise ValueError(f"end-effector link {ee_link!r} is not in the URDF (links: {', '.join(sorted(links))})")
        if base_link is not None and base_link not in links:
            raise ValueError(f"base link {base_link!r} is not in the URDF (links: {', '.join(sorted(links))})")
        path: list[_UrdfJoint] = []
        link, seen = ee_link, {ee_link}
        while link != base_link and link in by_child:
            joint = by_child[link]
            path.append(joint)
            link = joint.parent
            if link in seen:
                raise ValueError(f"malformed URDF: the joints form a loop through link {link!r}")
            seen.add(link)
        if base_link is not None and link != base_link:
            raise ValueError(f"base link {base_link!r} is not on the path from the root {link!r} to {ee_link!r}")
        if base_link is None and len(roots) != 1:
            raise ValueError(f"malformed URDF: {len(roots)} root links ({', '.join(roots)}); give base_link")
        path.reverse()
        names = [str(n) for n in joint_names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"joint_names lists {dupes} more than once")
        fixed = dict(fixed_positions or {})
        moving = [j.name for j in path if j.type in MOVING_TYPES]
        unknown = [n for n in names if n not in moving]
        if unknown:
            raise ValueError(
                f"joints {unknown} are not moving joints on the chain {link!r} -> {ee_link!r} "
                f"(its moving joints: {moving})"
            )
        unknown_fixed = sorted(set(fixed) - set(moving))
        if unknown_fixed:
            raise ValueError(f"fixed_positions names {unknown_fixed}, not moving joints of the chain (its: {moving})")
        missing = [n for n in moving if n not in names and n not in fixed]
        if missing:
            raise ValueError(
                f"chain joints {missing} ({link!r} -> {ee_link!r}) are not in joint_names {names}: command them "
                "or hold them with fixed_positions"
            )
        both = sorted(set(names) & set(fixed))
        if both:
            raise ValueError(f"joints {both} are both commanded (joint_names) and held (fixed_positions)")

        # Fold every static piece (origins, fixed and held joints, the axis alignment) into one transform before
        # each commanded joint, which then moves about / along its local z.
        statics: list[F64] = []
        kinds: dict[str, str] = {}
        children: dict[str, str] = {}
        acc = np.eye(4)
        for joint in path:
            if joint.type not in SUPPORTED_TYPES:
                raise ValueError(
                    f"joint {joint.name!r} has type {joint.type!r}; a kinematic chain supports {SUPPORTED_TYPES}"
                )
            acc = acc @ joint.origin
            if joint.type == "fixed":
                continue
            norm = float(np.linalg.norm(joint.axis))
            if norm < 1e-12:
                raise ValueError(f"joint {joint.name!r} has a zero axis")
            axis = joint.axis / norm
            if joint.name in fixed:
                value = float(fixed[joint.name])
                if not math.isfinite(value):
                    raise ValueError(f"fixed_positions[{joint.name!r}] = {value} is not finite")
                if joint.type == "prismatic":
                    motion = _homogeneous(np.eye(3), axis * value)
                else:
                    motion = _homogeneous(_axis_angle_matrix(axis, value), np.zeros(3))
                acc = acc @ motion
                continue
            align = _homogeneous(_z_to_axis(axis), np.zeros(3))
            statics.append(acc @ align)
            kinds[joint.name] = "prismatic" if joint.type == "prismatic" else "revolute"
            children[joint.name] = joint.child
            acc = align.T.copy()  # the inverse of a pure rotation
        statics.append(acc)
        chain_order = [n for n in moving if n in kinds]  # commanded joints, base to tip
        return cls(
            statics,
            [kinds[n] for n in chain_order],
            [names.index(n) for n in chain_order],
            names,
            base_link=link,
            ee_link=ee_link,
            joint_links=[children[n] for n in chain_order],
        )

    # ------------------------------------------------------------------ evaluation
    @property
    def n_joints(self) -> int:
        """How many positions `position` and `pose` take."""
        return self._n

    def _values(self, q: object) -> list[float]:
        if isinstance(q, np.ndarray):
            if q.shape != (self._n,):
                raise ValueError(f"expected {self._n} joint positions {list(self.joint_names)}, got shape {q.shape}")
            values: list[float] = q.tolist()
            return values
        if not isinstance(q, Sequence) or len(q) != self._n:
            raise ValueError(f"expected {self._n} joint positions {list(self.joint_names)}, got {q!r}")
        return [float(v) for v in q]

    def position(self, q: npt.ArrayLike) -> F64:
        """End-effector position [3] (m, base frame) for joint positions `q` [n] (joint_names order, rad or m).

        Raises:
            ValueError: `q` is not n numbers.
        """
        qs = self._values(q)
        cos, sin = math.cos, math.sin
        x, y, z = self._tail
        for i, prismatic, (r00, r01, r02, r10, r11, r12, r20, r21, r22, tx, ty, tz) in self._backward:
            qi = qs[i]
            if prismatic:
                z += qi
            else:
                c, s = cos(qi), sin(qi)
                x, y = c * x - s * y, s * x + c * y
            x, y, z = (
                r00 * x + r01 * y + r02 * z + tx,
                r10 * x + r11 * y + r12 * z + ty,
                r20 * x + r21 * y + r22 * z + tz,
            )
        return np.array((x, y, z))

    def pose(self, q: npt.ArrayLike) -> tuple[F64, F64]:
        """(position [3] in m, rotation matrix [3, 3]) of the end-effector frame in the base frame.

        Raises:
            ValueError: `q` is not n numbers.
        """
        t = self._forward(self._values(q))
        return t[:3, 3].copy(), t[:3, :3].copy()

    def _forward(self, qs: list[float], joint_frames: list[F64] | None = None) -> F64:
        """The end-effector transform [4, 4]; appends each moving joint's frame (axis = local z) when asked."""
        t = self._statics[0].copy()
        for k in range(self._n):
            if joint_frames is not None:
                joint_frames.append(t)
            qi = qs[self._read[k]]
            motion = np.eye(4)
            if self._prismatic[k]:
                motion[2, 3] = qi
            else:
                c, s = math.cos(qi), math.sin(qi)
                motion[:2, :2] = ((c, -s), (s, c))
            t = t @ motion @ self._statics[k + 1]
        return t

    def jacobian(self, q: npt.ArrayLike) -> F64:
        """Geometric Jacobian [6, n] of the end-effector link's origin in the base frame.

        Rows 0-2 map joint velocities to the linear velocity of the end-effector origin (m/s), rows 3-5 to the
        angular velocity (rad/s), both in the base frame; column j belongs to `joint_names[j]` (rad/s, or m/s
        for a prismatic joint). A revolute joint with axis z through o contributes (z × (p − o), z), a prismatic
        one (z, 0): the same convention as MuJoCo's `mj_jacBody`.

        Raises:
            ValueError: `q` is not n numbers.
        """
        frames: list[F64] = []  # each moving joint's frame (its axis is the local z), base frame
        p_ee = self._forward(self._values(q), frames)[:3, 3]
        jac = np.zeros((6, self._n))
        for k, frame in enumerate(frames):
            z, origin = frame[:3, 2], frame[:3, 3]
            col = self._read[k]
            if self._prismatic[k]:
                jac[:3, col] = z
            else:
                jac[:3, col] = np.cross(z, p_ee - origin)
                jac[3:, col] = z
        return jac

    def point_jacobians(self, q: npt.ArrayLike) -> tuple[F64, F64]:
        """Positions [P, 3] (m) and position Jacobians [P, 3, n] (m/rad, or m/m for prismatic joints) of the
        control points `point_names` (P = n + 1), base frame, in one forward pass.

        Column j belongs to `joint_names[j]`. Point k is the origin of the child link of moving joint k, which
        lies on that joint's axis: a revolute joint moves it not at all, only the joints before it do. The last
        row is the end effector, equal to `position(q)` and `jacobian(q)[:3]`.

        Raises:
            ValueError: `q` is not n numbers.
        """
        qs = self._values(q)
        n = self._n
        cos, sin = math.cos, math.sin
        # Scalar arithmetic on the rotation and origin (as in `position`): ~5x faster than 4x4 numpy products at
        # 7 joints. Each joint records its axis (local z), its origin and its child link's origin.
        r00, r01, r02, r10, r11, r12, r20, r21, r22, px, py, pz = self._rigids[0]
        rows: list[tuple[float, ...]] = []
        for k in range(n):
            ax, ay, az, ox, oy, oz = r02, r12, r22, px, py, pz
            qi = qs[self._read[k]]
            if self._prismatic[k]:
                px, py, pz = px + qi * r02, py + qi * r12, pz + qi * r22
            else:
                c, s = cos(qi), sin(qi)
                r00, r01 = c * r00 + s * r01, c * r01 - s * r00
                r10, r11 = c * r10 + s * r11, c * r11 - s * r10
                r20, r21 = c * r20 + s * r21, c * r21 - s * r20
            rows.append((ax, ay, az, ox, oy, oz, px, py, pz))
            a00, a01, a02, a10, a11, a12, a20, a21, a22, tx, ty, tz = self._rigids[k + 1]
            px, py, pz = (
                px + r00 * tx + r01 * ty + r02 * tz,
                py + r10 * tx + r11 * ty + r12 * tz,
                pz + r20 * tx + r21 * ty + r22 * tz,
            )
            r00, r01, r02, r10, r11, r12, r20, r21, r22 = (
                r00 * a00 + r01 * a10 + r02 * a20,
                r00 * a01 + r01 * a11 + r02 * a21,
                r00 * a02 + r01 * a12 + r02 * a22,
                r10 * a00 + r11 * a10 + r12 * a20,
                r10 * a01 + r11 * a11 + r12 * a21,
                r10 * a02 + r11 * a12 + r12 * a22,
                r20 * a00 + r21 * a10 + r22 * a20,
                r20 * a01 + r21 * a11 + r22 * a21,
                r20 * a02 + r21 * a12 + r22 * a22,
            )
        points = np.empty((n + 1, 3))
        points[n] = (px, py, pz)
        if n == 0:
            return points, np.zeros((1, 3, 0))
        frames = np.array(rows)
        points[:n] = frames[:, 6:]
        axis = frames[:, None, :3]  # [k, 1, 3]
        d = points[None, :, :] - frames[:, None, 3:6]  # [k, i, 3]: point i relative to joint k's origin
        cols = np.empty((n, n + 1, 3))  # column k (chain order) of the Jacobian of point i
        cols[..., 0] = axis[..., 1] * d[..., 2] - axis[..., 2] * d[..., 1]
        cols[..., 1] = axis[..., 2] * d[..., 0] - axis[..., 0] * d[..., 2]
        cols[..., 2] = axis[..., 0] * d[..., 1] - axis[..., 1] * d[..., 0]
        if self._any_prismatic:
            cols[self._prismatic_rows] = axis[self._prismatic_rows]
        cols *= self._moves  # joint k moves point k and the points after it, not those before
        jac = np.empty((n + 1, 3, n))
        jac[:, :, self._read_cols] = cols.transpose(1, 2, 0)
        return points, jac


def resolve_urdf(urdf: str) -> str:
    """The file path of `urdf`: a path as is, or `pybullet_data:<relative path>` inside the pybullet_data package.

    Raises:
        ValueError: empty, pybullet_data not installed, or the file does not exist.
    """
    if not urdf:
        raise ValueError("no URDF given (a file path or pybullet_data:<relative path>)")
    if urdf.startswith(PYBULLET_DATA_PREFIX):
        rel = urdf[len(PYBULLET_DATA_PREFIX) :].lstrip("/")
        try:
            import pybullet_data  # lazily: only this form needs it
        except ImportError:
            raise ValueError(
                f"URDF {urdf!r} names the pybullet_data package, which is not installed (pip install pybullet), "
                "or give the URDF's file path"
            ) from None
        path = os.path.join(str(pybullet_data.getDataPath()), rel)
    else:
        path = os.path.expanduser(urdf)
    if not os.path.isfile(path):
        raise ValueError(f"URDF file not found: {urdf!r} ({path})")
    return path


def load_urdf_chain(
    urdf: str,
    ee_link: str,
    joint_names: Sequence[str],
    *,
    base_link: str | None = None,
    fixed_positions: Mapping[str, float] | None = None,
) -> UrdfChain:
    """The `UrdfChain` (FK and Jacobian) the policy node and `eval --safety` hand to `build_chain`.

    Args: see `load_forward_kinematics`.

    Raises:
        ValueError: see `resolve_urdf` and `UrdfChain.from_urdf`.
    """
    if not ee_link:
        raise ValueError(f"no end-effector link given for URDF {urdf!r}")
    return UrdfChain.from_urdf(
        resolve_urdf(urdf), ee_link, joint_names, base_link=base_link, fixed_positions=fixed_positions
    )


def load_forward_kinematics(
    urdf: str,
    ee_link: str,
    joint_names: Sequence[str],
    *,
    base_link: str | None = None,
    fixed_positions: Mapping[str, float] | None = None,
) -> Callable[[F64], F64]:
    """Forward kinematics for `SafetyChain`: joint positions [n] (joint_names order) → end-effector position [3].

    Args:
        urdf: a URDF file path, or `pybullet_data:<relative path>` (e.g. `pybullet_data:franka_panda/panda.urdf`).
        ee_link: the end-effector link.
        joint_names: the config's joint order.
        base_link: frame of the positions (default: the URDF's root link).
        fixed_positions: chain joints that are not commanded, held at these positions.

    Raises:
        ValueError: see `resolve_urdf` and `UrdfChain.from_urdf`.
    """
    return load_urdf_chain(urdf, ee_link, joint_names, base_link=base_link, fixed_positions=fixed_positions).position
