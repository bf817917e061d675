"""Pipeline stages over the corpus: build it, summarise it with plots, compare measured and roofline times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import polars as pl

from narch.dataset_builder.build import BuildConfig, prepare_build
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.protocol import Protocol
from narch.pipeline.stages import RunContext, Section
from narch.progress import run_with_progress


def corpus_plots(df: pl.DataFrame, out: Path) -> list[Path]:
    """Accuracy vs parameters (coloured by training time) and the learning curves of the corpus."""
    ok = df.filter(pl.col("status") == "ok")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sc = axes[0].scatter(ok["params"], ok["val_acc"], c=ok["train_time_s"], s=10, cmap="viridis", norm="log")
    axes[0].set(xscale="log", xlabel="parameters", ylabel="validation accuracy", title="accuracy vs size")
    fig.colorbar(sc, ax=axes[0], label="train_time_s")
    for curve in ok["val_acc_curve"].head(200).to_list():
        axes[1].plot(range(1, len(curve) + 1), curve, color="tab:blue", alpha=0.15, lw=0.8, marker=".", ms=2)
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="learning curves (first 200 networks)")
    fig.tight_layout()
    path = out / "corpus.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def corpus_markdown(df: pl.DataFrame) -> str:
    """Rows by status and the spread of accuracy, time and size."""
    ok = df.filter(pl.col("status") == "ok")
    statuses = ", ".join(f"{s}: {n}" for s, n in df.group_by("status").len().sort("status").iter_rows())
    q = ok.select(
        *(
            pl.col(c).quantile(x).alias(f"{c}{x}")
            for c in ("val_acc", "train_time_s", "params")
            for x in (0.1, 0.5, 0.9)
        )
    ).row(0, named=True)
    return (
        f"{df.height} rows ({statuses}), {df['arch_id'].n_unique()} distinct networks, task "
        f"{', '.join(sorted(df['task'].unique()))}, device {', '.join(sorted(df['device_name'].unique()))}.\n\n"
        "| column | p10 | median | p90 |\n|---|---|---|---|\n"
        + "".join(
            f"| {c} | {q[f'{c}0.1']:.4g} | {q[f'{c}0.5']:.4g} | {q[f'{c}0.9']:.4g} |\n"
            for c in ("val_acc", "train_time_s", "params")
        )
    )


def build_stage(ctx: RunContext, cfg: dict[str, Any]) -> tuple[dict[str, Any], Section]:
    """Build (or resume) the corpus of the run."""
    corpus = ctx.out / "corpus"
    bc = BuildConfig(
        task=cfg["task"],
        out=corpus,
        archs=cfg["archs"],
        seed=cfg["seed"],
        protocol=Protocol(epochs=cfg["epochs"]),
        threads=cfg.get("threads"),
    )
    summary = run_with_progress(prepare_build(bc), console=ctx.console)
    if summary.interrupted:
        raise KeyboardInterrupt
    df = read_corpus(corpus)
    figs = corpus_plots(df, ctx.out)
    rate = summary.done / summary.wall_s * 3600 if summary.wall_s else None
    md = corpus_markdown(df) + (
        f"\nThis run trained {summary.done} networks at {rate:.0f} networks/hour.\n" if rate else ""
    )
    return {"corpus": str(corpus), "rows": df.height}, Section(
        "Corpus", md, images=[str(p.relative_to(ctx.out)) for p in figs]
    )


def hardware_stage(ctx: RunContext, cfg: dict[str, Any]) -> tuple[dict[str, Any], Section]:
    """Measured vs roofline training time on the run's corpus (raw and calibrated)."""
    from narch.hardware.compare import compare_corpus
    from narch.hardware.compare_report import markdown, write_report

    out = ctx.out / "hardware"
    report = compare_corpus(ctx.output("corpus", "corpus"), train_frac=0.5, seed=cfg.get("seed", 0))
    paths = write_report(report, out)
    images = [str(p.relative_to(ctx.out)) for p in paths if p.suffix == ".png"]
    m = report.metrics["calibrated_test"]
    text = "\n".join(("###" + line[1:]) if line.startswith("# ") else line for line in markdown(report).splitlines())
    return {"folder": str(out), "calibrated_median_ape_pct": m["median_ape_pct"]}, Section(
        "Measured vs roofline training time", text, images=images
    )
