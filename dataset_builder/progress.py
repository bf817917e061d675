"""A rich progress bar for builds: done/total, networks per hour, ETA, failures (the CLI and the pipeline draw it)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from narch.dataset_builder.build import BuildSummary, PreparedBuild, run_build


def run_with_progress(pb: PreparedBuild, *, console: Console, show: bool = True) -> BuildSummary:
    """Run a prepared build, drawing progress on ``console``."""
    if not show:
        return run_build(pb)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.0f} nets/h"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        cfg = pb.config
        where = (f" shard {cfg.shard}" if cfg.shard else "") + (" ray" if cfg.backend == "ray" else "")
        where += f" x{cfg.concurrency}" if cfg.concurrency > 1 else ""
        tid = progress.add_task(f"build {cfg.task}{where}", total=len(pb.plan), rate=0.0, failed=0, last="")

        def update(summary: BuildSummary, row: dict[str, Any] | None) -> None:
            rate = summary.done / summary.wall_s * 3600 if summary.wall_s else 0.0
            last = ""
            if row is not None:
                acc = row.get("val_acc")
                last = f"{row['arch_id']} {row['status']}" + (f" val {acc:.3f}" if acc is not None else "")
            progress.update(tid, completed=summary.skipped + summary.done, rate=rate, failed=summary.failed, last=last)

        return run_build(pb, on_progress=update)
