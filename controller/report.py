"""Search reports: best-so-far curves with 95 % confidence intervals over seeds, the final table, Pareto fronts
with hypervolume, the best networks, and the plots. Frames in, frames and files out (``write_search`` returns
what it wrote as a typed ``SearchOutcome``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from narch.controller.pareto import hypervolume, pareto_mask, to_min
from narch.controller.search import RunResult, history_frame
from narch.core.files import atomic_savefig, atomic_write_bytes, atomic_write_json, atomic_write_text
from narch.core.plots import Bounds, interval_method, log_scale, mean_interval
from narch.core.tables import markdown_table

REF_FACTOR = 4.0  # hypervolume reference point: accuracy 0, size and time at 4x their reward thresholds


def ci95(x: np.ndarray) -> float:
    """Half-width of the 95 % t-interval of the mean (nan for fewer than two values)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def best_so_far(history: pl.DataFrame, budget: int) -> pl.DataFrame:
    """Per strategy and seed, the best reward after each query 1..budget (carried forward past a run's end)."""
    out = []
    for (strategy, seed), g in history.group_by(["strategy", "seed"], maintain_order=True):
        best = np.full(budget, np.nan)
        q = g["query"].to_numpy() - 1
        best[q[q < budget]] = g["reward"].to_numpy()[q < budget]
        best = np.fmax.accumulate(np.where(np.isnan(best), -np.inf, best))
        out.append(pl.DataFrame({"strategy": strategy, "seed": seed, "query": np.arange(1, budget + 1),
                                 "best_reward": best}))
    return pl.concat(out)


def curve_stats(curves: pl.DataFrame, *, bounds: Bounds | None = None) -> pl.DataFrame:
    """Mean and 95 % CI of best-so-far over seeds, per strategy and query: ``ci95`` the t-interval's half-width,
    ``lo``/``hi`` the band the plot draws (``plots.mean_interval``: the exact bootstrap below FEW_SEEDS seeds, so a
    band of two seeds spans their two values rather than 12.7 standard errors; inside ``bounds`` when given)."""
    rows = []
    for (strategy, query), g in curves.group_by(["strategy", "query"], maintain_order=True):
        v = g["best_reward"].to_numpy()
        lo, hi = mean_interval(v, bounds=bounds)
        rows.append({"strategy": strategy, "query": query, "mean": float(v.mean()), "ci95": ci95(v),
                     "lo": lo, "hi": hi, "n_seeds": len(v)})
    return pl.DataFrame(rows).sort(["strategy", "query"])


def final_table(curves: pl.DataFrame, runs: pl.DataFrame, *, baseline: str = "random") -> pl.DataFrame:
    """Final best reward per strategy: mean, 95 % CI, and the difference to the baseline with a Welch test."""
    last = curves.filter(pl.col("query") == curves["query"].max())
    base = last.filter(pl.col("strategy") == baseline)["best_reward"].to_numpy()
    rows = []
    for strategy in last["strategy"].unique(maintain_order=True).to_list():
        v = last.filter(pl.col("strategy") == strategy)["best_reward"].to_numpy()
        r = runs.filter(pl.col("strategy") == strategy)
        p = float(stats.ttest_ind(v, base, equal_var=False).pvalue) if len(base) > 1 and strategy != baseline \
            else math.nan
        rows.append({
            "strategy": strategy, "final_best_mean": float(v.mean()), "ci95": ci95(v),
            "min": float(v.min()), "max": float(v.max()), "seeds": len(v),
            f"minus_{baseline}": float(v.mean() - base.mean()) if len(base) else math.nan, "welch_p": p,
            "queries_mean": float(r["queries"].mean()), "env_steps_mean": float(r["env_steps"].mean()),  # type: ignore[arg-type]
            "wall_s_mean": float(r["wall_s"].mean()),  # type: ignore[arg-type]
            "env_steps_per_s": float(r["env_steps"].sum() / max(r["wall_s"].sum(), 1e-9)),
        })
    return pl.DataFrame(rows).sort("final_best_mean", descending=True)


def pareto_tables(history: pl.DataFrame, *, size_ref: float, time_ref: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(front of every evaluated network per strategy, pooled over seeds; hypervolume per strategy mean +- CI)."""
    ref = np.array([1.0, REF_FACTOR, REF_FACTOR])
    fronts, hv_rows = [], []
    for strategy in history["strategy"].unique(maintain_order=True).to_list():
        g = history.filter(pl.col("strategy") == strategy).unique(subset=["arch_id"], maintain_order=True)
        pts = to_min(g["acc"].to_numpy(), g["size_bytes"].to_numpy(), g["time_s"].to_numpy(),
                     size_ref=size_ref, time_ref=time_ref)
        fronts.append(g.filter(pl.Series(pareto_mask(pts))).select(
            "strategy", "arch_id", "arch_json", "acc", "size_bytes", "time_s", "reward"))
        hvs = []
        for _, s in history.filter(pl.col("strategy") == strategy).group_by("seed", maintain_order=True):
            p = to_min(s["acc"].to_numpy(), s["size_bytes"].to_numpy(), s["time_s"].to_numpy(),
                       size_ref=size_ref, time_ref=time_ref)
            hvs.append(hypervolume(p, ref))
        hv_rows.append({"strategy": strategy, "hypervolume_mean": float(np.mean(hvs)), "ci95": ci95(np.array(hvs)),
                        "hypervolume_pooled": hypervolume(pts, ref), "front_size": int(fronts[-1].height)})
    return pl.concat(fronts), pl.DataFrame(hv_rows).sort("hypervolume_mean", descending=True)


def best_networks(history: pl.DataFrame, k: int = 5) -> pl.DataFrame:
    """The k best distinct networks per strategy (over all seeds)."""
    out = []
    for strategy in history["strategy"].unique(maintain_order=True).to_list():
        g = (history.filter(pl.col("strategy") == strategy).sort("reward", descending=True)
             .unique(subset=["arch_id"], maintain_order=True).head(k))
        out.append(g.select("strategy", "seed", "query", "arch_id", "arch_json", "reward", "acc", "acc_std",
                            "size_bytes", "time_s", "params"))
    return pl.concat(out)


def plot_curves(stats_df: pl.DataFrame, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in stats_df["strategy"].unique(maintain_order=True).to_list():
        g = stats_df.filter(pl.col("strategy") == strategy)
        q, m = g["query"].to_numpy(), g["mean"].to_numpy()
        (line,) = ax.plot(q, m, label=strategy, lw=1.5)
        lo, hi = g["lo"].to_numpy(), g["hi"].to_numpy()
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(q, np.where(ok, lo, m), np.where(ok, hi, m), alpha=0.2, color=line.get_color(), lw=0)
    n = int(stats_df["n_seeds"].max()) if stats_df.height else 0
    how = {"none": "one seed: no band", "bootstrap": f"band: exact bootstrap 95 % interval over {n} seeds",
           "t": f"band: 95 % t-interval over {n} seeds"}[interval_method(n)]
    ax.set_xlabel("predictor queries")
    ax.set_ylabel("best reward so far (mean over seeds)")
    ax.text(0.99, 0.01, how, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    log_scale(ax, "x")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def plot_pareto(front: pl.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for strategy in front["strategy"].unique(maintain_order=True).to_list():
        g = front.filter(pl.col("strategy") == strategy)
        axes[0].scatter(g["size_bytes"], g["acc"], s=10, label=strategy)
        axes[1].scatter(g["time_s"], g["acc"], s=10, label=strategy)
    for ax, x in zip(axes, ("model size (bytes)", "training time (s)"), strict=True):
        log_scale(ax, "x")
        ax.set_xlabel(x)
        ax.set_ylabel("predicted accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Pareto fronts (accuracy up, size and time down), pooled over seeds", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def write_json(path: Path, obj: object) -> None:
    """Strict JSON (NaN as null), keys sorted, written atomically."""
    atomic_write_json(path, obj)


def write_parquet(path: Path, df: pl.DataFrame) -> None:
    """A frame as Parquet, written atomically."""
    atomic_write_bytes(path, df.write_parquet)


@dataclass(frozen=True)
class SearchOutcome:
    """One search as written to its folder, kept in memory: every query, the curves, the tables and the plots."""

    folder: Path
    history: pl.DataFrame  # every query of every run
    curves: pl.DataFrame  # best-so-far mean and CI per strategy and query
    runs: pl.DataFrame
    final: pl.DataFrame
    pareto_front: pl.DataFrame
    hypervolume: pl.DataFrame
    best: pl.DataFrame  # the best distinct networks per strategy
    plots: tuple[Path, ...]

    def summary(self) -> dict[str, Any]:
        """The final table and hypervolume as JSON-ready rows."""
        return {"final": self.final.to_dicts(), "hypervolume": self.hypervolume.to_dicts()}


def runs_frame(results: list[RunResult]) -> pl.DataFrame:
    """One row per run: queries, environment steps, wall time, policy updates, whether it stalled."""
    return pl.DataFrame([{"strategy": r.strategy, "seed": r.seed, "queries": len(r.history),
                          "env_steps": r.env_steps, "wall_s": r.wall_s,
                          "updates": r.extra.get("updates"), "stalled": bool(r.extra.get("stalled"))}
                         for r in results])


def write_search(out: Path, results: list[RunResult], *, budget: int, size_ref: float, time_ref: float,
                 best_k: int = 5, title: str) -> SearchOutcome:
    """Curves (Parquet + PNG), final table, Pareto fronts with hypervolume (size and time relative to
    ``size_ref``/``time_ref``), the ``best_k`` best networks per strategy; returns all of it."""
    out.mkdir(parents=True, exist_ok=True)
    hist = history_frame(results)
    write_parquet(out / "history.parquet", hist)
    curves = best_so_far(hist, budget)
    cstats = curve_stats(curves)
    write_parquet(out / "best_so_far.parquet", cstats)
    plot_curves(cstats, out / "best_so_far.png", title=title)
    runs = runs_frame(results)
    write_parquet(out / "runs.parquet", runs)
    baseline = "random" if "random" in runs["strategy"].to_list() else runs["strategy"][0]
    table = final_table(curves, runs, baseline=baseline)
    write_parquet(out / "final.parquet", table)
    front, hv = pareto_tables(hist, size_ref=size_ref, time_ref=time_ref)
    write_parquet(out / "pareto_front.parquet", front)
    write_parquet(out / "hypervolume.parquet", hv)
    plot_pareto(front, out / "pareto_front.png")
    best = best_networks(hist, k=best_k)
    write_json(out / "best_networks.json", best.to_dicts())
    atomic_write_text(out / "final.md", markdown_table(table) + "\n\n" + markdown_table(hv) + "\n")
    return SearchOutcome(out, hist, cstats, runs, table, front, hv, best,
                         (out / "best_so_far.png", out / "pareto_front.png"))
