"""`narch search`: parse, build a SearchConfig, call controller.run.execute, print the final table."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from narch.console import ERR, OUT, Plugins, fail, guarded, load_plugins
from narch.core.store import as_location


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


@guarded
def search_cmd(
    predictor: Annotated[Path, typer.Option(help="frozen predictor folder (DIR/frozen)")],
    out: Annotated[Path, typer.Option(help="report folder")],
    strategy: Annotated[str, typer.Option(help="a registered strategy, a comma list, or all (every registered one)")]
    = "all",
    budget: Annotated[int, typer.Option(help="predictor queries per run (distinct networks)")] = 2000,
    seeds: Annotated[int, typer.Option(help="runs per strategy")] = 3,
    reward: Annotated[Path | None, typer.Option(help="reward TOML file (default: linear, corpus medians)")] = None,
    hardware: Annotated[str | None, typer.Option(help="measured (time predictor) or a roofline device: local, t4, "
                                                      "a100, h200, ...")] = None,
    corpus: Annotated[str | None, typer.Option(help="corpus of the predictor, a folder or URL (default: its "
                                                     "manifest's)")] = None,
    start: Annotated[str, typer.Option(help="seed network name or JSON file")] = "mnist1d_cnn",
    episode_len: Annotated[int, typer.Option(help="moves per episode")] = 8,
    batch: Annotated[int, typer.Option(help="networks per ask (A2C/REINFORCE: parallel environments)")] = 16,
    verify_top: Annotated[int, typer.Option(help="train the top K of each verified strategy for real")] = 0,
    verify_strategies: Annotated[str, typer.Option(help="strategies whose top K are verified")] = "a2c,evolution",
    verify_corpus: Annotated[Path | None, typer.Option(help="corpus to append verified runs to "
                                                              "(default OUT/verify/corpus)")] = None,
    verify_seeds: Annotated[int, typer.Option(help="training seeds per verified network (measured mean and "
                                                   "spread)")] = 1,
    hardware_compare: Annotated[str, typer.Option(help="comma list of targets to search for and cross-evaluate")]
    = "",
    compare_strategy: Annotated[str, typer.Option(help="strategy of the hardware comparison")] = "evolution",
    compare_seeds: Annotated[int | None, typer.Option(help="seeds per hardware target (default --seeds)")] = None,
    strategy_seeds: Annotated[str, typer.Option(help="per-strategy seed counts overriding --seeds, e.g. tpe=3")]
    = "",
    closed_loop: Annotated[int, typer.Option(help="closed loop: ROUNDS of search, real training of the best new "
                                                  "networks and refit, per strategy (0: off)")] = 0,
    per_round: Annotated[int, typer.Option(help="closed loop: networks trained for real per round")] = 4,
    explore: Annotated[float, typer.Option(help="closed loop: weight of the predicted std in the pick "
                                                "(exploration bonus)")] = 1.0,
    loop_start: Annotated[str, typer.Option(help="closed loop: each round searches from the best network measured "
                                                 "so far (best) or from --start (seed)")] = "best",
    plugin: Plugins = None,
) -> None:
    """Search networks on a frozen predictor with every strategy under one query budget; write the report."""
    from narch.controller.run import execute
    from narch.controller.search import known_strategies
    from narch.controller.session import SearchConfig

    load_plugins(plugin)
    strategies = tuple(known_strategies()) if strategy == "all" else _split(strategy)
    try:
        per_seeds = {k.strip(): int(v) for k, v in (x.split("=", 1) for x in _split(strategy_seeds))}
    except ValueError:
        raise fail(f"--strategy-seeds must look like tpe=3,local=5, got {strategy_seeds!r}") from None
    corpus_at = None if corpus is None else as_location(corpus)
    cfg = SearchConfig(
        predictor=predictor, out=out, strategies=strategies, budget=budget, seeds=seeds, reward=reward,
        hardware=hardware, corpus=corpus_at, start=start, episode_len=episode_len, batch=batch, verify_top=verify_top,
        verify_strategies=_split(verify_strategies), verify_corpus=verify_corpus, verify_seeds=verify_seeds,
        hardware_compare=_split(hardware_compare), compare_strategy=compare_strategy, compare_seeds=compare_seeds,
        strategy_seeds=per_seeds,
        command="narch " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    log = lambda s: ERR.print(s, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    if closed_loop:
        from narch.controller.closed_loop import LoopConfig, run_loop

        loop = LoopConfig(rounds=closed_loop, per_round=per_round, explore=explore, start=loop_start)
        for name in strategies:
            res = run_loop(cfg, loop, name, log=log)
            last = res.rounds.row(-1, named=True)
            OUT.print(f"{name:>10}: best measured after {last['trainings']} real trainings {last['best_measured']}"
                      f" (best of as many random corpus networks: {last['random_best']}); {res.folder}",
                      highlight=False)
        return
    summary = execute(cfg, log=log)
    for row in summary.final.iter_rows(named=True):
        OUT.print(f"{row['strategy']:>10}: final best reward {row['final_best_mean']:.4f} "
                  f"± {row['ci95']:.4f} (95 % CI, {row['seeds']} seeds)", highlight=False)
    OUT.print(f"report: {out}")
