"""Reading joint facts from a URDF and preparing one processed URDF text that both physics backends load.

Both MuJoCo and PyBullet load the *same* processed text, so the two twins cannot drift apart in geometry,
inertia or limits: the processing only (1) makes mesh paths absolute, (2) turns the joints a robot keeps
still (e.g. Panda fingers while pushing) into fixed joints, and (3) drops visual elements (we never render
meshes here, and MuJoCo would otherwise try to load visual-only files it cannot read).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from sim.errors import SimError, unknown_name


@dataclass(frozen=True)
class JointInfo:
    """One URDF joint as the description declares it (SI units; revolute in rad, prismatic in m)."""

    name: str
    """URDF joint name (the name ROS `/joint_states` uses)."""
    type: str
    """URDF joint type: revolute, continuous, prismatic or fixed."""
    lower: float
    """Lower position limit; -inf for continuous joints."""
    upper: float
    """Upper position limit; +inf for continuous joints."""
    velocity: float
    """Velocity limit (rad/s or m/s); inf when the description gives none."""
    effort: float
    """Effort limit (N·m or N); inf when the description gives none."""
    child_link: str
    """Name of the link this joint moves."""


def pybullet_data_path() -> str:
    """The folder of the `pybullet_data` package, where the robot descriptions ship (nothing is downloaded)."""
    import pybullet_data

    return str(pybullet_data.getDataPath())


def resolve(urdf_relpath: str) -> str:
    """Absolute path of a description shipped with pybullet_data; clear error if it is missing."""
    path = os.path.join(pybullet_data_path(), urdf_relpath)
    if not os.path.isfile(path):
        raise SimError(f"robot description {urdf_relpath!r} not found in pybullet_data ({path})")
    return path


@cache
def read_joints(urdf_path: str) -> dict[str, JointInfo]:
    """Every joint of the URDF by name, with limits read from its `<limit>` element."""
    root = ET.parse(urdf_path).getroot()
    joints: dict[str, JointInfo] = {}
    for j in root.iter("joint"):
        jtype = j.get("type", "fixed")
        limit = j.find("limit")

        def attr(key: str, default: float, lim: ET.Element | None = limit) -> float:
            return float(lim.get(key, default)) if lim is not None else default

        if jtype == "continuous":
            lower, upper = -math.inf, math.inf
        else:
            lower, upper = attr("lower", 0.0), attr("upper", 0.0)
        child = j.find("child")
        joints[j.get("name", "")] = JointInfo(
            name=j.get("name", ""),
            type=jtype,
            lower=lower,
            upper=upper,
            velocity=attr("velocity", math.inf) or math.inf,
            effort=attr("effort", math.inf) or math.inf,
            child_link=child.get("link", "") if child is not None else "",
        )
    return joints


def processed_urdf_text(urdf_path: str, frozen_joints: Iterable[str] = ()) -> str:
    """The URDF text both backends load: absolute mesh paths, `frozen_joints` made fixed, visuals removed."""
    base = os.path.dirname(urdf_path)
    with open(urdf_path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"<visual>.*?</visual>", "", text, flags=re.S)
    text = text.replace("package://", "")
    text = re.sub(r'filename="(?!/)([^"]+)"', lambda m: f'filename="{os.path.join(base, m.group(1))}"', text)
    for name in frozen_joints:
        text, n = re.subn(rf'(<joint\s+name="{re.escape(name)}"\s+type=")[a-z]+(")', r"\1fixed\2", text)
        if n != 1:
            raise SimError(f"cannot freeze joint {name!r}: not found in {urdf_path}")
    # MuJoCo warns once per unnamed geom ("duplicate name ''"); numbered names keep its log quiet.
    counter = iter(range(1_000_000))
    return re.sub(r"<collision(\s+name=\"\")?\s*>", lambda _: f'<collision name="collision_{next(counter)}">', text)


def stretch_link_inertials(text: str, scales: Mapping[str, float]) -> str:
    """URDF `text` with links stretched: each named link's centre-of-mass offset × f, its inertia tensor × f².

    The mass stays (a uniformly stretched rod of the same mass). Used by the PyBullet backend, which cannot move a
    link's centre of mass after loading; MuJoCo edits the same two quantities in its compiled model.

    Raises:
        SimError: a link the text does not define.
    """
    if not scales:
        return text
    root = ET.fromstring(text)
    links = {link.get("name", ""): link for link in root.iter("link")}
    for name, f in scales.items():
        link = links.get(name)
        if link is None:
            raise unknown_name("link", name, links)
        inertial = link.find("inertial")
        if inertial is None:
            continue  # no mass distribution to stretch
        origin = inertial.find("origin")
        if origin is not None and origin.get("xyz"):
            xyz = [float(v) * f for v in origin.get("xyz", "").split()]
            origin.set("xyz", " ".join(repr(v) for v in xyz))
        inertia = inertial.find("inertia")
        if inertia is not None:
            for key in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz"):
                if inertia.get(key) is not None:
                    inertia.set(key, repr(float(inertia.get(key, "0")) * f * f))
    return ET.tostring(root, encoding="unicode")
