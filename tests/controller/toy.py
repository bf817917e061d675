"""The toy scorer of the strategy tests; it lives in the package (``narch.testing.toy``) so plugin suites share it."""

from __future__ import annotations

from narch.testing.toy import CTX, ToyScorer, toy_setup

__all__ = ["CTX", "ToyScorer", "toy_setup"]
