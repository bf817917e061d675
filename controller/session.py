"""One search session, typed: its config, the loaded predictor and task, the prepared setup and the strategy runs.

The search (``controller.run``), the hardware comparison and verification all build on these; none of them imports
another, so ``run`` only orchestrates.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from narch.controller.env import Moves, RangeGuard
from narch.controller.objectives import TIME_TARGET, Objectives, Scorer, TaskContext, corpus_medians
from narch.controller.pretrain import recorded_edits
from narch.controller.reward import RewardConfig, load_reward
from narch.controller.search import RunResult, known_strategies, run_one
from narch.controller.strategies import STRATEGIES
from narch.core.checks import check_int, check_out_folder
from narch.core.store import Location, as_location
from narch.search_space import Network, deepest, resolve_network

MEASURED = "measured"

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that drops every line."""


@dataclass(frozen=True)
class SearchConfig:
    """Everything `narch search` needs."""

    predictor: Path
    out: Path
    strategies: tuple[str, ...] = field(default_factory=lambda: tuple(known_strategies()))  # every registered one
    budget: int = 2000
    seeds: int = 3
    reward: Path | None = None
    hardware: str | None = None  # "measured" (the time predictor) or a roofline device; None: the reward file's
    corpus: Location | None = None  # default: the corpus the predictor manifest names (a folder or a URL)
    start: str = "mnist1d_cnn"
    episode_len: int = 8
    batch: int = 16
    verify_top: int = 0
    verify_strategies: tuple[str, ...] = ("a2c", "evolution")
    verify_corpus: Path | None = None
    verify_seeds: int = 1  # training seeds per verified network (the corpus's seed, then the next ones)
    hardware_compare: tuple[str, ...] = ()
    compare_strategy: str = "evolution"
    compare_seeds: int | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    strategy_seeds: dict[str, int] = field(default_factory=dict)  # fewer seeds for a slow strategy (e.g. tpe=3)
    command: str = ""

    def __post_init__(self) -> None:
        """Counts checked now, before the predictor, the corpus or torch load."""
        for name in ("budget", "seeds", "episode_len", "batch"):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), low=1)
        check_int("--verify-top", self.verify_top, low=0)
        check_int("--verify-seeds", self.verify_seeds, low=1)
        if self.compare_seeds is not None:
            check_int("--compare-seeds", self.compare_seeds, low=1)
        for strategy, n in self.strategy_seeds.items():
            check_int(f"--strategy-seeds {strategy}", n, low=1)
        check_out_folder("--out", self.out)
        if self.verify_corpus is not None:
            check_out_folder("--verify-corpus", self.verify_corpus)


@dataclass(frozen=True)
class LoadedPredictor:
    """The frozen predictor, the corpus's ok rows it scores for, their task, and what the manifest says."""

    scorer: Scorer
    rows: pl.DataFrame
    ctx: TaskContext
    corpus: Path
    info: dict[str, Any]


@dataclass
class Setup:
    """The loaded predictor, task, reward and moves of a search (one hardware target)."""

    scorer: Scorer
    rows: pl.DataFrame
    ctx: TaskContext
    corpus: Path
    reward: RewardConfig
    objectives: Objectives
    moves: Moves
    start: Network
    predictor_info: dict[str, Any]
    demos: tuple[Any, ...] = ()  # recorded edits, for strategies that pretrain on them (controller.pretrain)

    @property
    def loaded(self) -> LoadedPredictor:
        """The predictor part, to prepare another target without loading it again."""
        return LoadedPredictor(self.scorer, self.rows, self.ctx, self.corpus, self.predictor_info)


def load_predictor(path: Path, corpus: Location | None, *, rows: pl.DataFrame | None = None) -> LoadedPredictor:
    """The frozen predictor and the corpus it was trained on (its manifest names it unless ``corpus`` is given);
    ``rows``: that corpus, already in memory (then it is not read again)."""
    from narch.controller.scorers import FrozenScorer
    from narch.dataset_builder.corpus import CorpusError, read_corpus
    from narch.predictors.artefacts import read_manifest

    manifest = read_manifest(Path(path))
    named = corpus if corpus is not None else manifest.get("corpus")
    cpath = as_location(named or "")
    if rows is None:
        if not named:
            raise CorpusError(f"predictor {path} names no corpus: pass --corpus with the corpus it was trained on")
        try:
            rows = read_corpus(cpath)
        except CorpusError as e:
            raise CorpusError(f"corpus {str(cpath)!r} of predictor {path} cannot be read ({e}): pass --corpus with "
                              f"the corpus it was trained on") from None
    rows = rows.filter(pl.col("status") == "ok")
    ctx = TaskContext.from_rows(rows)
    scorer = FrozenScorer(Path(path), ctx)
    info = {"folder": str(path), "targets": list(scorer.targets), "families": scorer.families(),
            "corpus_fingerprint": manifest.get("corpus_fingerprint"), "created_at": manifest.get("created_at")}
    return LoadedPredictor(scorer, rows, ctx, cpath, info)


def label_ranges(lp: LoadedPredictor) -> dict[str, tuple[float, float]]:
    """Per target, the range of the labels the frozen predictor was fitted on: the manifest's record (artefacts
    frozen since it is written), else the corpus rows' range of that column (what it was fitted on)."""
    entries = getattr(lp.scorer, "manifest", {}).get("entries", {})  # the artefact load_predictor read
    out = {}
    for t in lp.scorer.targets:
        rec = (entries.get(t) or {}).get("metrics", {}).get("label_range")
        if rec is None and t in lp.rows.columns:
            y = lp.rows[t].cast(pl.Float64).drop_nulls().drop_nans()
            rec = [float(y.min()), float(y.max())] if y.len() else None  # type: ignore[arg-type]
        if rec is not None:
            out[t] = (float(rec[0]), float(rec[1]))
    return out


def _resolve_time(cfg: SearchConfig, reward: RewardConfig, targets: tuple[str, ...], hardware: str | None
                  ) -> RewardConfig:
    """The reward with its time source fixed: the time predictor ("measured") or a roofline device."""
    hw = hardware if hardware is not None else cfg.hardware
    if hw is None:
        hw = MEASURED if reward.time_source == "predictor" else reward.device
    if hw != MEASURED:
        return replace(reward, time_source="roofline", device=hw)
    if TIME_TARGET not in targets:
        if MEASURED in (cfg.hardware, hardware):
            raise ValueError(f"--hardware measured needs a {TIME_TARGET!r} target; the predictor has "
                             f"{', '.join(targets)} (pass a roofline device such as local or t4)")
        # the reward file asked for the predictor's time, which this predictor lacks: the local roofline instead
        return replace(reward, time_source="roofline", device="local")
    return replace(reward, time_source="predictor", device=MEASURED)


def prepare(cfg: SearchConfig, *, hardware: str | None = None, loaded: LoadedPredictor | None = None,
            rows: pl.DataFrame | None = None) -> Setup:
    """Load and resolve everything before any search runs (errors surface before work starts); ``loaded``: a
    predictor already loaded (another target of the same search), ``rows``: the corpus already in memory."""
    for s in cfg.strategies:
        if s not in known_strategies():
            raise ValueError(f"strategy {s!r} is unknown (known: {', '.join(known_strategies())}, all)")
    reward = load_reward(cfg.reward)
    lp = loaded or load_predictor(cfg.predictor, cfg.corpus, rows=rows)
    reward = _resolve_time(cfg, reward, tuple(lp.scorer.targets), hardware)
    objectives = Objectives(lp.scorer, lp.ctx, accuracy=reward.accuracy, time_source=reward.time_source,
                            device=reward.device, label_ranges=label_ranges(lp))
    med_size, med_time = corpus_medians(lp.rows, objectives)
    reward = reward.resolved(median_size_bytes=med_size, median_time_s=med_time)
    guard = None
    if reward.mask_out_of_range:
        guard = RangeGuard(float(lp.rows["params"].min()), float(lp.rows["params"].max()),  # type: ignore[arg-type]
                           deepest(lp.rows["arch_json"].to_list()), lp.ctx.input_shape, lp.ctx.n_classes)
    moves = Moves(in_channels=lp.ctx.input_shape[0], guard=guard)
    wanted = (*cfg.strategies, cfg.compare_strategy)
    demos = recorded_edits(lp.rows, objectives, reward) if any(
        getattr(STRATEGIES.get(s), "wants_demos", False) for s in wanted if s in known_strategies()) else ()
    setup = Setup(lp.scorer, lp.rows, lp.ctx, lp.corpus, reward, objectives, moves, resolve_network(cfg.start),
                  lp.info, demos)
    settle_heap()
    return setup


def settle_heap() -> None:
    """Take what is loaded by now (torch, the predictor, the corpus: some 300,000 objects) out of the cyclic garbage
    collector's view, after collecting what is garbage. A search adds long-lived cache entries steadily, and every
    full collection would walk the setup's objects again: 16 % of an A2C run's time before (two collections of
    0.2 s in 4,096 steps), a quarter of that after. Objects stay freed by reference counting as usual."""
    gc.collect()
    gc.freeze()


def run_strategies(cfg: SearchConfig, setup: Setup, strategies: tuple[str, ...], seeds: int, *,
                   log: Log = quiet) -> list[RunResult]:
    """Every strategy over its seeds with the config's budget, one line logged per run."""
    results = []
    for strategy in strategies:
        for seed in range(cfg.strategy_seeds.get(strategy, seeds)):
            r = run_one(strategy, objectives=setup.objectives, reward=setup.reward, moves=setup.moves,
                        start=setup.start, budget=cfg.budget, seed=seed, episode_len=cfg.episode_len,
                        batch=cfg.batch, params=cfg.params.get(strategy), demos=setup.demos)
            results.append(r)
            best = max(e.reward for e in r.history)
            log(f"{strategy} seed {seed}: best {best:.4f} after {len(r.history)} queries, "
                f"{r.env_steps} env steps in {r.wall_s:.1f}s ({r.env_steps / max(r.wall_s, 1e-9):.0f}/s)"
                + (", stalled (only revisits)" if r.extra.get("stalled") else ""))
    return results
