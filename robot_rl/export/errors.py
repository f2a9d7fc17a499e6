"""Errors raised by the export path and the bundle runtime (stdlib only)."""

from __future__ import annotations


class BundleError(ValueError):
    """A policy bundle is missing, malformed, tampered with or inconsistent with its manifest."""


class ExportError(RuntimeError):
    """An export was refused: non-finite weights, failed parity, out-of-bounds actions, sampling ops."""
