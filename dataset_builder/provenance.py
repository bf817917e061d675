"""Provenance shared by every row and result file: git revision, versions, time."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path


@cache
def git_rev() -> str:
    """`git describe --always --dirty` of the source tree, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


@cache
def builder_version() -> str:
    """The installed neural-architect version."""
    try:
        return metadata.version("neural-architect")
    except metadata.PackageNotFoundError:
        return "0+unknown"
