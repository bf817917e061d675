"""Search once per hardware target (time from that target's roofline) and cross-evaluate the winners: each
winner's roofline training time and reward on every target, with its predicted accuracy and size."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.controller import report
from narch.controller.env import Evaluation
from narch.controller.report import SearchOutcome
from narch.controller.search import RunResult
from narch.controller.session import Log, SearchConfig, Setup, prepare, quiet, run_strategies
from narch.core.files import atomic_savefig, atomic_write_text, publish_dir
from narch.core.plots import log_scale
from narch.core.tables import markdown_table
from narch.hardware.catalogue import get_device
from narch.search_space import Network


@dataclass(frozen=True)
class HardwareComparison:
    """Each target's search and winner, and every winner evaluated on every target."""

    folder: Path
    table: pl.DataFrame  # one row per winner: time_s_<target> and reward_<target> for each target, arch_json
    searches: dict[str, SearchOutcome]
    plot: Path

    @property
    def shown(self) -> pl.DataFrame:
        """The table without the networks' JSON."""
        return self.table.drop("arch_json")


def _cross_evaluate(winners: dict[str, tuple[Network, Evaluation]], setups: dict[str, Setup]) -> pl.DataFrame:
    rows = []
    for found_for, (net, ev) in winners.items():
        row: dict[str, Any] = {"found_for": found_for, "arch_id": net.arch_id, "layers": len(net.layers),
                               "pred_acc": ev.acc, "size_bytes": ev.size_bytes, "params": ev.params}
        for target, s in setups.items():
            obj = s.objectives
            t = obj.roofline_time_s(net, device=get_device(target)) if obj.time_source == "roofline" else \
                float(obj([net]).time_s[0])
            row[f"time_s_{target}"] = t
            row[f"reward_{target}"] = float(s.reward.reward(np.array([ev.acc]), np.array([ev.size_bytes]),
                                                             np.array([t]))[0])
        row["arch_json"] = net.to_json()
        rows.append(row)
    return pl.DataFrame(rows)


def compare_hardware(cfg: SearchConfig, setup: Setup, *, log: Log = quiet) -> HardwareComparison:
    """Search for each of ``cfg.hardware_compare`` with the predictor of ``setup``; write
    ``out/hardware_compare/`` (table, Parquet, plot, per-target searches) and return it. The searches run first;
    the folder is then written beside its place and swapped in as a unit (``publish_dir``), so a crash leaves the
    previous comparison or this one, never a mix."""
    out = cfg.out / "hardware_compare"
    seeds = cfg.compare_seeds or cfg.seeds
    setups: dict[str, Setup] = {}
    runs: dict[str, list[RunResult]] = {}
    winners: dict[str, tuple[Network, Evaluation]] = {}
    for target in cfg.hardware_compare:
        s = prepare(cfg, hardware=target, loaded=setup.loaded)
        setups[target] = s
        log(f"hardware {target}: time threshold {s.reward.time.threshold:.3g} s ({s.objectives.time_label})")
        runs[target] = run_strategies(cfg, s, (cfg.compare_strategy,), seeds, log=log)
        best = max((e for r in runs[target] for e in r.history), key=lambda e: e.reward)
        winners[target] = (Network.from_json(best.arch_json), best)
    df = _cross_evaluate(winners, setups)
    searches: dict[str, SearchOutcome] = {}
    with publish_dir(out) as tmp:
        for target, s in setups.items():
            written = report.write_search(
                tmp / target, runs[target], budget=cfg.budget, size_ref=s.reward.size.threshold or 1.0,
                time_ref=s.reward.time.threshold or 1.0, best_k=max(5, cfg.verify_top),
                title=f"{cfg.compare_strategy} on {target}")
            searches[target] = replace(written, folder=out / target,
                                       plots=tuple(out / target / p.name for p in written.plots))
        report.write_parquet(tmp / "hardware_compare.parquet", df)
        result = HardwareComparison(out, df, searches, out / "hardware_compare.png")
        atomic_write_text(tmp / "hardware_compare.md", markdown_table(result.shown) + "\n")
        _plot(df, list(setups), tmp / result.plot.name)
    return result


def _plot(df: pl.DataFrame, targets: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, df.height)
    x = np.arange(len(targets))
    for k, row in enumerate(df.iter_rows(named=True)):
        times = [row[f"time_s_{t}"] for t in targets]
        rewards = [row[f"reward_{t}"] for t in targets]
        label = f"winner on {row['found_for']}"
        axes[0].bar(x + k * width, times, width, label=label)
        axes[1].bar(x + k * width, rewards, width, label=label)
    for ax, y in zip(axes, ("roofline training time (s)", "reward on the target"), strict=True):
        ax.set_xticks(x + 0.4 - width / 2, targets)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3, axis="y")
    log_scale(axes[0], "y")
    lo = min(row[f"reward_{t}"] for row in df.iter_rows(named=True) for t in targets)
    hi = max(row[f"reward_{t}"] for row in df.iter_rows(named=True) for t in targets)
    axes[1].set_ylim(lo - 0.1 * (hi - lo + 1e-3), hi + 0.1 * (hi - lo + 1e-3))
    axes[1].legend(fontsize=7)
    fig.suptitle("Each target's winner evaluated on every target", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
