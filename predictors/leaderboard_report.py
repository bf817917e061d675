"""Writes a leaderboard's files: leaderboard.md, leaderboard.parquet, cells.parquet, plots, provenance.json."""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

import numpy as np
import polars as pl

from narch.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from narch.core.provenance import PROVENANCE_KEYS, provenance
from narch.predictors.base import Target
from narch.predictors.leaderboard import RULE, LeaderboardConfig, LeaderboardResult

SHOWN = (("kendall_tau", "τ", 3), ("spearman", "ρ", 3), ("mae", "MAE", 4), ("mae_log", "MAE log", 3),
         ("within_10pct", "±10 %", 2), ("precision_at_10pct", "P@10 %", 2), ("fit_s", "fit s", 2), ("qps", "q/s", 0))


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


def markdown(cfg: LeaderboardConfig, res: LeaderboardResult, prov: dict[str, Any]) -> str:
    lines = [f"# Predictor leaderboard: `{cfg.corpus}`", "",
             f"Targets {', '.join(cfg.targets)}; {cfg.seeds} seeds; Optuna TPE {cfg.trials} trials per cell on the "
             f"training split only; splits by architecture (files in `splits/`, sha256 in `splits/*/SHA256SUMS`)."
             f"{' Quick sizes.' if cfg.quick else ''} Cells show mean ± standard error over seeds.", ""]
    for tname in cfg.targets:
        b = res.board.filter(pl.col("target") == tname)
        if b.height == 0:
            continue
        target = Target.of(tname)
        largest = int(b["size"].max())  # type: ignore[arg-type]
        lines += [f"## {tname} ({'log space' if target.log else 'linear space'})", ""]
        top = b.filter(pl.col("size") == largest)
        top = top.sort("mae_log_mean" if target.log else "kendall_tau_mean", descending=not target.log)
        n_test = int(top["n_test"][0])
        lines += [f"Largest training size: {largest} architectures; test set {n_test} configurations.", ""]
        shown = [s for s in SHOWN if target.log or s[0] not in ("mae_log", "within_10pct")]
        lines.append("| predictor | " + " | ".join(s[1] for s in shown) + " |")
        lines.append("|---" * (len(shown) + 1) + "|")
        for r in top.iter_rows(named=True):
            lines.append(f"| {r['predictor']} | " + " | ".join(_cell(r, m, d) for m, _, d in shown) + " |")
        lines += ["", "Kendall τ by training-set size:", ""]
        sizes = sorted(set(b["size"].to_list()))
        lines.append("| predictor | " + " | ".join(str(s) for s in sizes) + " |")
        lines.append("|---" * (len(sizes) + 1) + "|")
        for fam in sorted(set(b["predictor"].to_list())):
            cells = []
            for s in sizes:
                r = b.filter((pl.col("predictor") == fam) & (pl.col("size") == s))
                cells.append(_cell(r.to_dicts()[0], "kendall_tau", 3) if r.height else "–")
            lines.append(f"| {fam} | " + " | ".join(cells) + " |")
        lines.append("")
        if tname in res.frozen:
            lines += [f"Frozen: **{res.frozen[tname]}** ({RULE['log' if target.log else 'linear']}; "
                      f"{RULE['throughput']}).", ""]
    lines += ["## Provenance", "", *(f"- {k}: `{v}`" for k, v in prov.items() if not isinstance(v, dict)),
              f"- wall time: {res.wall_s:.0f} s", ""]
    return "\n".join(lines)


def plots(cfg: LeaderboardConfig, res: LeaderboardResult) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for tname in cfg.targets:
        b = res.board.filter(pl.col("target") == tname)
        if b.height == 0:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for fam in sorted(set(b["predictor"].to_list())):
            f = b.filter(pl.col("predictor") == fam).sort("size")
            ax.errorbar(f["size"].to_list(), f["kendall_tau_mean"].to_list(), yerr=f["kendall_tau_se"].to_list(),
                        marker="o", ms=3, capsize=2, label=fam)
        ax.set(xscale="log", xlabel="training architectures", ylabel="Kendall τ", title=f"{tname}: τ vs size")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        name = f"tau_vs_size_{tname}.png"
        atomic_write_bytes(cfg.out / name, lambda f, fig=fig: fig.savefig(f, format="png", dpi=110))
        plt.close(fig)
        names.append(name)
        target = Target.of(tname)
        largest = b.filter(pl.col("size") == b["size"].max())
        best = largest.sort("mae_log_mean" if target.log else "kendall_tau_mean", descending=not target.log)
        fams = [f for f in best["predictor"].to_list() if (tname, f) in res.predictions][:3]
        if not fams:
            continue
        fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 4), squeeze=False)
        for ax, fam in zip(axes[0], fams, strict=False):
            y, yhat = res.predictions[(tname, fam)]
            ax.scatter(y, yhat, s=5, alpha=0.5)
            lo, hi = float(min(y.min(), yhat.min())), float(max(y.max(), yhat.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            if target.log:
                ax.set(xscale="log", yscale="log")
            ax.set(xlabel=f"measured {tname}", ylabel="predicted", title=f"{fam} (seed 0, largest size)")
        fig.tight_layout()
        name = f"pred_vs_measured_{tname}.png"
        atomic_write_bytes(cfg.out / name, lambda f, fig=fig: fig.savefig(f, format="png", dpi=110))
        plt.close(fig)
        names.append(name)
    return names


def write_report(cfg: LeaderboardConfig, res: LeaderboardResult) -> dict[str, Any]:
    """Every output file of a leaderboard run; returns the provenance written."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    prov = provenance(cfg.command or None, corpus=str(cfg.corpus), versions=_versions(),
                      config={"targets": list(cfg.targets), "seeds": cfg.seeds, "trials": cfg.trials,
                              "quick": cfg.quick, "predictors": list(cfg.predictors or [])},
                      split_sha256=res.split_digests, frozen=res.frozen, rule=RULE, wall_s=round(res.wall_s, 1))
    atomic_write_bytes(cfg.out / "leaderboard.parquet", res.board.write_parquet)
    atomic_write_bytes(cfg.out / "cells.parquet", res.cells.write_parquet)
    atomic_write_json(cfg.out / "provenance.json", prov, sort_keys=False)
    plots(cfg, res)
    atomic_write_text(cfg.out / "leaderboard.md", markdown(cfg, res, _shown(prov)))
    return prov


def _shown(prov: dict[str, Any]) -> dict[str, Any]:
    """The provenance keys the markdown lists (the core's key set, in its order)."""
    return {k: prov[k] for k in PROVENANCE_KEYS if prov.get(k) is not None}


def refreeze_report(cfg: LeaderboardConfig, frozen: dict[str, str]) -> None:
    """After ``leaderboard.refreeze``: record the new frozen families in provenance.json and leaderboard.md."""
    prov_path = cfg.out / "provenance.json"
    prov = json.loads(prov_path.read_text())
    prov["frozen"] = frozen
    prov["rule"] = RULE
    prov.setdefault("refrozen", []).append(provenance(cfg.command or None))
    atomic_write_json(prov_path, prov, sort_keys=False)
    cells, board = pl.read_parquet(cfg.out / "cells.parquet"), pl.read_parquet(cfg.out / "leaderboard.parquet")
    res = LeaderboardResult(cells, board, frozen, {}, prov.get("split_sha256", {}), float(prov.get("wall_s", 0.0)))
    shown = _shown(prov) | {"frozen again by": prov["refrozen"][-1]["command"]}
    atomic_write_text(cfg.out / "leaderboard.md", markdown(cfg, res, shown))
