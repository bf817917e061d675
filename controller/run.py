"""`narch search` as a library function: load the predictor and corpus, run every strategy over seeds with one
query budget each, write the report; optionally compare hardware targets and verify the best by real training."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller.env import Moves, RangeGuard
from narch.controller.objectives import TIME_TARGET, Objectives, Scorer, TaskContext, corpus_medians
from narch.controller.reward import RewardConfig, load_reward
from narch.controller.search import ALL, RunResult, history_frame, known_strategies, run_one
from narch.search_space import Network, resolve_network

MEASURED = "measured"


@dataclass(frozen=True)
class SearchConfig:
    """Everything `narch search` needs."""

    predictor: Path
    out: Path
    strategies: tuple[str, ...] = ALL
    budget: int = 2000
    seeds: int = 3
    reward: Path | None = None
    hardware: str | None = None  # "measured" (the time predictor) or a roofline device; None: the reward file's
    corpus: Path | None = None  # default: the corpus the predictor manifest names
    start: str = "mnist1d_cnn"
    episode_len: int = 8
    batch: int = 16
    verify_top: int = 0
    verify_strategies: tuple[str, ...] = ("a2c", "evolution")
    verify_corpus: Path | None = None
    hardware_compare: tuple[str, ...] = ()
    compare_strategy: str = "evolution"
    compare_seeds: int | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    strategy_seeds: dict[str, int] = field(default_factory=dict)  # fewer seeds for a slow strategy (e.g. tpe=3)
    command: str = ""


@dataclass
class Setup:
    """The loaded predictor, task, reward and moves of a search."""

    scorer: Scorer
    rows: pl.DataFrame
    ctx: TaskContext
    corpus: Path
    reward: RewardConfig
    objectives: Objectives
    moves: Moves
    start: Network
    predictor_info: dict[str, Any]


def load_scorer(path: Path, corpus: Path | None) -> tuple[Scorer, pl.DataFrame, TaskContext, Path, dict[str, Any]]:
    """The frozen predictor and the corpus it was trained on (its manifest names it unless ``corpus`` is given)."""
    from narch.controller.scorers import FrozenScorer
    from narch.dataset_builder.corpus import read_corpus
    from narch.predictors.artefacts import read_manifest

    manifest = read_manifest(Path(path))
    cpath = Path(corpus) if corpus is not None else Path(manifest.get("corpus", ""))
    if not str(cpath) or not (cpath / "manifest.json").is_file():
        raise FileNotFoundError(f"corpus {str(cpath)!r} of predictor {path} not found: pass --corpus")
    rows = read_corpus(cpath).filter(pl.col("status") == "ok")
    ctx = TaskContext.from_rows(rows)
    scorer = FrozenScorer(Path(path), ctx)
    info = {"folder": str(path), "targets": list(scorer.targets), "families": scorer.families(),
            "corpus_fingerprint": manifest.get("corpus_fingerprint"), "created_at": manifest.get("created_at")}
    return scorer, rows, ctx, cpath, info


def prepare(cfg: SearchConfig, *, hardware: str | None = None, scorer_bundle: tuple[Any, ...] | None = None) -> Setup:
    """Load and resolve everything before any search runs (errors surface before work starts)."""
    reward = load_reward(cfg.reward)
    scorer, rows, ctx, cpath, info = scorer_bundle or load_scorer(cfg.predictor, cfg.corpus)
    hw = hardware if hardware is not None else cfg.hardware
    if hw is None:
        hw = MEASURED if reward.time_source == "predictor" else reward.device
    if hw == MEASURED:
        if TIME_TARGET not in scorer.targets:
            if cfg.hardware == MEASURED or hardware == MEASURED:
                raise ValueError(f"--hardware measured needs a {TIME_TARGET!r} target; the predictor has "
                                 f"{', '.join(scorer.targets)} (pass a roofline device such as local or t4)")
            hw = "local"  # the reward file asked for the predictor's time, which this predictor lacks
        reward = replace(reward, time_source="predictor" if hw == MEASURED else "roofline", device=hw)
    else:
        reward = replace(reward, time_source="roofline", device=hw)
    objectives = Objectives(scorer, ctx, accuracy=reward.accuracy, time_source=reward.time_source,
                            device=reward.device)
    med_size, med_time = corpus_medians(rows, objectives)
    reward = reward.resolved(median_size_bytes=med_size, median_time_s=med_time)
    guard = None
    if reward.mask_out_of_range:
        depth = rows["arch_json"].str.count_matches('"op"')
        guard = RangeGuard(float(rows["params"].min()), float(rows["params"].max()),  # type: ignore[arg-type]
                           int(depth.max()), ctx.input_shape, ctx.n_classes)  # type: ignore[arg-type]
    moves = Moves(in_channels=ctx.input_shape[0], guard=guard)
    for s in cfg.strategies:
        if s not in known_strategies():
            raise ValueError(f"strategy {s!r} is unknown (known: {', '.join(known_strategies())}, all)")
    return Setup(scorer, rows, ctx, cpath, reward, objectives, moves, resolve_network(cfg.start), info)


def run_strategies(cfg: SearchConfig, setup: Setup, strategies: tuple[str, ...], seeds: int,
                   log: Any = None) -> list[RunResult]:
    results = []
    for strategy in strategies:
        for seed in range(cfg.strategy_seeds.get(strategy, seeds)):
            r = run_one(strategy, objectives=setup.objectives, reward=setup.reward, moves=setup.moves,
                        start=setup.start, budget=cfg.budget, seed=seed, episode_len=cfg.episode_len,
                        batch=cfg.batch, params=cfg.params.get(strategy))
            results.append(r)
            if log is not None:
                best = max(e.reward for e in r.history)
                log(f"{strategy} seed {seed}: best {best:.4f} after {len(r.history)} queries, "
                    f"{r.env_steps} env steps in {r.wall_s:.1f}s ({r.env_steps / max(r.wall_s, 1e-9):.0f}/s)"
                    + (", stalled (only revisits)" if r.extra.get("stalled") else ""))
    return results


def runs_frame(results: list[RunResult]) -> pl.DataFrame:
    return pl.DataFrame([{"strategy": r.strategy, "seed": r.seed, "queries": len(r.history),
                          "env_steps": r.env_steps, "wall_s": r.wall_s,
                          "updates": r.extra.get("updates"), "stalled": bool(r.extra.get("stalled"))}
                         for r in results])


def provenance(cfg: SearchConfig) -> dict[str, Any]:
    import torch

    from narch.dataset_builder.provenance import git_rev

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"command": cfg.command or " ".join(sys.argv), "host": socket.gethostname(), "cpu": cpu,
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "git_rev": git_rev(),
            "python": platform.python_version(), "torch": torch.__version__,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_search(out: Path, setup: Setup, results: list[RunResult], cfg: SearchConfig, *, title: str) -> dict[str, Any]:
    """Curves (Parquet + PNG), final table, Pareto fronts with hypervolume, best networks; returns the summary."""
    from narch.controller import report

    out.mkdir(parents=True, exist_ok=True)
    hist = history_frame(results)
    hist.write_parquet(out / "history.parquet")
    curves = report.best_so_far(hist, cfg.budget)
    cstats = report.curve_stats(curves)
    cstats.write_parquet(out / "best_so_far.parquet")
    report.plot_curves(cstats, out / "best_so_far.png", title=title)
    runs = runs_frame(results)
    runs.write_parquet(out / "runs.parquet")
    baseline = "random" if "random" in runs["strategy"].to_list() else runs["strategy"][0]
    table = report.final_table(curves, runs, baseline=baseline)
    table.write_parquet(out / "final.parquet")
    size_ref = setup.reward.size.threshold or 1.0
    time_ref = setup.reward.time.threshold or 1.0
    front, hv = report.pareto_tables(hist, size_ref=size_ref, time_ref=time_ref)
    front.write_parquet(out / "pareto_front.parquet")
    hv.write_parquet(out / "hypervolume.parquet")
    report.plot_pareto(front, out / "pareto_front.png")
    best = report.best_networks(hist, k=max(5, cfg.verify_top))
    report.write_json(out / "best_networks.json", best.to_dicts())
    (out / "final.md").write_text(report.markdown_table(table) + "\n\n" + report.markdown_table(hv) + "\n")
    return {"final": table.to_dicts(), "hypervolume": hv.to_dicts()}


def execute(cfg: SearchConfig, log: Any = None) -> dict[str, Any]:
    """The whole `narch search`: main search, optional hardware comparison and verification."""
    from narch.controller import report

    log = log or (lambda s: None)
    setup = prepare(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    prov = provenance(cfg)
    config = {"search": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
              "reward": setup.reward.to_dict(), "task": setup.ctx.to_dict(), "predictor": setup.predictor_info,
              "corpus": str(setup.corpus), "time": setup.objectives.time_label, "start": setup.start.to_json()}
    report.write_json(cfg.out / "config.json", config)
    report.write_json(cfg.out / "provenance.json", prov)
    log(f"reward: {setup.reward.kind}, size threshold {setup.reward.size.threshold:.0f} B, time threshold "
        f"{setup.reward.time.threshold:.3g} s ({setup.objectives.time_label})")
    results = run_strategies(cfg, setup, cfg.strategies, cfg.seeds, log)
    seeds = f"{cfg.seeds} seeds" + "".join(f", {k}: {v}" for k, v in cfg.strategy_seeds.items())
    summary = write_search(cfg.out, setup, results, cfg, title=f"{', '.join(cfg.strategies)}: budget {cfg.budget}, "
                           f"{seeds}, time: {setup.objectives.time_label}")
    if cfg.hardware_compare:
        from narch.controller.hardware_compare import compare_hardware

        summary["hardware_compare"] = compare_hardware(cfg, setup, log=log)
    if cfg.verify_top:
        from narch.controller.verify import verify_top

        summary["verify"] = verify_top(cfg, setup, log=log)
    report.write_json(cfg.out / "summary.json", {**summary, "provenance": prov})
    return summary
