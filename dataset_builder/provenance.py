"""Provenance shared by every row and result file: git revision (from hardware.provenance) and builder version."""

from __future__ import annotations

from functools import cache
from importlib import metadata

from narch.hardware.provenance import git_rev as _git_rev


@cache
def git_rev() -> str:
    """`git describe --always --dirty` of the source tree (cached per process), or 'unknown' outside a checkout."""
    return _git_rev()


@cache
def builder_version() -> str:
    """The installed neural-architect version."""
    try:
        return metadata.version("neural-architect")
    except metadata.PackageNotFoundError:
        return "0+unknown"
