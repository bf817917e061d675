"""Writes a leaderboard's files: leaderboard.md, leaderboard.parquet, cells.parquet, plots, provenance.json.

``build_leaderboard`` runs a planned leaderboard and writes it (the board is on disk before the slower freezing
step); ``refreeze`` freezes a finished run again from its files (``load_finished``, the typed loader). The tables are
built once as frames (``target_tables``): leaderboard.md and the pipeline's report both render those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.files import atomic_savefig, atomic_write_bytes, atomic_write_json, atomic_write_text
from narch.core.plots import KENDALL_TAU, compact_number, errorbar_yerr, log_scale
from narch.core.provenance import PROVENANCE_KEYS, provenance
from narch.core.tables import markdown_table
from narch.predictors.base import Target
from narch.predictors.cell_store import CellStore
from narch.predictors.leaderboard import (
    RULE,
    LeaderboardConfig,
    LeaderboardPlan,
    LeaderboardResult,
    Progress,
    freeze_with,
    load_rows,
    run_leaderboard,
)

SHOWN = (("kendall_tau", "τ", 3), ("spearman", "ρ", 3), ("mae", "MAE", 4), ("mae_log", "MAE log", 3),
         ("within_10pct", "±10 %", 2), ("precision_at_10pct", "P@10 %", 2), ("fit_s", "Fit time (s)", 2),
         ("qps", "Queries/s", 0))


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "lightgbm", "scikit-learn", "optuna", "numpy", "polars"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _cell(row: dict[str, Any], m: str, digits: int) -> str:
    mean, se = row[f"{m}_mean"], row[f"{m}_se"]
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return "–"
    if m == "qps":
        return f"{mean:,.0f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


@dataclass(frozen=True)
class TargetTables:
    """One target's part of a leaderboard, as display frames (cells are formatted strings)."""

    target: str
    log: bool
    largest: int  # training architectures at the largest size
    n_test: int
    top: pl.DataFrame  # every family at the largest size, best first: mean ± standard error per metric
    tau_by_size: pl.DataFrame  # Kendall τ per family (rows) and training size (columns)
    frozen: str | None  # the family frozen for this target
    rule: str


def ranked(board: pl.DataFrame, tname: str) -> pl.DataFrame:
    """The board's rows of target ``tname`` at its largest training size, best first under the freezing rule's
    quality order (``RULE``: lowest MAE in log space, ties by the ±10 % hit rate, for a log target; highest Kendall
    τ, ties by MAE, otherwise; NaN last); empty when the board has no row of that target."""
    b = board.filter(pl.col("target") == tname)
    if b.height == 0:
        return b
    keys = ["mae_log_mean", "within_10pct_mean"] if Target.of(tname).log else ["kendall_tau_mean", "mae_mean"]
    desc = [False, True] if Target.of(tname).log else [True, False]
    return b.filter(pl.col("size") == b["size"].max()).sort([pl.col(k).fill_nan(None) for k in keys],
                                                             descending=desc, nulls_last=True)


def _pm(mean: Any, se: Any, digits: int) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if se is not None and np.isfinite(se) else f"{mean:.{digits}f}"


def finding(board: pl.DataFrame, tname: str, frozen: str | None, seeds: int) -> str | None:
    """The best family of target ``tname`` in one sentence, with its score (mean ± standard error over seeds) and
    what was frozen; None when the board has no row of the target."""
    top = ranked(board, tname)
    if top.height == 0:
        return None
    r = top.row(0, named=True)
    score = f"Kendall τ {_pm(r['kendall_tau_mean'], r['kendall_tau_se'], 3)}"
    if Target.of(tname).log:
        score = (f"MAE in log space {_pm(r['mae_log_mean'], r['mae_log_se'], 3)}, "
                 f"{r['within_10pct_mean'] * 100:.0f} % within ±10 %, {score}")
    kept = (" It is the one frozen." if frozen == r["predictor"] else
            f" Frozen: **{frozen}**." if frozen else "")
    return (f"**Best predictor of {tname}**: {r['predictor']}, {score} on {r['n_test']} test configurations, "
            f"trained on {r['size']} architectures ({seeds} seed{'s' if seeds != 1 else ''}; ± standard error).{kept}")


def target_tables(board: pl.DataFrame, targets: tuple[str, ...] | list[str], frozen: dict[str, str]
                  ) -> list[TargetTables]:
    """The display tables of every target on the board, in ``targets`` order."""
    out = []
    for tname in targets:
        b = board.filter(pl.col("target") == tname)
        if b.height == 0:
            continue
        target = Target.of(tname)
        largest = int(b["size"].max())  # type: ignore[arg-type]
        top = ranked(board, tname)
        shown = [s for s in SHOWN if target.log or s[0] not in ("mae_log", "within_10pct")]
        top_df = pl.DataFrame({"predictor": top["predictor"].to_list(),
                               **{label: [_cell(r, m, d) for r in top.iter_rows(named=True)]
                                  for m, label, d in shown}})
        sizes = sorted(set(b["size"].to_list()))
        fams = sorted(set(b["predictor"].to_list()))
        by = {(r["predictor"], r["size"]): r for r in b.iter_rows(named=True)}
        tau = pl.DataFrame({"predictor": fams, **{str(s): [_cell(by[(f, s)], "kendall_tau", 3) if (f, s) in by
                                                          else "–" for f in fams] for s in sizes}})
        out.append(TargetTables(tname, target.log, largest, int(top["n_test"][0]), top_df, tau, frozen.get(tname),
                                RULE["log" if target.log else "linear"]))
    return out


def markdown(cfg: LeaderboardConfig, res: LeaderboardResult, prov: dict[str, Any]) -> str:
    """leaderboard.md: the protocol, each target's tables and frozen family, and the provenance."""
    lines = [f"# Predictor leaderboard: `{cfg.corpus}`", "",
             f"Targets {', '.join(cfg.targets)}; {cfg.seeds} seeds; Optuna TPE {cfg.trials} trials per cell on the "
             f"training split only; splits by architecture (files in `splits/`, sha256 in `splits/*/SHA256SUMS`)."
             f"{' Quick sizes.' if cfg.quick else ''} Cells show mean ± standard error over seeds.", ""]
    for t in target_tables(res.board, cfg.targets, res.frozen):
        lines += [f"## {t.target} ({'log space' if t.log else 'linear space'})", "",
                  f"Largest training size: {t.largest} architectures; test set {t.n_test} configurations.", "",
                  markdown_table(t.top, floats=None), "", "Kendall τ by training-set size:", "",
                  markdown_table(t.tau_by_size, floats=None), ""]
        if t.frozen:
            lines += [f"Frozen: **{t.frozen}** ({t.rule}; {RULE['throughput']}).", ""]
    lines += ["## Provenance", "", *(f"- {k}: `{v}`" for k, v in prov.items() if not isinstance(v, dict)),
              f"- wall time: {res.wall_s:.0f} s", ""]
    return "\n".join(lines)


def plots(cfg: LeaderboardConfig, res: LeaderboardResult) -> list[Path]:
    """τ against training size per target, and predicted against measured for its best three families."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    paths = []
    for tname in cfg.targets:
        b = res.board.filter(pl.col("target") == tname)
        if b.height == 0:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for fam in sorted(set(b["predictor"].to_list())):
            f = b.filter(pl.col("predictor") == fam).sort("size")
            tau = f["kendall_tau_mean"].to_numpy()
            ax.errorbar(f["size"].to_list(), tau, yerr=errorbar_yerr(tau, f["kendall_tau_se"].to_numpy(), KENDALL_TAU),
                        marker="o", ms=3, capsize=2, label=fam)
        ax.set(xlabel="training architectures", ylabel="Kendall τ (mean ± s.e. over seeds)",
               title=f"{tname}: τ vs size")
        ax.set_ylim(max(-1.05, ax.get_ylim()[0]), min(1.05, ax.get_ylim()[1]))
        log_scale(ax, "x")
        sizes = sorted(set(b["size"].to_list()))
        if len(sizes) <= 8:  # few sizes: a tick at each (1-2-5 steps between 4 and 6 would read 4.5)
            ax.set_xticks(sizes, [compact_number(float(v)) for v in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = cfg.out / f"tau_vs_size_{tname}.png"
        atomic_savefig(fig, path, dpi=110)
        plt.close(fig)
        paths.append(path)
        target = Target.of(tname)
        fams = [f for f in ranked(res.board, tname)["predictor"].to_list() if (tname, f) in res.predictions][:3]
        if not fams:
            continue
        fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 4), squeeze=False)
        for ax, fam in zip(axes[0], fams, strict=False):
            y, yhat = res.predictions[(tname, fam)]
            ax.scatter(y, yhat, s=5, alpha=0.5)
            lo, hi = float(min(y.min(), yhat.min())), float(max(y.max(), yhat.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            if target.log:
                log_scale(ax, "x", "y")
            ax.set(xlabel=f"measured {tname}", ylabel="predicted", title=f"{fam} (seed 0, largest size)")
        fig.tight_layout()
        path = cfg.out / f"pred_vs_measured_{tname}.png"
        atomic_savefig(fig, path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def run_provenance(cfg: LeaderboardConfig, res: LeaderboardResult) -> dict[str, Any]:
    """The provenance record of a leaderboard run (core keys, then the run's config, splits and frozen families)."""
    return provenance(cfg.command or None, corpus=str(cfg.corpus), versions=_versions(),
                      config={"targets": list(cfg.targets), "seeds": cfg.seeds, "trials": cfg.trials,
                              "quick": cfg.quick, "predictors": list(cfg.predictors or [])},
                      split_sha256=res.split_digests, frozen=res.frozen, rule=RULE, wall_s=round(res.wall_s, 1))


def write_tables(cfg: LeaderboardConfig, res: LeaderboardResult) -> list[Path]:
    """leaderboard.parquet, cells.parquet and the plots; returns the plots' paths."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cfg.out / "leaderboard.parquet", res.board.write_parquet)
    atomic_write_bytes(cfg.out / "cells.parquet", res.cells.write_parquet)
    return plots(cfg, res)


def write_summary(cfg: LeaderboardConfig, res: LeaderboardResult, prov: dict[str, Any]) -> None:
    """provenance.json and leaderboard.md (again after freezing, which changes only these two)."""
    atomic_write_json(cfg.out / "provenance.json", prov, sort_keys=False)
    shown = _shown(prov)
    if prov.get("refrozen"):
        shown["frozen again by"] = prov["refrozen"][-1]["command"]
    atomic_write_text(cfg.out / "leaderboard.md", markdown(cfg, res, shown))


def write_report(cfg: LeaderboardConfig, res: LeaderboardResult) -> list[Path]:
    """Every output file of a leaderboard run; returns the plots' paths."""
    paths = write_tables(cfg, res)
    write_summary(cfg, res, run_provenance(cfg, res))
    return paths


def _shown(prov: dict[str, Any]) -> dict[str, Any]:
    """The provenance keys the markdown lists (the core's key set, in its order)."""
    return {k: prov[k] for k in PROVENANCE_KEYS if prov.get(k) is not None}


def load_finished(cfg: LeaderboardConfig) -> tuple[LeaderboardResult, dict[str, Any]]:
    """A finished run in ``cfg.out`` (an earlier process's): its result (no predictions) and provenance record."""
    if not (cfg.out / "leaderboard.parquet").is_file():
        raise FileNotFoundError(f"{cfg.out}/leaderboard.parquet: no finished run to refreeze")
    prov = json.loads((cfg.out / "provenance.json").read_text())
    cells, board = pl.read_parquet(cfg.out / "cells.parquet"), pl.read_parquet(cfg.out / "leaderboard.parquet")
    res = LeaderboardResult(cells, board, dict(prov.get("frozen") or {}), {}, prov.get("split_sha256", {}),
                            float(prov.get("wall_s", 0.0)))
    return res, prov


def refreeze_report(cfg: LeaderboardConfig, res: LeaderboardResult, prov: dict[str, Any]) -> None:
    """After freezing a finished run again: its provenance gains the new families and who froze them."""
    prov = prov | {"frozen": res.frozen, "rule": RULE,
                   "refrozen": [*prov.get("refrozen", []), provenance(cfg.command or None)]}
    write_summary(cfg, res, prov)


def build_leaderboard(cfg: LeaderboardConfig, plan: LeaderboardPlan, *, progress: Progress | None = None,
                      store: CellStore | None = None) -> tuple[LeaderboardResult, list[Path]]:
    """Evaluate ``plan``, write the board and plots, then (``cfg.freeze``) freeze and write the summary again;
    returns the result and the plots' paths."""
    res = run_leaderboard(replace(cfg, freeze=False), plan, progress=progress, store=store)
    paths = write_report(cfg, res)
    if cfg.freeze:
        res.frozen = freeze_with(cfg, plan.rows, board=res.board)
        write_summary(cfg, res, run_provenance(cfg, res))
    return res, paths


def refreeze(cfg: LeaderboardConfig) -> dict[str, str]:
    """Redo only the freezing step of the finished run in ``cfg.out`` (same corpus and filters)."""
    res, prov = load_finished(cfg)
    res.frozen = freeze_with(cfg, load_rows(cfg), board=res.board)
    refreeze_report(cfg, res, prov)
    return res.frozen
