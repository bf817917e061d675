"""One provenance record, with one set of keys, for every result file the suite writes."""

from __future__ import annotations

import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PROVENANCE_KEYS = ("command", "host", "cpu_model", "cpus", "git_rev", "builder_version", "python", "torch",
                   "created_at")


def now_iso() -> str:
    """UTC now in ISO 8601, seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@cache
def git_rev() -> str:
    """`git describe --always --dirty` of this source tree (cached per process), or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5,
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


@cache
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform), e.g. 'AMD EPYC 9B14'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_version() -> str | None:
    """The installed torch version, without importing torch (the core stays torch-free)."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def cluster_node() -> str | None:
    """Which node of a cluster this process runs on: ``ray:<node id>`` inside a Ray worker (several Ray nodes may
    share one host), ``slurm:<job>[_<array task>]@<node>`` inside a Slurm job, None elsewhere."""
    ray = sys.modules.get("ray")  # never imported here: only a process Ray started has it loaded
    if ray is not None and ray.is_initialized():
        ctx = ray.get_runtime_context()
        if getattr(getattr(ctx, "worker", None), "mode", None) == getattr(ray, "WORKER_MODE", 1):  # not the driver
            return f"ray:{ctx.get_node_id()}"
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"slurm:{job}{'_' + task if task else ''}@{os.environ.get('SLURMD_NODENAME', socket.gethostname())}"
    return None


def command_line() -> str:
    """The command that is running, as a shell would show it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("narch"):
        argv[0] = "narch"
    return shlex.join(argv)


def provenance(command: str | None = None, **extra: Any) -> dict[str, Any]:
    """Who made a result: the keys of ``PROVENANCE_KEYS`` (always all of them), then ``extra``."""
    return {
        "command": command or command_line(),
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "git_rev": git_rev(),
        "builder_version": builder_version(),
        "python": platform.python_version(),
        "torch": _torch_version(),
        "created_at": now_iso(),
    } | extra


def provenance_markdown(prov: dict[str, Any]) -> str:
    """A provenance record as a markdown list for report files."""
    return "\n".join(f"- {k}: `{prov[k]}`" for k in PROVENANCE_KEYS if prov.get(k) is not None) + "\n"
