"""Assemble a policy's flat observation from the latest robot messages, joints matched by name, never by order.

ROS-free: the node hands over plain Python/numpy data with the time it arrived; this class validates it,
keeps the last good value of every source and reports how fresh the oldest one is (the safety chain's
observation watchdog holds the robot when any source goes stale, so one frozen sensor is enough to stop).

A rejected joint state that names any of the policy's joints (NaN, wrong length, duplicates, missing joints, no
velocities where the policy needs them) *faults* the joint-state source until the next accepted one: the stamp
the watchdog sees is then None, so the very next tick holds instead of driving on the last good reading. A
message that names none of the policy's joints (another publisher on `/joint_states`, e.g. a gripper driver) is
counted as `joint_states/foreign` and leaves the source alone: if the robot's own stream stops, the observation
goes stale and the watchdog holds anyway.

Positions-only messages (empty `velocity[]`, legal and common) are taken when the observation has no `joint_vel`
entry (`joint_velocities` is then None). When it has one they are rejected as `joint_states/no_velocity`: a
finite-difference estimate over header stamps would feed the policy a noisier, lagged signal than the measured
velocity it was trained on, and a jittery or repeated stamp would turn into a velocity spike — holding and saying
why is the safer answer; publish velocities (ros2_control's joint_state_broadcaster does) to run such a policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robot_rl.core.robot import RobotInterface

JOINT_KEYS = ("joint_pos", "joint_vel")
"""Observation entries filled from `/joint_states` (positions and velocities, by joint name)."""


@dataclass(frozen=True)
class ObservationLayout:
    """Where each entry of the flat observation comes from (a bundle's `RobotInterface`, flattened for the tick)."""

    keys: tuple[str, ...]
    """Entry names in flattening order, e.g. ("joint_pos", "joint_vel", "ee_pos", "target_pos")."""
    sizes: tuple[int, ...]
    """Number of values of each entry (same order as `keys`)."""
    joint_names: tuple[str, ...]
    """Joints whose positions/velocities fill `joint_pos`/`joint_vel`, in observation order."""

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.sizes) or not self.keys:
            raise ValueError(f"observation layout: {len(self.keys)} keys but {len(self.sizes)} sizes")
        for key, size in zip(self.keys, self.sizes, strict=True):
            if key in JOINT_KEYS and size != len(self.joint_names):
                raise ValueError(
                    f"observation layout: {key!r} has {size} values but the manifest names "
                    f"{len(self.joint_names)} joints {list(self.joint_names)}"
                )

    @property
    def dim(self) -> int:
        """Length of the flat observation."""
        return sum(self.sizes)

    @property
    def topic_keys(self) -> tuple[str, ...]:
        """Entries that arrive on their own topic (`/observations/<key>`), i.e. everything but joint state."""
        return tuple(k for k in self.keys if k not in JOINT_KEYS)

    @classmethod
    def from_robot(cls, robot: RobotInterface, obs_dim: int) -> ObservationLayout:
        """The layout of a bundle's typed robot interface (`PolicySpec.robot`: observation entries, joints).

        Raises:
            ValueError: the layout does not add up to the model's input size.
        """
        keys = tuple(e.name for e in robot.observation)
        sizes = tuple(e.size for e in robot.observation)
        out = cls(keys=keys, sizes=sizes, joint_names=robot.joint_names)
        if out.dim != obs_dim:
            raise ValueError(
                f"observation layout {dict(zip(keys, sizes, strict=True))} sums to {out.dim}, "
                f"but the model takes {obs_dim} inputs"
            )
        return out


class ObservationAssembler:
    """Keeps the latest valid value of each observation source and builds the flat float32 observation."""

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        self._index = {name: i for i, name in enumerate(layout.joint_names)}
        n = len(layout.joint_names)
        self._pos = np.zeros(n)
        self._vel = np.zeros(n)
        self._values: dict[str, npt.NDArray[np.float64]] = {}
        self._arrival_s: dict[str, float] = {}
        self._header_stamp_s: dict[str, float] = {}
        self._offsets: dict[str, slice] = {}
        start = 0
        for key, size in zip(layout.keys, layout.sizes, strict=True):
            self._offsets[key] = slice(start, start + size)
            start += size
        self._flat = np.zeros(layout.dim, dtype=np.float32)
        self.rejected: dict[str, int] = {}
        """Rejected messages per reason kind (`joint_states/<why>`, `<key>/<why>`)."""
        self.last_rejection = ""
        """Human-readable reason of the most recent rejection."""
        self.last_rejection_kind = ""
        """Counter key of the most recent rejection (`joint_states/<why>`, `<key>/<why>`)."""
        self.fault = ""
        """Why the joint-state source is faulted ("" when its latest message naming our joints was accepted)."""
        self._velocity_measured = True
        self._fresh_since_s: float | None = None
        self._previous_arrival_s: dict[str, float] = {}
        self.episode_start_waits = 0
        """Ticks held at an episode start because a source had not been refreshed since the episode began."""

    @property
    def needs_velocity(self) -> bool:
        """Whether the observation has a `joint_vel` entry (positions-only joint states are then rejected)."""
        return "joint_vel" in self.layout.keys

    def _reject(self, kind: str, message: str) -> str:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self.last_rejection = message
        self.last_rejection_kind = kind
        return message

    def _reject_joint_state(self, kind: str, message: str) -> str:
        # Our robot's own reading is bad: until a good one arrives nothing may drive on the last good value.
        self.fault = message
        return self._reject(kind, message)

    def _fresh(self, source: str, arrival_s: float, header_stamp_s: float | None) -> None:
        # A sensor that keeps re-sending its last sample with the same header stamp is frozen: its data
        # stays, but its freshness does not advance, so the watchdog trips on it.
        if header_stamp_s is not None and self._header_stamp_s.get(source) == header_stamp_s:
            return
        if header_stamp_s is not None:
            self._header_stamp_s[source] = header_stamp_s
        if source in self._arrival_s:
            self._previous_arrival_s[source] = self._arrival_s[source]
        self._arrival_s[source] = arrival_s

    def joint_state_stamp_s(self) -> float | None:
        """Header stamp (s, the sensor's clock) of the latest accepted joint state; None before one arrived or
        when the publisher does not stamp its messages. The safety chain's plausibility link judges it per
        source (a stamp that goes back or jumps ahead of the node's clock is a sensor fault)."""
        return self._header_stamp_s.get("joint_state")

    def update_joint_state(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        *,
        arrival_s: float,
        header_stamp_s: float | None = None,
    ) -> str | None:
        """Take one `sensor_msgs/JointState`; returns None if accepted, else why it was rejected (data kept).

        An empty `velocities` is a positions-only message (see the module docstring).
        """
        reject = self._reject_joint_state
        try:
            names_t = tuple(str(n) for n in names)
        except (TypeError, ValueError) as exc:
            return reject("joint_states/malformed", f"joint_states: unreadable names ({exc})")
        if names_t and not set(names_t) & set(self._index):
            return self._reject(
                "joint_states/foreign",
                f"joint_states: none of the policy's joints {list(self.layout.joint_names)} in {list(names_t)}",
            )
        try:
            pos = np.asarray(positions, dtype=np.float64).reshape(-1)
            vel = np.asarray(velocities, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            return reject("joint_states/malformed", f"joint_states: unreadable values ({exc})")
        if len(pos) != len(names_t):
            return reject("joint_states/length", f"joint_states: {len(names_t)} names but {len(pos)} positions")
        positions_only = len(vel) == 0 and len(names_t) > 0
        if positions_only and self.needs_velocity:
            return reject(
                "joint_states/no_velocity",
                "joint_states: velocity[] is empty (positions only) but the policy observes joint_vel; "
                "publish joint velocities (e.g. ros2_control's joint_state_broadcaster does)",
            )
        if not positions_only and len(vel) != len(names_t):
            return reject("joint_states/length", f"joint_states: {len(names_t)} names but {len(vel)} velocities")
        if len(set(names_t)) != len(names_t):
            return reject("joint_states/duplicate", f"joint_states: duplicate joint names {list(names_t)}")
        where = {name: i for i, name in enumerate(names_t)}
        missing = [j for j in self.layout.joint_names if j not in where]
        if missing:
            return reject("joint_states/missing", f"joint_states: missing joints {missing} in {list(names_t)}")
        order = [where[j] for j in self.layout.joint_names]
        p = pos[order]
        v = np.full(len(order), np.nan) if positions_only else vel[order]
        if not (np.isfinite(p).all() and (positions_only or np.isfinite(v).all())):
            return reject("joint_states/non_finite", f"joint_states: non-finite values pos={p} vel={v}")
        if not math.isfinite(arrival_s) or (header_stamp_s is not None and not math.isfinite(header_stamp_s)):
            return reject("joint_states/stamp", f"joint_states: bad stamp {header_stamp_s}")
        self._pos[:] = p
        self._vel[:] = v
        self._velocity_measured = not positions_only
        self._values["joint_state"] = p
        self.fault = ""
        self._fresh("joint_state", arrival_s, header_stamp_s)
        return None

    def update_observation(self, key: str, values: Sequence[float], *, arrival_s: float) -> str | None:
        """Take one `/observations/<key>` message; returns None if accepted, else why it was rejected."""
        sl = self._offsets.get(key)
        if sl is None or key in JOINT_KEYS:
            return self._reject("unknown_key", f"observation {key!r} is not an input of this policy")
        try:
            arr = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            return self._reject(f"{key}/malformed", f"{key}: unreadable values ({exc})")
        size = sl.stop - sl.start
        if arr.size != size:
            return self._reject(f"{key}/length", f"{key}: {arr.size} values, expected {size}")
        if not np.isfinite(arr).all():
            return self._reject(f"{key}/non_finite", f"{key}: non-finite values {arr.tolist()}")
        if not math.isfinite(arrival_s):
            return self._reject(f"{key}/stamp", f"{key}: bad arrival time {arrival_s}")
        self._values[key] = arr
        self._fresh(key, arrival_s, None)
        return None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source the observation needs: "joint_state" plus one per topic entry."""
        return ("joint_state", *self.layout.topic_keys)

    def missing(self) -> tuple[str, ...]:
        """Sources never received yet."""
        return tuple(s for s in self.sources if s not in self._arrival_s)

    def require_fresh(self, since_s: float | None) -> None:
        """From now until every source has a message that arrived after `since_s` (node clock), `awaiting`
        names the ones still older (None: no requirement).

        At a robot-ended episode's roll-over the robot has re-initialized: the values held from before are the
        previous episode's (its target, its object), and the sources arrive on separate, unordered topics, so
        the joint state that triggers the first tick can come before the task's other observations. A chunked
        policy would plan its first chunk, and fill its observation history, from that mix.

        A source without a header stamp (`/observations/<key>`) is judged by arrival alone, so the caller must hand
        each robot step's messages over in the order the robot published them (observations, joint state, done):
        the policy node subscribes to the observations first, since rclpy takes ready messages in subscription
        order. Taken after the done, the old episode's last object pose would pass as the new episode's.
        """
        self._fresh_since_s = since_s

    def _stamped_before(self, source: str, since_s: float) -> bool:
        # Separate topics are not ordered: the previous episode's last reading can arrive *after* the robot's
        # "done", and arrival alone would take it for the new episode's. Its header stamp, taken before the robot
        # said done, gives it away. A sensor clock behind the node's would then hold the start for ever, so the
        # second reading that arrived after `since_s` is taken whatever its stamp (one period late at worst).
        stamp = self._header_stamp_s.get(source)
        second = self._previous_arrival_s.get(source, -math.inf) > since_s
        return stamp is not None and stamp <= since_s and not second

    def awaiting(self) -> tuple[str, ...]:
        """Sources never received, or not refreshed since the episode start `require_fresh` set (then cleared
        once all are); each call that returns a non-empty result after the start counts a held tick."""
        missing = self.missing()
        since = self._fresh_since_s
        if missing or since is None:
            return missing
        old = tuple(s for s in self.sources if self._arrival_s[s] <= since or self._stamped_before(s, since))
        if old:
            self.episode_start_waits += 1
        else:
            self._fresh_since_s = None
        return old

    def oldest_arrival_s(self) -> float | None:
        """Arrival time of the stalest source (None while any source was never received or the joint-state
        source is faulted: the observation watchdog then holds)."""
        if self.missing() or self.fault:
            return None
        return min(self._arrival_s[s] for s in self.sources)

    def joint_positions(self, joints: Sequence[str]) -> npt.NDArray[np.float64] | None:
        """Measured positions of `joints` (command order), or None before the first joint state."""
        if "joint_state" not in self._arrival_s:
            return None
        return np.array([self._pos[self._index[j]] for j in joints])

    def joint_velocities(self, joints: Sequence[str]) -> npt.NDArray[np.float64] | None:
        """Measured velocities of `joints` (command order), or None before the first joint state or when the
        latest accepted one carried positions only."""
        if "joint_state" not in self._arrival_s or not self._velocity_measured:
            return None
        return np.array([self._vel[self._index[j]] for j in joints])

    def assemble(self) -> npt.NDArray[np.float32] | None:
        """The flat float32 observation `[dim]` in manifest order, or None while a source is missing."""
        if self.missing():
            return None
        with np.errstate(over="ignore"):  # finite float64 beyond float32 range becomes inf: the policy refuses it
            self._fill()
        return self._flat.copy()

    def _fill(self) -> None:
        for key in self.layout.keys:
            sl = self._offsets[key]
            if key == "joint_pos":
                self._flat[sl] = self._pos
            elif key == "joint_vel":
                self._flat[sl] = self._vel
            else:
                self._flat[sl] = self._values[key]
