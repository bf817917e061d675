"""Pipeline stage: the predictor leaderboard on the run's corpus, freezing the best predictor per target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.progress import track
from narch.pipeline.corpus_stage import CorpusResult
from narch.pipeline.sections import Block, Figure, Heading, Section, Table, Text
from narch.pipeline.stages import RunContext
from narch.predictors.freeze import RULE
from narch.predictors.leaderboard import SIZES, LeaderboardConfig, plan_leaderboard
from narch.predictors.leaderboard_report import build_leaderboard, finding, target_tables


@dataclass(frozen=True)
class LeaderboardStageResult:
    """The leaderboard: the aggregated board, what was frozen where, the protocol it ran under, and its plots."""

    folder: Path
    frozen_dir: Path
    frozen: dict[str, str]
    board: pl.DataFrame
    targets: list[str]
    seeds: int
    trials: int
    cells: int
    plots: list[Path]

    def section(self) -> Section:
        blocks: list[Block] = [Text(
            f"Targets {', '.join(self.targets)}; {self.seeds} seeds; Optuna TPE {self.trials} trials per cell on the "
            f"training split only; {self.cells} cells. Cells show mean ± standard error over seeds; the full "
            f"leaderboard is `{self.folder.name}/leaderboard.md`.")]
        for t in target_tables(self.board, self.targets, self.frozen):
            blocks += [Heading(f"{t.target} ({'log space' if t.log else 'linear space'})"),
                       Text(f"Largest training size: {t.largest} architectures; test set {t.n_test} configurations."),
                       Table(t.top), Text("Kendall τ by training-set size:"), Table(t.tau_by_size)]
            if t.frozen:
                blocks.append(Text(f"Frozen: **{t.frozen}** ({t.rule}; {RULE['throughput']})."))
        found = [finding(self.board, t, self.frozen.get(t), self.seeds) for t in self.targets]
        return Section("Predictor leaderboard", [*blocks, *(Figure(p) for p in self.plots)],
                       summary=[f for f in found if f])


def leaderboard_stage(ctx: RunContext, cfg: dict[str, Any]) -> LeaderboardStageResult:
    """Rank the predictor families on the corpus and freeze the best of each target into OUT/leaderboard/frozen."""
    corpus = ctx.result("corpus", CorpusResult)
    out = ctx.out / "leaderboard"
    lc = LeaderboardConfig(
        corpus=corpus.corpus,
        out=out,
        targets=tuple(cfg["targets"]),
        predictors=tuple(cfg["predictors"]) if cfg.get("predictors") else None,
        seeds=cfg["seeds"],
        trials=cfg["trials"],
        quick=cfg.get("quick", False),
        command="narch run (leaderboard stage)",
        sizes=tuple(cfg["sizes"]) if cfg.get("sizes") else SIZES,
    )
    plan = plan_leaderboard(lc, rows=corpus.rows)
    with track(ctx.console, "leaderboard", plan.total_cells, unit="cells") as bar:
        res, plots = build_leaderboard(lc, plan, progress=lambda desc, k: bar.advance(k, note=desc))
    return LeaderboardStageResult(out, out / "frozen", res.frozen, res.board, list(lc.targets), lc.seeds, lc.trials,
                                  res.cells.height, plots)
