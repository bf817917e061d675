"""Pipeline stages over the corpus: build it, summarise it with plots, compare measured and roofline times."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import polars as pl

from narch.core.files import atomic_savefig
from narch.core.plots import legible_log, log_scale
from narch.dataset_builder.build import BuildConfig, prepare_build
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.progress import run_with_progress
from narch.dataset_builder.protocol import Protocol
from narch.pipeline.labels import header
from narch.pipeline.sections import Figure, Section, Table, Text, pct
from narch.pipeline.stages import SAVED, RunContext, load_output

SPREAD = ("val_acc", "train_time_s", "params")


def corpus_plots(df: pl.DataFrame, out: Path) -> list[Path]:
    """Accuracy vs parameters (coloured by training time) and the learning curves of the corpus."""
    ok = df.filter(pl.col("status") == "ok")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sc = axes[0].scatter(ok["params"], ok["val_acc"], c=ok["train_time_s"], s=10, cmap="viridis", norm="log")
    axes[0].set(xlabel="parameters", ylabel="validation accuracy", title="accuracy vs size")
    log_scale(axes[0], "x")
    legible_log(fig.colorbar(sc, ax=axes[0], label="training time (s)").ax.yaxis)
    for curve in ok["val_acc_curve"].head(200).to_list():
        axes[1].plot(range(1, len(curve) + 1), curve, color="tab:blue", alpha=0.15, lw=0.8, marker=".", ms=2)
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="learning curves (first 200 networks)")
    fig.tight_layout()
    path = out / "corpus.png"
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return [path]


def spread(df: pl.DataFrame) -> pl.DataFrame:
    """Minimum, p10, median, p90 and maximum of accuracy, training time and parameters over the ok rows."""
    ok = df.filter(pl.col("status") == "ok")
    return pl.DataFrame([{"column": c, "min": _num(ok[c].min()), "p10": ok[c].quantile(0.1),
                          "median": _num(ok[c].median()), "p90": ok[c].quantile(0.9), "max": _num(ok[c].max())}
                         for c in SPREAD], schema={"column": pl.String, **dict.fromkeys(
                             ("min", "p10", "median", "p90", "max"), pl.Float64)})


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class CorpusResult:
    """The run's corpus: where it is, what it holds, what this run trained, and (in memory) its rows."""

    corpus: Path
    n_rows: int
    statuses: dict[str, int]
    networks: int
    tasks: list[str]
    devices: list[str]
    spread: pl.DataFrame
    trained: int
    rate_per_h: float | None
    plots: list[Path]
    rows: pl.DataFrame = field(repr=False, metadata={SAVED: False})  # read once; later stages use it

    def section(self) -> Section:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        text = (f"{self.n_rows} rows ({statuses}), {self.networks} distinct networks, task {', '.join(self.tasks)}, "
                f"device {', '.join(self.devices)}.")
        shown = self.spread.with_columns(pl.Series("column", [header(c) for c in self.spread["column"]]))
        blocks: list[Any] = [Text(text), Table(shown)]
        if self.rate_per_h:
            blocks.append(Text(f"This run trained {self.trained} networks at {self.rate_per_h:.0f} networks/hour."))
        return Section("Corpus", [*blocks, *(Figure(p) for p in self.plots)], summary=[self.finding()])

    def finding(self) -> str:
        """The corpus in one sentence: its size and the range of accuracy, training time and size it spans (from
        the saved figures, so a resumed run says the same)."""
        ok = self.statuses.get("ok", 0)
        head = (f"**Corpus**: {self.networks} networks ({self.n_rows} training runs, {ok} finished) on "
                f"{', '.join(self.tasks)}")
        if ok == 0:
            return head + "; no run finished, so there is nothing to rank."
        r = {row["column"]: row for row in self.spread.iter_rows(named=True)}
        lo, hi, what = ("min", "max", "") if "min" in self.spread.columns else ("p10", "p90", " (p10 to p90)")
        acc, t, p = r["val_acc"], r["train_time_s"], r["params"]
        return (f"{head}; validation accuracy{what} {pct(acc[lo])} to {pct(acc[hi])} (median {pct(acc['median'])}), "
                f"training time {t[lo]:.3g} to {t[hi]:.3g} s, {p[lo]:,.0f} to {p[hi]:,.0f} parameters.")


def summarise(corpus: Path, df: pl.DataFrame, *, trained: int, rate_per_h: float | None, plots: list[Path]
              ) -> CorpusResult:
    """The corpus's figures from its rows."""
    statuses = {str(s): int(n) for s, n in df.group_by("status").len().iter_rows()}
    return CorpusResult(corpus, df.height, statuses, df["arch_id"].n_unique(), sorted(df["task"].unique()),
                        sorted(df["device_name"].unique()), spread(df), trained, rate_per_h, plots, df)


def build_stage(ctx: RunContext, cfg: dict[str, Any]) -> CorpusResult:
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
    df = read_corpus(corpus)  # the builder writes parts as runs finish: this is the one read of the whole corpus
    rate = summary.done / summary.wall_s * 3600 if summary.wall_s else None
    return summarise(corpus, df, trained=summary.done, rate_per_h=rate, plots=corpus_plots(df, ctx.out))


def load_corpus(saved: dict[str, Any], folder: Path, ctx: RunContext) -> CorpusResult:
    """An earlier run's corpus result, with the corpus's rows read again."""
    return load_output(CorpusResult, saved, folder, ctx.out, rows=read_corpus(ctx.out / saved["corpus"]))


@dataclass(frozen=True)
class HardwareResult:
    """Measured against roofline training time on the corpus: error tables, fitted coefficients, plots."""

    folder: Path
    devices: list[str]
    fit_rows: int
    test_rows: int
    train_frac: float
    seed: int
    errors: pl.DataFrame  # rows: raw/calibrated x held-out/all; median abs % error, within ±10/20 %, Spearman
    coefficients: pl.DataFrame
    calibrated_median_ape_pct: float
    plots: list[Path]

    def section(self) -> Section:
        text = (f"Devices: {', '.join(self.devices)}. Calibration fitted on {self.fit_rows} rows (architectures "
                f"split {self.train_frac:.0%} / {1 - self.train_frac:.0%}, seed {self.seed}), judged on "
                f"{self.test_rows} held-out rows; the full comparison is in `{self.folder.name}/report.md`.")
        return Section("Measured vs roofline training time", [
            Text(text), Table(self.errors, floats=3),
            Text("Fitted coefficients (time = sum of coefficient x roofline term; efficiency = 1 / coefficient):"),
            Table(self.coefficients), *(Figure(p) for p in self.plots)], summary=[self.finding()])

    def finding(self) -> str:
        """How well the calibrated roofline predicts measured training time on held-out architectures."""
        raw = self.errors.filter(pl.col("rows") == "raw, held-out")["median_abs_pct_error"].to_list()
        raw_txt = f" (raw roofline: {raw[0]:.1f} %)" if raw and raw[0] is not None else ""
        return (f"**Roofline time model**: the calibrated roofline is off by a median "
                f"{self.calibrated_median_ape_pct:.1f} % of the measured training time on {self.test_rows} held-out "
                f"rows{raw_txt}.")


def _errors(metrics: dict[str, Any]) -> pl.DataFrame:
    labels = {"raw_test": "raw, held-out", "calibrated_test": "calibrated, held-out", "raw_all": "raw, all",
              "calibrated_train": "calibrated, fit rows", "repeat_floor": "repeat floor"}
    return pl.DataFrame([{"rows": label, "n": metrics[k]["n"], "median_abs_pct_error": metrics[k]["median_ape_pct"],
                          "within_10pct": metrics[k]["within_10pct"], "within_20pct": metrics[k]["within_20pct"],
                          "spearman": metrics[k]["spearman"]} for k, label in labels.items() if metrics.get(k)])


def hardware_stage(ctx: RunContext, cfg: dict[str, Any]) -> HardwareResult:
    """Measured vs roofline training time on the run's corpus (raw and calibrated)."""
    from narch.dataset_builder.tasks import with_task_shapes
    from narch.hardware.compare import compare_rows
    from narch.hardware.compare_report import write_report

    out = ctx.out / "hardware"
    corpus = ctx.result("corpus", CorpusResult)
    report = compare_rows(with_task_shapes(corpus.rows), name=str(corpus.corpus), train_frac=0.5,
                          seed=cfg.get("seed", 0))
    paths = write_report(report, out)
    m = report.metrics
    eff = report.efficiencies()
    coef = pl.DataFrame([{"term": k, "coefficient": v, "efficiency": eff.get(k)}
                         for k, v in report.coefficients.items() if v > 0],
                        schema={"term": pl.String, "coefficient": pl.Float64, "efficiency": pl.Float64})
    return HardwareResult(out, list(report.devices), m["calibrated_train"]["n"], m["calibrated_test"]["n"],
                          report.train_frac, report.seed, _errors(m), coef, m["calibrated_test"]["median_ape_pct"],
                          [p for p in paths if p.suffix == ".png"])
