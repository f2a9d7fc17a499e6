"""The software e-stop (`estop`): hold while latched and until an explicit enable after its release."""

from __future__ import annotations

from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.estop import EStopLatch
from robot_rl.safety.inputs import F64
from robot_rl.safety.link import LinkBase, LinkKind, LinkOutput, Step


class EStopLink(LinkBase):
    """A gate around the chain's `EStopLatch` (engage / release / enable go through the chain)."""

    name = "estop"
    kind: LinkKind = "gate"

    def __init__(self, config: SafetyConfig | None = None, kinematics: object = None) -> None:
        """Args: unused (the registry's factory signature); the latch starts released and enabled."""
        super().__init__()
        self.latch = EStopLatch()
        """The latch; `reset` never clears it: restarting a node must not release an e-stop."""

    def filter(self, action: F64, step: Step) -> LinkOutput:
        """Hold while engaged or waiting for enable."""
        latch = self.latch
        if latch.enabled and not latch.engaged:  # the common case, without building a reason
            return action, ()
        return None, (("estop", latch.hold_reason()),)
