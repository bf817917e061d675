"""Pipeline stage: the predictor leaderboard on the run's corpus, freezing the best predictor per target."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from narch.pipeline.stages import RunContext, Section
from narch.predictors.leaderboard import SIZES, LeaderboardConfig, run_leaderboard, total_cells
from narch.predictors.leaderboard_report import write_report


def leaderboard_stage(ctx: RunContext, cfg: dict[str, Any]) -> tuple[dict[str, Any], Section]:
    """Rank the predictor families on the corpus and freeze the best of each target into OUT/leaderboard/frozen."""
    out = ctx.out / "leaderboard"
    lc = LeaderboardConfig(
        corpus=ctx.output("corpus", "corpus"),
        out=out,
        targets=tuple(cfg["targets"]),
        predictors=tuple(cfg["predictors"]) if cfg.get("predictors") else None,
        seeds=cfg["seeds"],
        trials=cfg["trials"],
        quick=cfg.get("quick", False),
        command="narch run (leaderboard stage)",
        sizes=tuple(cfg["sizes"]) if cfg.get("sizes") else SIZES,
    )
    columns = (
        TextColumn("[bold]leaderboard"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=ctx.console) as bar:
        tid = bar.add_task("", total=total_cells(lc))
        res = run_leaderboard(lc, progress=lambda desc, k: bar.update(tid, advance=k, description=desc))
    write_report(lc, res)
    text = (out / "leaderboard.md").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("!["))
    body = "\n".join(("###" + line[1:]) if line.startswith("# ") else line for line in body.splitlines())
    images = [str(p.relative_to(ctx.out)) for p in sorted(out.glob("*.png"))]
    return {"folder": str(out), "frozen": str(out / "frozen"), "best": res.frozen}, Section(
        "Predictor leaderboard", body, images=images
    )
