"""The closed loop, the paper's joint mode: search on the predictor, train the most promising new networks for real,
refit the predictor on its corpus plus them, and search again on the refitted one.

A round of strategy S (``narch search --closed-loop ROUNDS``, one loop per strategy under ``OUT/loop/S/``):

1. S runs with the search's budget on the current predictor (round 0: the frozen one named by ``--predictor``),
   from the seed network (``--loop-start seed``) or, once the loop has measured networks, from the best of them
   (``best``, the default: the paper's controller adapts the best network it has).
2. Of the networks it scored that no corpus row measured yet, the ``per_round`` best by reward + ``explore`` x the
   predicted accuracy's std (an exploration bonus where the family has an uncertainty; 0 otherwise) are trained
   for real with the corpus's own task and protocol (``controller.verify.train_plan``) into the loop's corpus
   ``OUT/loop/S/corpus``, which is resumable like any build.
3. The predictor is refitted on the corpus rows plus every row the loop measured, with each target's frozen family
   and hyperparameters (``predictors.freeze``, so its fingerprint changes), into ``OUT/loop/S/predictors/round_N``.

``loop.json`` records each finished round (written atomically), so a rerun continues after the last one; a round cut
short is run again and its trainings are found in the loop's corpus. The report gives, per round, predicted against
measured accuracy of the trained networks and the best measured accuracy against real trainings spent, beside the
expected best of as many random networks of the corpus.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.controller.reward import load_reward
from narch.controller.search import run_one
from narch.controller.session import Log, SearchConfig, load_predictor, prepare, quiet
from narch.controller.verify import plan_from_best, train_plan
from narch.core.checks import check_int
from narch.core.files import atomic_savefig, atomic_write_json, atomic_write_text
from narch.core.tables import markdown_table
from narch.dataset_builder.corpus import is_corpus, read_corpus
from narch.predictors.artefacts import read_manifest
from narch.search_space import Network

STATE = "loop.json"
START_RULES = ("best", "seed")


@dataclass(frozen=True)
class LoopConfig:
    """How many rounds, real trainings per round, and the weight of the uncertainty bonus."""

    rounds: int = 4
    per_round: int = 4
    explore: float = 1.0
    start: str = "best"  # each round's search starts from: "best" (measured so far) or "seed" (--start)

    def __post_init__(self) -> None:
        check_int("--closed-loop", self.rounds, low=1)
        if self.start not in START_RULES:
            raise ValueError(f"--loop-start must be one of {', '.join(START_RULES)}, got {self.start!r}")
        check_int("--per-round", self.per_round, low=1)
        if not (self.explore >= 0 and np.isfinite(self.explore)):
            raise ValueError(f"--explore must be a finite number >= 0, got {self.explore}")


@dataclass(frozen=True)
class LoopResult:
    """One strategy's loop: its folder, the per-round table and the trained networks."""

    strategy: str
    folder: Path
    rounds: pl.DataFrame
    trained: pl.DataFrame
    plot: Path


def choose(history: list[Any], measured: set[str], k: int, explore: float) -> list[dict[str, Any]]:
    """The ``k`` best distinct scored networks no corpus row measured, by reward + explore x predicted std."""
    best: dict[str, dict[str, Any]] = {}
    for e in history:
        if e.arch_id in measured:
            continue
        std = float(e.acc_std) if e.acc_std is not None and np.isfinite(e.acc_std) else 0.0  # NaN: no uncertainty
        score = float(e.reward) + explore * std
        if e.arch_id not in best or score > best[e.arch_id]["score"]:
            best[e.arch_id] = {"arch_id": e.arch_id, "arch_json": e.arch_json, "score": score,
                               "reward": float(e.reward), "acc_pred": float(e.acc), "acc_std": std,
                               "parent_arch_id": e.parent_arch_id, "move": e.move}
    return sorted(best.values(), key=lambda r: -r["score"])[:k]


def random_best(values: np.ndarray, n: int) -> float:
    """The expected best of ``n`` networks drawn without replacement from ``values`` (exact order statistics)."""
    v = np.sort(values)[::-1]
    m = len(v)
    n = min(n, m)
    # P(the i-th best is the best drawn) = C(m-1-i, n-1) / C(m, n), computed as a running product
    p, probs = n / m, []
    for i in range(m - n + 1):
        probs.append(p)
        p *= (m - n - i) / (m - 1 - i) if m - 1 - i > 0 else 0.0
    return float(np.dot(v[: len(probs)], probs))


def _families(predictor: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    entries = read_manifest(predictor).get("entries", {})
    fams = {t: e["predictor"] for t, e in entries.items()}
    params = {t: dict(e.get("metrics", {}).get("params") or {}) for t, e in entries.items()}
    return fams, params


def _state(folder: Path) -> list[dict[str, Any]]:
    p = folder / STATE
    return json.loads(p.read_text())["rounds"] if p.is_file() else []


def run_loop(cfg: SearchConfig, loop: LoopConfig, strategy: str, *, log: Log = quiet) -> LoopResult:
    """The closed loop of one strategy (resumes after the last finished round)."""
    from narch.predictors.freeze import freeze

    folder = cfg.out / "loop" / strategy
    corpus = folder / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    base = load_predictor(cfg.predictor, cfg.corpus)
    acc = load_reward(cfg.reward).accuracy  # the accuracy target the reward ranks by
    seed = int(base.rows["seed"].drop_nulls()[0]) if base.rows["seed"].drop_nulls().len() else 0
    rounds = _state(folder)
    predictor = Path(rounds[-1]["next_predictor"]) if rounds else Path(cfg.predictor)
    if rounds:
        log(f"closed loop {strategy}: {len(rounds)} of {loop.rounds} rounds done, continuing")
    for r in range(len(rounds), loop.rounds):
        loop_rows = read_corpus(corpus).filter(pl.col("status") == "ok") if is_corpus(corpus) else None
        rows = base.rows if loop_rows is None else pl.concat([base.rows, loop_rows], how="diagonal_relaxed")
        setup = prepare(dataclasses.replace(cfg, predictor=predictor, corpus=base.corpus), rows=rows)
        if loop.start == "best" and loop_rows is not None and loop_rows.height:
            best_json = (loop_rows.group_by("arch_json").agg(pl.col(acc).mean())
                         .sort([acc, "arch_json"], descending=[True, False])["arch_json"][0])
            setup = dataclasses.replace(setup, start=Network.from_json(best_json))
        run = run_one(strategy, objectives=setup.objectives, reward=setup.reward, moves=setup.moves,
                      start=setup.start, budget=cfg.budget, seed=r, episode_len=cfg.episode_len, batch=cfg.batch,
                      params=cfg.params.get(strategy), demos=setup.demos)
        picks = choose(run.history, set(rows["arch_id"]), loop.per_round, loop.explore)
        log(f"closed loop {strategy} round {r + 1}/{loop.rounds}: {len(run.history)} queries, training "
            f"{len(picks)} networks for real into {corpus}")
        if picks:
            train_plan(plan_from_best(picks), source_corpus=base.corpus, out=corpus, seed=seed)
        measured = read_corpus(corpus).filter(pl.col("seed") == seed) if is_corpus(corpus) else None
        by_id = {} if measured is None else {m["arch_id"]: m for m in measured.to_dicts()}
        trained = [{**p, "round": r + 1, "status": by_id.get(p["arch_id"], {}).get("status"),
                    acc: by_id.get(p["arch_id"], {}).get(acc)} for p in picks]
        ok = measured.filter(pl.col("status") == "ok") if measured is not None else pl.DataFrame()
        nxt = folder / "predictors" / f"round_{r + 1}"
        fams, params = _families(predictor)
        allrows = pl.concat([base.rows, ok], how="diagonal_relaxed") if ok.height else base.rows
        freeze(allrows, list(fams), out=nxt, corpus=str(base.corpus), family=fams, params=params,
               command=f"closed loop {strategy} round {r + 1}: {base.corpus} + {corpus}")
        best = float(ok[acc].max()) if ok.height else None  # type: ignore[arg-type]
        rounds.append({"round": r + 1, "start": setup.start.arch_id, "predictor": str(predictor),
                       "next_predictor": str(nxt), "fingerprint": read_manifest(nxt).get("corpus_fingerprint"),
                       "queries": len(run.history),
                       "trainings": int(ok.height), "best_measured": best, "trained": trained})
        atomic_write_json(folder / STATE, {"strategy": strategy, "config": dataclasses.asdict(loop),
                                           "accuracy": acc, "rounds": rounds}, sort_keys=False)
        predictor = nxt
        log(f"closed loop {strategy} round {r + 1}: best measured {acc} {best}, predictor refitted on "
            f"{allrows.height} rows")
    return _report(folder, strategy, rounds, acc, base.rows)


def _report(folder: Path, strategy: str, rounds: list[dict[str, Any]], acc: str, corpus_rows: pl.DataFrame
            ) -> LoopResult:
    trained = pl.DataFrame([t for r in rounds for t in r["trained"]], infer_schema_length=None)
    per_net = corpus_rows.group_by("arch_id").agg(pl.col(acc).mean())[acc].drop_nulls().to_numpy()
    table = pl.DataFrame([{
        "round": r["round"], "trainings": r["trainings"], "best_measured": r["best_measured"],
        "random_best": random_best(per_net, r["trainings"]) if r["trainings"] and len(per_net) else None,
        "mean_abs_error": float(np.nanmean([abs(t[acc] - t["acc_pred"]) for t in r["trained"]
                                            if t.get(acc) is not None])) if any(t.get(acc) is not None
                                                                                  for t in r["trained"]) else None,
        "fingerprint": r["fingerprint"],
    } for r in rounds])
    atomic_write_text(folder / "loop.md", f"# Closed loop: {strategy}\n\n" + markdown_table(table) + "\n")
    plot = folder / "loop.png"
    _plot(table, trained, acc, plot)
    return LoopResult(strategy, folder, table, trained, plot)


def _plot(table: pl.DataFrame, trained: pl.DataFrame, acc: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    axes[0].plot(table["trainings"], table["best_measured"], "o-", label="closed loop")
    axes[0].plot(table["trainings"], table["random_best"], "s--", label="best of as many random corpus networks")
    axes[0].set_xlabel("real trainings")
    axes[0].set_ylabel(f"best measured {acc}")
    axes[0].legend(fontsize=8)
    if trained.height and acc in trained.columns:
        ok = trained.filter(pl.col(acc).is_not_null())
        sc = axes[1].scatter(ok["acc_pred"], ok[acc], c=ok["round"], cmap="viridis")
        fig.colorbar(sc, ax=axes[1], label="round")
        lo = float(min(ok["acc_pred"].min(), ok[acc].min())) if ok.height else 0.0  # type: ignore[type-var]
        hi = float(max(ok["acc_pred"].max(), ok[acc].max())) if ok.height else 1.0  # type: ignore[type-var]
        axes[1].plot([lo, hi], [lo, hi], "k--", lw=0.8)
    axes[1].set_xlabel(f"predicted {acc}")
    axes[1].set_ylabel(f"measured {acc}")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


__all__ = ["LoopConfig", "LoopResult", "choose", "random_best", "run_loop"]
