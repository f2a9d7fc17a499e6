"""Numpy-only safety filter chain, e-stop latch and human/policy arbitration (never imports torch or rclpy)."""

from robot_rl.safety.arbiter import Arbiter, Selection
from robot_rl.safety.chain import LINK_NAMES, ChainResult, SafetyChain
from robot_rl.safety.config import SafetyConfig
from robot_rl.safety.diagnostics import DiagnosticEntry

__all__ = ["LINK_NAMES", "Arbiter", "ChainResult", "DiagnosticEntry", "SafetyChain", "SafetyConfig", "Selection"]
