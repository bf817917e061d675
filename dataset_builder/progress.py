"""Progress of a build: done/total, networks per hour, ETA, failures, the latest run (the CLI and the pipeline show
it; a rich bar in a terminal, plain periodic lines elsewhere: ``narch.core.progress``)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from narch.core.progress import track
from narch.dataset_builder.build import BuildConfig, BuildSummary, PreparedBuild, run_build


def build_label(cfg: BuildConfig) -> str:
    """``build <task>`` and where it runs: shard, Ray, concurrency."""
    where = (f" shard {cfg.shard}" if cfg.shard else "") + (" ray" if cfg.backend == "ray" else "")
    where += f" x{cfg.concurrency}" if cfg.concurrency > 1 else ""
    return f"build {cfg.task}{where}"


def last_run(row: dict[str, Any] | None) -> str | None:
    """The latest run's arch_id, status and val_acc (None: no run finished with this update)."""
    if row is None:
        return None
    acc = row.get("val_acc")
    return f"{row['arch_id']} {row['status']}" + (f" val {acc:.3f}" if acc is not None else "")


def run_with_progress(pb: PreparedBuild, *, console: Console, show: bool = True) -> BuildSummary:
    """Run a prepared build, showing its progress on ``console``."""
    if not show:
        return run_build(pb)
    with track(console, build_label(pb.config), len(pb.plan), unit="nets", count_failures=True) as tracker:

        def update(summary: BuildSummary, row: dict[str, Any] | None) -> None:
            tracker.update(completed=summary.skipped + summary.done, finished=summary.done, failed=summary.failed,
                           note=last_run(row))

        return run_build(pb, on_progress=update)
