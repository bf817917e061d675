"""Provenance of a hardware result file: the command, host, CPU, git revision and date that made it."""

from __future__ import annotations

import platform
import shlex
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from narch.hardware.device import cpu_model


def git_rev() -> str:
    """`git describe --always --dirty` of this source tree, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def command_line() -> str:
    """The command that is running, as a shell would show it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("narch"):
        argv[0] = "narch"
    return shlex.join(argv)


def provenance(command: str | None = None) -> dict[str, Any]:
    """Who made a result: command, host, CPU model, git revision, UTC date, Python."""
    return {
        "command": command or command_line(),
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "git_rev": git_rev(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }


def provenance_markdown(prov: dict[str, Any]) -> str:
    """The provenance as a markdown block for report files."""
    keys = ("command", "host", "cpu_model", "git_rev", "date", "torch")
    return "\n".join(f"- {k}: `{prov[k]}`" for k in keys if k in prov) + "\n"
