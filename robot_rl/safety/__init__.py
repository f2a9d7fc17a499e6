"""Numpy-only safety filter chain, e-stop latch and human/policy arbitration (never imports torch or rclpy)."""

from robot_rl.safety.arbiter import Arbiter, Selection
from robot_rl.safety.chain import LINK_NAMES, ChainResult, SafetyChain, build_chain
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.diagnostics import DiagnosticEntry
from robot_rl.safety.link import Link, LinkBase, Step
from robot_rl.safety.registry import register_link

__all__ = [
    "LINK_NAMES",
    "Arbiter",
    "ChainResult",
    "DiagnosticEntry",
    "Link",
    "LinkBase",
    "SafetyChain",
    "SafetyConfig",
    "Selection",
    "Step",
    "build_chain",
    "register_link",
]
