"""Pipeline stage: search on the frozen predictor (A2C and baselines), compare hardware, verify the best for real."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller.run import execute
from narch.controller.session import SearchConfig
from narch.core.plots import FEW_SEEDS
from narch.pipeline.corpus_stage import CorpusResult
from narch.pipeline.labels import header
from narch.pipeline.leaderboard_stage import LeaderboardStageResult
from narch.pipeline.sections import Block, Figure, Heading, Section, Table, Text, pct
from narch.pipeline.stages import RunContext

# The verification columns the report shows (search/verify/verify.md has them all).
VERIFY_SHOWN = ("strategy", "arch_id", "status", "reward_pred", "val_acc_pred", "val_acc", "acc_error",
                "train_time_s_pred", "train_time_s", "time_ratio", "model_size_bytes")


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
            Text("Best-so-far reward against predictor queries (mean over seeds; the plot's band is a 95 % interval "
                 f"of the mean: the exact bootstrap below {FEW_SEEDS} seeds, a t-interval from {FEW_SEEDS}), final "
                 "table (its CI: the t-interval's half-width) and hypervolume of the Pareto front (accuracy, size, "
                 "time):"),
            Table(self.final), Table(self.hypervolume)]
        if self.hardware is not None:
            blocks += [Heading("Hardware comparison: each target's winner on every target's roofline"),
                       Table(self.hardware)]
        if self.verify is not None:
            shown = self.verify.select(c for c in VERIFY_SHOWN if c in self.verify.columns)
            left = [header(c).lower() for c in self.verify.columns if c not in VERIFY_SHOWN]
            blocks += [Heading("Verified by real training: predicted vs measured"), Table(shown)]
            if left:
                blocks.append(Text(f"More columns in `{self.folder.name}/verify/verify.md`: {', '.join(left)}."))
        return Section("Search on the frozen predictor", [*blocks, *(Figure(p) for p in self.plots)],
                       summary=self.findings())

    def findings(self) -> list[str]:
        """The best strategy's final reward and the verified network's measured against predicted accuracy."""
        out = []
        if self.final.height:
            r = self.final.row(0, named=True)  # sorted by final best reward, best first
            vs = next((c for c in self.final.columns if c.startswith("minus_")), None)
            diff = (f", {r[vs]:+.3f} against {vs.removeprefix('minus_')}"
                    if vs and r["strategy"] != vs.removeprefix("minus_") and _finite(r[vs]) else "")
            out.append(f"**Best search strategy**: {r['strategy']}, final best reward {r['final_best_mean']:.3f} "
                       f"(mean over {r['seeds']} seed{'s' if r['seeds'] != 1 else ''}{diff}).")
        if self.verify is not None and self.verify.height:
            out.append(verified_finding(self.verify))
        return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def verified_finding(verify: pl.DataFrame) -> str:
    """The verified network the search ranked best: measured against predicted accuracy (and training time), and
    the mean accuracy error over all the verified networks."""
    r = verify.sort("reward_pred", descending=True, nulls_last=True).row(0, named=True)
    head = f"**Best searched network** `{r['arch_id']}` ({r['strategy']})"
    if r["status"] != "ok" or not _finite(r["val_acc"]):
        return f"{head}: its verification run ended {r['status']}; predicted validation accuracy " \
               f"{pct(r['val_acc_pred'])}."
    text = f"{head}: measured validation accuracy {pct(r['val_acc'])}, predicted {pct(r['val_acc_pred'])}"
    if _finite(r.get("train_time_s")) and _finite(r.get("train_time_s_pred")):
        text += f"; training time measured {r['train_time_s']:.3g} s, predicted {r['train_time_s_pred']:.3g} s"
    err = verify.filter(pl.col("status") == "ok")["acc_error"].drop_nulls().abs()
    if err.len() > 1:
        text += (f"; over the {err.len()} verified networks the accuracy prediction is off by "
                 f"{err.mean() * 100:.1f} points on average")
    return text + "."


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
