"""Verification: train the searches' best networks for real with the corpus's protocol, append them to a corpus
(with ``parent_arch_id`` and ``move``), and report predicted against measured accuracy and training time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller import report
from narch.controller.session import Log, SearchConfig, Setup, quiet
from narch.core.files import atomic_savefig, atomic_write_json, atomic_write_text
from narch.core.tables import markdown_table
from narch.dataset_builder.build import BuildConfig, prepare_build, run_build
from narch.dataset_builder.corpus import read_corpus, read_manifest
from narch.dataset_builder.protocol import Protocol
from narch.search_space import Network, PlannedNet

THREADS = 1  # the reference corpus is built with one torch thread per run: measured times stay comparable


@dataclass(frozen=True)
class Verification:
    """Predicted against measured, one row per verified network, and where the measured runs went."""

    folder: Path
    corpus: Path
    table: pl.DataFrame
    plot: Path

    @property
    def shown(self) -> pl.DataFrame:
        """The table without the lineage columns."""
        return self.table.drop("parent_arch_id", "move")


def plan_from_best(best: list[dict[str, Any]]) -> list[PlannedNet]:
    """Planned networks with the edit that produced each (when a strategy made it by a move)."""
    seen, plan = set(), []
    for b in best:
        if b["arch_id"] in seen:
            continue
        seen.add(b["arch_id"])
        plan.append(PlannedNet(Network.from_json(b["arch_json"]), b.get("parent_arch_id"), b.get("move")))
    return plan


def train_plan(plan: list[PlannedNet], *, source_corpus: Path, out: Path, seed: int) -> None:
    """Train planned networks with the source corpus's task and protocol into ``out`` (created or resumed)."""
    m = read_manifest(source_corpus)
    archs = out.parent / f"{out.name}_plan.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(archs, "".join(p.net.to_json() + "\n" for p in plan))
    cfg = BuildConfig(task=m.task, out=out, protocol=Protocol.from_dict(m.protocol), archs_from=archs, seed=seed,
                      threads=THREADS)
    prepared = prepare_build(cfg)
    # prepare_build reads bare networks from the file; carry each one's parent and move into the rows.
    run_build(dataclasses.replace(prepared, plan=plan))


def pick_top(history: pl.DataFrame, strategies: tuple[str, ...], k: int) -> list[dict[str, Any]]:
    """The ``k`` best distinct networks of each strategy in a search's history (every query of every run)."""
    picked = []
    for strategy in strategies:
        g = (history.filter(pl.col("strategy") == strategy).sort("reward", descending=True)
             .unique(subset=["arch_id"], maintain_order=True).head(k))
        picked += [{**r, "strategy": strategy} for r in g.to_dicts()]
    return picked


def _measured(measured: pl.DataFrame, acc: str) -> dict[str, dict[str, Any]]:
    """Per network, its runs over the verification seeds: ok count, mean / min / max of the accuracy, means of the
    rest; the status is "ok" when any run is ok, else the first run's."""
    out: dict[str, dict[str, Any]] = {}
    for arch_id, g in measured.group_by("arch_id"):
        ok = g.filter(pl.col("status") == "ok")
        src = ok if ok.height else g
        row = {k: src[k].mean() if src[k].dtype.is_numeric() else src[k][0]  # type: ignore[union-attr]
               for k in ("parent_arch_id", "move", "status", "val_acc", "test_acc", "train_time_s",
                         "roofline_train_time_s", "model_size_bytes", acc) if k in src.columns}
        row |= {"seeds_ok": ok.height, f"{acc}_min": ok[acc].min() if ok.height else None,
                f"{acc}_max": ok[acc].max() if ok.height else None}
        out[str(arch_id[0])] = row
    return out


def _compare(picked: list[dict[str, Any]], setup: Setup, measured: pl.DataFrame) -> pl.DataFrame:
    acc = setup.reward.accuracy
    by_id = _measured(measured, acc)
    nets = [Network.from_json(p["arch_json"]) for p in picked]
    pred = setup.scorer.predict(nets)
    rows = []
    for k, (p, net) in enumerate(zip(picked, nets, strict=True)):
        m = by_id.get(net.arch_id, {})
        rows.append({
            "strategy": p["strategy"], "arch_id": net.arch_id, "parent_arch_id": m.get("parent_arch_id"),
            "move": m.get("move"), "status": m.get("status"), "seeds_ok": m.get("seeds_ok", 0),
            "reward_pred": p["reward"], "val_acc_pred": float(pred[acc][k]), "val_acc": m.get(acc),
            "val_acc_min": m.get(f"{acc}_min"), "val_acc_max": m.get(f"{acc}_max"), "test_acc": m.get("test_acc"),
            "train_time_s_pred": float(pred["train_time_s"][k]) if "train_time_s" in pred else None,
            "train_time_s": m.get("train_time_s"), "roofline_train_time_s": m.get("roofline_train_time_s"),
            "size_bytes_pred": p["size_bytes"], "model_size_bytes": m.get("model_size_bytes"),
        })
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        (pl.col("val_acc") - pl.col("val_acc_pred")).alias("acc_error"),
        (pl.col("train_time_s_pred") / pl.col("train_time_s")).alias("time_ratio"))


def reference_summary(table: pl.DataFrame, rows: pl.DataFrame, acc: str) -> pl.DataFrame:
    """Per strategy, the measured accuracy (mean over seeds) of its verified networks, best and mean, beside the
    corpus's 99th percentile and best of the same column (its ok rows, one value per run)."""
    y = rows[acc].cast(pl.Float64).drop_nulls().drop_nans() if acc in rows.columns else pl.Series([], dtype=pl.Float64)
    p99 = float(y.quantile(0.99)) if y.len() else None  # type: ignore[arg-type]
    best = float(y.max()) if y.len() else None  # type: ignore[arg-type]
    ok = table.filter(pl.col("status") == "ok")
    return (ok.group_by("strategy", maintain_order=True)
            .agg(pl.len().alias("networks"), pl.col("seeds_ok").sum().alias("runs"),
                 pl.col("val_acc").max().alias("best_measured"), pl.col("val_acc").mean().alias("mean_measured"),
                 pl.col("val_acc_max").max().alias("best_single_run"),
                 pl.col("val_acc_pred").mean().alias("mean_predicted"))
            .with_columns(pl.lit(p99).alias("corpus_p99"), pl.lit(best).alias("corpus_best")))


def verify_top(cfg: SearchConfig, setup: Setup, history: pl.DataFrame, *, log: Log = quiet) -> Verification | None:
    """Train the top ``cfg.verify_top`` of each of ``cfg.verify_strategies`` in ``history`` (the search's, in
    memory) and write ``out/verify/`` (table and plot); None when those strategies found nothing."""
    picked = pick_top(history, cfg.verify_strategies, cfg.verify_top)
    if not picked:
        return None
    out = cfg.out / "verify"
    out.mkdir(parents=True, exist_ok=True)
    corpus = cfg.verify_corpus or (out / "corpus")
    seed = int(setup.rows["seed"][0])
    seeds = list(range(seed, seed + cfg.verify_seeds))
    plan = plan_from_best(picked)
    for s in seeds:
        log(f"verify: training {len(plan)} networks for real into {corpus} (seed {s})")
        train_plan(plan, source_corpus=setup.corpus, out=corpus, seed=s)
    df = _compare(picked, setup, read_corpus(corpus).filter(pl.col("seed").is_in(seeds)))
    result = Verification(out, corpus, df, out / "verify.png")
    summary = reference_summary(df, setup.rows, setup.reward.accuracy)
    report.write_parquet(out / "verify.parquet", df)
    report.write_parquet(out / "verify_summary.parquet", summary)
    atomic_write_text(out / "verify.md", f"Training seeds {seeds}; measured values are means over the seeds' ok runs."
                      "\n\n" + markdown_table(summary) + "\n\n" + markdown_table(result.shown) + "\n")
    atomic_write_json(out / "verify.json", df.to_dicts(), sort_keys=False)
    _plot(df, result.plot)
    return result


def _plot(df: pl.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df.filter(pl.col("status") == "ok")
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for strategy in ok["strategy"].unique(maintain_order=True).to_list():
        g = ok.filter(pl.col("strategy") == strategy)
        axes[0].scatter(g["val_acc_pred"], g["val_acc"], label=strategy)
        if g["train_time_s_pred"].null_count() < g.height:
            axes[1].scatter(g["train_time_s_pred"], g["train_time_s"], label=strategy)
    for ax, name in zip(axes, ("validation accuracy", "training time (s)"), strict=True):
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"predicted {name}")
        ax.set_ylabel(f"measured {name}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
