"""The few-shot transfer board: for every target device, k measured networks, several seeds, every mode.

HELP's protocol (Lee et al., NeurIPS 2021): the target devices are held out; the predictor learns from the other
devices; on each target it sees k networks drawn at random (one draw per seed) and is scored on all of the
target's other networks. ``sources="rest"`` learns from every device that is not a target (HELP);
``sources="others"`` from every device but the current target (leave-one-device-out, for small device sets such
as EC-NAS's four GPUs).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from narch.core.tables import markdown_table
from narch.predictors.fewshot import MODES, DeviceTimes, FewShotTransfer, Mode, TransferError
from narch.predictors.metrics import score

Sources = Literal["rest", "others"]


def load_devices(folders: Sequence[str | Path], *, target: str = "auto") -> dict[str, DeviceTimes]:
    """One DeviceTimes per corpus folder; a folder of corpus folders (such as ``help_latency``) adds each."""
    from narch.dataset_builder.corpus import part_files

    out: dict[str, DeviceTimes] = {}
    for f in map(Path, folders):
        if not f.is_dir():
            raise TransferError(f"{f}: not a folder")
        subs = [f] if part_files(f) else sorted(p for p in f.iterdir() if p.is_dir() and part_files(p))
        if not subs:
            raise TransferError(f"{f}: no corpus parts in it or in its sub-folders")
        for d in subs:
            if d.name in out:
                raise TransferError(f"{d}: a second device named {d.name!r}")
            out[d.name] = DeviceTimes.load(d, target=target)
    return out


def _sources(devices: Mapping[str, DeviceTimes], targets: Sequence[str], t: str, how: Sources) -> list[DeviceTimes]:
    names = [n for n in devices if n not in targets] if how == "rest" else [n for n in devices if n != t]
    if not names:
        raise TransferError(f"no source device for target {t!r} (sources={how!r})")
    return [devices[n] for n in names]


def run_board(devices: Mapping[str, DeviceTimes], targets: Sequence[str], *, ks: Sequence[int],
              seeds: int = 5, modes: Sequence[Mode] = MODES, sources: Sources = "rest",
              log: Callable[[str], None] | None = None) -> pl.DataFrame:
    """One row per (target, k, seed, mode) with its metrics on the target's networks outside the k."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    unknown = [t for t in targets if t not in devices]
    if unknown:
        raise TransferError(f"target device(s) {', '.join(unknown)} not among {', '.join(devices)}")
    for m in modes:
        if m not in MODES:
            raise TransferError(f"mode {m!r} is not one of {', '.join(MODES)}")
    out: list[dict[str, Any]] = []
    for t in targets:
        dev = devices[t]
        model = FewShotTransfer(_sources(devices, targets, t, sources))
        rows = dev.rows
        z = model.features(rows)
        y = rows[dev.target].to_numpy()
        for k in ks:
            if k >= rows.height - 2:
                raise TransferError(f"k={k}: target {t!r} has only {rows.height} networks")
            for seed in range(seeds):
                order = np.random.default_rng(seed).permutation(rows.height)
                shot, test = order[:k], order[k:]
                for mode in modes:
                    a = model.adapt(rows[shot], dev.target, mode=mode, z=z[shot])
                    pred = a.predict(rows[test], z=z[test])
                    s = score(pred, y[test], log=True)
                    out.append({"target": t, "unit": dev.target, "k": k, "seed": seed, "mode": mode,
                                "n_test": len(test), "n_sources": len(model.sources),
                                "source_weight": a.weight, **s})
            last = [r for r in out if r["target"] == t and r["k"] == k]
            log(f"{t} k={k}: " + ", ".join(
                f"{m} rho {statistics.mean(r['spearman'] for r in last if r['mode'] == m):.3f}" for m in modes))
    return pl.DataFrame(out)


def summary(board: pl.DataFrame) -> pl.DataFrame:
    """Mean and minimum over seeds per (target, mode, k)."""
    return (board.group_by("target", "mode", "k", maintain_order=True)
            .agg(pl.col("spearman").mean().alias("spearman"), pl.col("spearman").min().alias("spearman_min"),
                 pl.col("within_10pct").mean().alias("within_10pct"), pl.col("kendall_tau").mean(),
                 pl.col("mae_log").mean(), pl.col("source_weight").mean(), pl.col("n_test").first()))


def board_markdown(board: pl.DataFrame) -> str:
    """Per k and mode: Spearman and ±10 % hit rate per target, and the mean over targets."""
    s = summary(board)
    targets = list(dict.fromkeys(board["target"].to_list()))
    lines: list[str] = []
    for k in sorted(set(board["k"].to_list())):
        head = ["mode", *targets, "mean"]
        body = []
        for m in dict.fromkeys(board["mode"].to_list()):
            cell = s.filter((pl.col("k") == k) & (pl.col("mode") == m))
            by = {r["target"]: r for r in cell.iter_rows(named=True)}
            body.append([m, *(f"{by[t]['spearman']:.3f} / {by[t]['within_10pct']:.0%}" for t in targets),
                         f"{np.mean([by[t]['spearman'] for t in targets]):.3f} / "
                         f"{np.mean([by[t]['within_10pct'] for t in targets]):.0%}"])
        table = pl.DataFrame(body, schema=head, orient="row")
        lines += [f"### k = {k} (Spearman rho / within ±10 %, mean of seeds)", "", markdown_table(table), ""]
    return "\n".join(lines)


def plot_board(board: pl.DataFrame, path: Path) -> None:
    """Spearman against k, one panel per target, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from narch.core.files import atomic_savefig

    s = summary(board)
    targets = list(dict.fromkeys(board["target"].to_list()))
    fig, axes = plt.subplots(1, len(targets), figsize=(3 * len(targets), 3), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], targets, strict=True):
        for m in dict.fromkeys(board["mode"].to_list()):
            c = s.filter((pl.col("target") == t) & (pl.col("mode") == m)).sort("k")
            ax.plot(c["k"], c["spearman"], marker="o", label=m)
        ax.set_xscale("log")
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("k measured networks")
    axes[0][0].set_ylabel("Spearman rho")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
