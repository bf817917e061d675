"""Search once per hardware target (time from that target's roofline) and cross-evaluate the winners: each
winner's roofline training time and reward on every target, with its predicted accuracy and size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.controller import report
from narch.controller.objectives import Objectives
from narch.hardware.catalogue import get_device
from narch.search_space import Network


def compare_hardware(cfg: Any, setup: Any, *, log: Any = None) -> list[dict[str, Any]]:
    """Write ``out/hardware_compare/`` (table, Parquet, plot, per-target curves) and return the table rows."""
    from narch.controller.run import prepare, run_strategies, write_search

    log = log or (lambda s: None)
    out: Path = cfg.out / "hardware_compare"
    out.mkdir(parents=True, exist_ok=True)
    bundle = (setup.scorer, setup.rows, setup.ctx, setup.corpus, setup.predictor_info)
    seeds = cfg.compare_seeds or cfg.seeds
    setups, winners = {}, {}
    for target in cfg.hardware_compare:
        s = prepare(cfg, hardware=target, scorer_bundle=bundle)
        setups[target] = s
        log(f"hardware {target}: time threshold {s.reward.time.threshold:.3g} s ({s.objectives.time_label})")
        results = run_strategies(cfg, s, (cfg.compare_strategy,), seeds, log)
        write_search(out / target, s, results, cfg, title=f"{cfg.compare_strategy} on {target}")
        best = max((e for r in results for e in r.history), key=lambda e: e.reward)
        winners[target] = (Network.from_json(best.arch_json), best)
    rows = []
    for found_for, (net, ev) in winners.items():
        row: dict[str, Any] = {"found_for": found_for, "arch_id": net.arch_id, "layers": len(net.layers),
                               "pred_acc": ev.acc, "size_bytes": ev.size_bytes, "params": ev.params}
        for target, s in setups.items():
            obj: Objectives = s.objectives
            t = obj.roofline_time_s(net, device=get_device(target)) if obj.time_source == "roofline" else \
                float(obj([net]).time_s[0])
            row[f"time_s_{target}"] = t
            row[f"reward_{target}"] = float(s.reward.reward(np.array([ev.acc]), np.array([ev.size_bytes]),
                                                             np.array([t]))[0])
        row["arch_json"] = net.to_json()
        rows.append(row)
    df = pl.DataFrame(rows)
    df.write_parquet(out / "hardware_compare.parquet")
    show = df.drop("arch_json")
    (out / "hardware_compare.md").write_text(report.markdown_table(show) + "\n")
    _plot(df, list(setups), out / "hardware_compare.png")
    return df.to_dicts()


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
    axes[0].set_yscale("log")
    lo = min(row[f"reward_{t}"] for row in df.iter_rows(named=True) for t in targets)
    hi = max(row[f"reward_{t}"] for row in df.iter_rows(named=True) for t in targets)
    axes[1].set_ylim(lo - 0.1 * (hi - lo + 1e-3), hi + 0.1 * (hi - lo + 1e-3))
    axes[1].legend(fontsize=7)
    fig.suptitle("Each target's winner evaluated on every target", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
