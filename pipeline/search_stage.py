"""Pipeline stage: search on the frozen predictor (A2C and baselines), compare hardware, verify the best for real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller.run import execute
from narch.controller.session import SearchConfig
from narch.pipeline.corpus_stage import CorpusResult
from narch.pipeline.leaderboard_stage import LeaderboardStageResult
from narch.pipeline.sections import Block, Figure, Heading, Section, Table, Text
from narch.pipeline.stages import RunContext


@dataclass(frozen=True)
class SearchStageResult:
    """The search's final table and hypervolumes, the hardware comparison and verification (when run), plots."""

    folder: Path
    final: pl.DataFrame
    hypervolume: pl.DataFrame
    hardware: pl.DataFrame | None  # each target's winner on every target's roofline
    verify: pl.DataFrame | None  # predicted against measured for the verified networks
    plots: list[Path]

    def section(self) -> Section:
        blocks: list[Block] = [
            Text("Best-so-far reward against predictor queries (mean and 95 % CI over seeds), final table and "
                 "hypervolume of the Pareto front (accuracy, size, time):"),
            Table(self.final), Table(self.hypervolume)]
        if self.hardware is not None:
            blocks += [Heading("Hardware comparison: each target's winner on every target's roofline"),
                       Table(self.hardware)]
        if self.verify is not None:
            blocks += [Heading("Verified by real training: predicted vs measured"), Table(self.verify)]
        return Section("Search on the frozen predictor", [*blocks, *(Figure(p) for p in self.plots)])


def search_stage(ctx: RunContext, cfg: dict[str, Any]) -> SearchStageResult:
    """`narch search` with the preset's budget, hardware targets and verification, on this run's frozen predictor."""
    corpus = ctx.result("corpus", CorpusResult)
    out = ctx.out / "search"
    sc = SearchConfig(
        predictor=ctx.result("leaderboard", LeaderboardStageResult).frozen_dir,
        out=out,
        budget=cfg["budget"],
        seeds=cfg["seeds"],
        corpus=corpus.corpus,
        hardware_compare=tuple(cfg.get("hardware_compare", ())),
        verify_top=cfg.get("verify_top", 0),
        verify_corpus=corpus.corpus,
        command="narch run (search stage)",
        **({"strategies": tuple(cfg["strategies"])} if cfg.get("strategies") else {}),
    )
    run = execute(sc, log=lambda s: ctx.console.print(s, highlight=False), rows=corpus.rows)
    plots = list(run.search.plots)
    if run.hardware is not None:
        plots += [run.hardware.plot, *(p for s in run.hardware.searches.values() for p in s.plots)]
    if run.verification is not None:
        plots.append(run.verification.plot)
    return SearchStageResult(out, run.search.final, run.search.hypervolume,
                             run.hardware.shown if run.hardware is not None else None,
                             run.verification.shown if run.verification is not None else None, plots)
