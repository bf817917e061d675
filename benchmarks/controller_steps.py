"""Environment steps per second of the A2C controller against random moves, on a batched predictor.

Both run the same search loop (ask -> evaluate through the cached, budgeted evaluator -> tell) from the same seed
network for a fixed number of environment steps; the budget is set high enough never to bind. An environment step
is one proposed network (a move applied in one environment), whether the predictor is queried for it or it is a
cache hit; distinct queries are reported too. Interleaved repeats so machine noise hits both alike.

    python benchmarks/controller_steps.py --predictor results/leaderboards/mnist1d_ref/val_acc/frozen [--envs 64] \
        [--out results/benchmarks/controller_steps.json]

The load average (1 min) before and after is printed and written with ``--out`` (issue 13 asks for >= 2,000 A2C
env steps/s measured idle).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from narch.controller.env import Evaluator
from narch.controller.session import SearchConfig, prepare
from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.core.files import atomic_write_json


def run(setup, strategy: str, *, steps: int, envs: int, seed: int, episode_len: int) -> tuple[float, float, int, int]:
    """(wall s, process CPU s, env steps, distinct queries) of one run."""
    ev = Evaluator(setup.objectives, setup.reward, budget=10 * steps, lineage=setup.moves.lineage)
    ev.evaluate([setup.start])
    ctx = StrategyContext(setup.start, setup.moves, ev, seed, episode_len, {"envs": envs})
    strat = STRATEGIES.get(strategy)(ctx)
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while done < steps:
        nets = strat.ask(envs)
        r = ev.evaluate(nets)
        strat.tell(nets[: len(r)], r)
        done += len(r)
    return time.perf_counter() - t0, time.process_time() - c0, done, ev.queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictor", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--episode-len", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the rates and the load as JSON")
    a = ap.parse_args()
    load_before = os.getloadavg()[0]
    if a.threads:
        torch.set_num_threads(a.threads)
    setup = prepare(SearchConfig(predictor=a.predictor, out=Path("."), corpus=a.corpus))
    run(setup, "a2c", steps=a.envs * a.episode_len, envs=a.envs, seed=99, episode_len=a.episode_len)  # warm-up
    rates: dict[str, list[float]] = {"a2c": [], "random": []}
    cpu_rates: dict[str, list[float]] = {"a2c": [], "random": []}
    for rep in range(a.repeats):
        for strategy in ("a2c", "random"):
            wall, cpu, done, queries = run(setup, strategy, steps=a.steps, envs=a.envs, seed=rep,
                                           episode_len=a.episode_len)
            rates[strategy].append(done / wall)
            cpu_rates[strategy].append(done / cpu)
            print(f"{strategy:>7} repeat {rep}: {done} env steps ({queries} distinct queries) in {wall:.1f}s wall, "
                  f"{cpu:.1f}s CPU -> {done / wall:.0f} steps/s wall, {done / cpu:.0f} steps per CPU-second",
                  flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cmed = {k: statistics.median(v) for k, v in cpu_rates.items()}
    load_after = os.getloadavg()[0]
    print(f"\nA2C: {med['a2c']:.0f} env steps/s wall, {cmed['a2c']:.0f} per CPU-second (median of {a.repeats}); "
          f"random moves: {med['random']:.0f} wall, {cmed['random']:.0f} per CPU-second; ratio A2C/random "
          f"{cmed['a2c'] / cmed['random']:.2f} (CPU); envs {a.envs}, torch threads {torch.get_num_threads()}, "
          f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs")
    if a.out:
        atomic_write_json(a.out, {
            "predictor": str(a.predictor), "envs": a.envs, "steps": a.steps, "episode_len": a.episode_len,
            "repeats": a.repeats, "torch_threads": torch.get_num_threads(),
            "env_steps_per_s": {"wall": med, "cpu": cmed}, "runs": {"wall": rates, "cpu": cpu_rates},
            "machine": {"cpus": os.cpu_count(), "load_average_1m_before": load_before,
                        "load_average_1m_after": load_after},
        }, sort_keys=False)


if __name__ == "__main__":
    main()
