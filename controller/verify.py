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


def _compare(picked: list[dict[str, Any]], setup: Setup, measured: pl.DataFrame) -> pl.DataFrame:
    by_id = {r["arch_id"]: r for r in measured.to_dicts()}
    nets = [Network.from_json(p["arch_json"]) for p in picked]
    pred = setup.scorer.predict(nets)
    rows = []
    for k, (p, net) in enumerate(zip(picked, nets, strict=True)):
        m = by_id.get(net.arch_id, {})
        rows.append({
            "strategy": p["strategy"], "arch_id": net.arch_id, "parent_arch_id": m.get("parent_arch_id"),
            "move": m.get("move"), "status": m.get("status"), "reward_pred": p["reward"],
            "val_acc_pred": float(pred[setup.reward.accuracy][k]), "val_acc": m.get("val_acc"),
            "test_acc": m.get("test_acc"),
            "train_time_s_pred": float(pred["train_time_s"][k]) if "train_time_s" in pred else None,
            "train_time_s": m.get("train_time_s"), "roofline_train_time_s": m.get("roofline_train_time_s"),
            "size_bytes_pred": p["size_bytes"], "model_size_bytes": m.get("model_size_bytes"),
        })
    return pl.DataFrame(rows).with_columns((pl.col("val_acc") - pl.col("val_acc_pred")).alias("acc_error"),
                                           (pl.col("train_time_s_pred") / pl.col("train_time_s")).alias("time_ratio"))


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
    log(f"verify: training {len(picked)} networks for real into {corpus}")
    train_plan(plan_from_best(picked), source_corpus=setup.corpus, out=corpus, seed=seed)
    df = _compare(picked, setup, read_corpus(corpus).filter(pl.col("seed") == seed))
    result = Verification(out, corpus, df, out / "verify.png")
    report.write_parquet(out / "verify.parquet", df)
    atomic_write_text(out / "verify.md", markdown_table(result.shown) + "\n")
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
