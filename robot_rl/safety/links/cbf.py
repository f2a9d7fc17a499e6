"""The barrier-function filter (`cbf`): the smallest change to the command that keeps every control point clear of
the configured obstacles and every joint inside its limits one step ahead (robot_rl/safety/cbf/).

It stands between the input checks and the final clamp (kind "filter"). Velocity interface: the command is the
joint velocity u. Position interface: u = (target − q_meas)/T, and the filtered u gives target = q_meas + u·T.
The effort interface is refused (an effort does not fix the next position). An infeasible, slow or failed solve
holds (the chain's safe action) and is counted under its own key.
"""

from __future__ import annotations

import numpy as np

from robot_rl.safety.cbf.config import CbfConfig
from robot_rl.safety.cbf.filter import CbfFilter, CbfStats
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.inputs import F64, all_finite
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step
from robot_rl.safety.links.joint_limits import JointLimits, step_prediction
from robot_rl.safety.urdf_kinematics import UrdfChain

CBF_KEYS = ("cbf", "cbf_infeasible", "cbf_timeout", "cbf_error")
"""Counter keys: commands the filter changed, and holds because the QP was infeasible, over its time budget, or
failed (raised, non-finite, inaccurate)."""


class CbfLink(LinkBase):
    """Control-barrier-function QP filter over the URDF's control points (see robot_rl/safety/cbf/)."""

    name = "cbf"
    kind: LinkKind = "filter"
    needs_kinematics = True
    """Builders load the robot's URDF chain for a config that lists this link (`registry.needs_kinematics`)."""

    def __init__(self, config: SafetyConfig, kinematics: object = None) -> None:
        """Args:
        config: the limits; `config.params_of("cbf")` holds the barriers and solver (`CbfConfig`).
        kinematics: the `UrdfChain` of the robot (positions and Jacobians of the control points).

        Raises:
            ValueError: invalid cbf parameters (each named), the effort interface, kinematics missing or not a
                `UrdfChain`, or a solver that does not import.
        """
        super().__init__(CBF_KEYS)
        if config.command_interface == "effort":
            raise ValueError(
                "the cbf link filters velocity or position commands; command_interface 'effort' does not fix where "
                "the arm is one step later, so a barrier cannot be enforced: remove 'cbf' from links"
            )
        if not isinstance(kinematics, UrdfChain):
            raise ValueError(
                "the cbf link needs the robot's UrdfChain (control-point Jacobians): build the chain with "
                f"build_chain(config, load_urdf_chain(urdf, ee_link, joint_names)), got {kinematics!r}"
            )
        cbf = CbfConfig.from_params(config.params_of("cbf"), config.control_period_s)
        self._lookahead = cbf.lookahead_periods
        self.filter_: CbfFilter = CbfFilter(cbf, config, kinematics)
        """The barrier rows, box and QP."""
        self._position_iface = config.command_interface == "position"
        self._period_s = config.control_period_s
        self._limits = JointLimits.from_config(config)

    @property
    def stats(self) -> CbfStats:
        """Solves, failures, corrections and solve times so far."""
        return self.filter_.stats

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """The command with the smallest change that keeps every barrier (unchanged when it already does), or
        hold. Never raises, never returns non-finite values, never mutates `action`."""
        q = step.joint_pos_rad
        if q is None:
            return self.hold("no valid joint measurement to place the barriers at")
        dt_s = step.control_dt_s
        if not dt_s > 0.0:
            return self.hold(f"no time step to predict over (dt {dt_s} s)")
        try:
            if self._position_iface:
                with np.errstate(all="ignore"):  # a 1e308 target overflows to inf: the filter clips it
                    u = (action - q) / dt_s
                # T cancels out of the rows for a target: h(q + u·T) is h at the target itself.
                out, reason, stats = self.filter_.filter(q, u, step.v_prev, dt_s)
                if out is u:
                    return action, ()
                result = None if out is None else q + out * dt_s
            else:
                # A velocity command stays in force until the next one, or until the robot's command timeout if none
                # comes, and a lagging servo moves on after it: the rows hold over `lookahead_periods` periods.
                horizon_s = max(dt_s, self._period_s) * self._lookahead
                # The final clamp judges the joint limits from where the commands sent put the joints: so do we.
                q_pred = step_prediction(step, q, self._limits)
                out, reason, stats = self.filter_.filter(q, action, step.v_prev, dt_s, horizon_s, q_pred)
                if out is action:
                    return action, ()
                result = out
        except Exception as exc:  # a fault in the filter must hold the robot, never escape to the node
            return self.hold(f"cbf_error: filter raised {type(exc).__name__}: {exc}", "cbf_error")
        if result is None:
            key = f"cbf_{stats.last_status}" if f"cbf_{stats.last_status}" in CBF_KEYS else "cbf_error"
            return self.hold(reason, key)
        if not all_finite(result):
            return self.hold(f"cbf_error: the filtered command {result.tolist()} is not finite", "cbf_error")
        return result, (("cbf", reason),)
