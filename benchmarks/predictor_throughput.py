"""Batched query throughput of every registered predictor, side by side, and of a frozen artefact.

    python benchmarks/predictor_throughput.py --corpus results/corpus/mnist1d_ref [--families gbdt,ridge]
    python benchmarks/predictor_throughput.py --corpus results/corpus/mnist1d_ref \
        --frozen results/leaderboards/mnist1d_ref/frozen

Each family is fitted with its defaults on up to ``--fit-rows`` rows, then queried with batches of 1024:
- ``rows``: ``predict`` on corpus rows whose architectures are already featurised (the warm path);
- ``nets warm``: ``predict_networks`` on Network objects seen before (the controller revisiting networks);
- ``nets cold``: ``predict_networks`` on 1024 networks never seen (new architectures: featurisation included).
Throughput is the best of ``--repeats`` timed calls after a warm-up (timings vary ±30 % on shared machines).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.files import atomic_write_json
from narch.dataset_builder.corpus import read_corpus
from narch.predictors.artefacts import load_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families, supports
from narch.predictors.features import row_descriptors
from narch.search_space import Network, sample_network

BATCH = 1024
TARGET_QPS = 20_000


def best_rate(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return BATCH / best


def fresh_networks(n: int, seed: int) -> list[Network]:
    rng = random.Random(seed)
    return [sample_network(rng) for _ in range(n)]


def measure(pred: Any, rows: pl.DataFrame, nets: list[Network], d: dict[str, Any], *, repeats: int,
            cold_seed: int) -> dict[str, float]:
    batch = rows.select(pl.all().gather([i % rows.height for i in range(BATCH)]))
    out = {"rows": best_rate(lambda: pred.predict(batch), repeats)}
    fast = getattr(pred, "predict_networks", None)
    if fast is not None:
        out["nets_warm"] = best_rate(lambda: fast(nets, d), repeats)
        cold = fresh_networks(BATCH * (repeats + 1), cold_seed)
        chunks = iter([cold[i:i + BATCH] for i in range(0, len(cold), BATCH)])
        out["nets_cold"] = best_rate(lambda: fast(next(chunks), d), repeats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--families", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--target", default="val_acc")
    ap.add_argument("--fit-rows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frozen", type=Path, default=None, help="also measure this artefact (all its targets at once)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()
    load_families()
    rows = read_corpus(args.corpus).filter(pl.col("status") == "ok").head(args.fit_rows)
    d = row_descriptors(rows.row(0, named=True))
    nets = [Network.from_json(j) for j in rows["arch_json"].head(BATCH).to_list()]
    nets = [nets[i % len(nets)] for i in range(BATCH)]
    results: dict[str, dict[str, float]] = {}
    for k, name in enumerate(args.families.split(",") if args.families else PREDICTORS.names()):
        cls = PREDICTORS.get(name)
        target = Target.of(args.target) if supports(cls, Target.of(args.target)) else Target.of("train_time_s")
        pred = cls(seed=0).fit(rows, target)
        # distinct never-seen networks per family: the feature cache is shared, so reusing them would be warm
        results[name] = measure(pred, rows, nets, d, repeats=args.repeats, cold_seed=1000 + k)
        print(f"{name:16s} " + "  ".join(f"{k} {v:>10,.0f} q/s" for k, v in results[name].items()), flush=True)
    if args.frozen is not None:
        art = load_artefact(args.frozen)

        class _All:  # every target of the artefact in one call, as the controller queries it
            def predict(self, r: pl.DataFrame) -> Any:
                return art.predict(r)

            def predict_networks(self, n: list[Network], dd: dict[str, Any]) -> Any:
                return art.predict_networks(n, dd)

        res = measure(_All(), rows, nets, d, repeats=args.repeats, cold_seed=999)
        results["frozen"] = res
        verdict = "meets" if res.get("nets_warm", res["rows"]) >= TARGET_QPS else "MISSES"
        print(f"{'frozen':16s} " + "  ".join(f"{k} {v:>10,.0f} q/s" for k, v in res.items())
              + f"  ({verdict} {TARGET_QPS:,} q/s warm; targets {', '.join(art.targets)})")
    if args.out:
        atomic_write_json(args.out, results, sort_keys=False)


if __name__ == "__main__":
    main()
