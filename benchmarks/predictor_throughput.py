"""Batched query throughput of every registered predictor, side by side, and of frozen artefacts.

    python benchmarks/predictor_throughput.py --corpus results/corpus/mnist1d_ref [--families gbdt,ridge]
    python benchmarks/predictor_throughput.py --families none --frozen-under results/leaderboards \
        --out results/benchmarks/predictor_throughput.json

Each family is fitted with its defaults on up to ``--fit-rows`` rows of ``--corpus``, then queried with batches of 1024:
- ``rows``: ``predict`` on corpus rows whose architectures are already featurised (the warm path);
- ``nets warm``: ``predict_networks`` on Network objects seen before (the controller revisiting networks);
- ``nets cold``: ``predict_networks`` on 1024 networks never seen (new architectures: featurisation included).
A frozen artefact (``--frozen``, repeatable, or every ``frozen`` folder under ``--frozen-under``) is queried the same
way for all its targets at once, as the controller queries it, on its own corpus's task; the verdict is on the cold
rate (issue 13: every frozen family answers >= 20,000 cold queries/s). Throughput is the best of ``--repeats`` timed
calls after a warm-up, in wall seconds and per CPU-second of this process (timings vary +-30 % on shared machines:
the load average before and after is printed and written).
"""

from __future__ import annotations

import argparse
import os
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
from narch.search_space import Network, SpecError, sample_network, trace_network

BATCH = 1024
TARGET_QPS = 20_000


def best_rate(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(queries per wall second, per CPU-second of this process), best of ``repeats`` after a warm-up."""
    fn()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return BATCH / best, BATCH / max(best_cpu, 1e-9)


def fresh_networks(n: int, seed: int, d: dict[str, Any]) -> list[Network]:
    """n distinct sampled networks that the task's input can feed (a 3-channel input refuses an add of the input)."""
    rng = random.Random(seed)
    shape, n_classes = tuple(d.get("input_shape", (1, 40))), int(d.get("n_classes", 10))
    out: dict[str, Network] = {}
    while len(out) < n:
        net = sample_network(rng)
        try:
            trace_network(net, shape, n_classes)
        except SpecError:
            continue
        out.setdefault(net.arch_id, net)
    return list(out.values())


def measure(pred: Any, rows: pl.DataFrame, nets: list[Network], d: dict[str, Any], *, repeats: int,
            cold_seed: int) -> dict[str, float]:
    batch = rows.select(pl.all().gather([i % rows.height for i in range(BATCH)]))
    out: dict[str, float] = {}
    out["rows"], out["rows_cpu"] = best_rate(lambda: pred.predict(batch), repeats)
    fast = getattr(pred, "predict_networks", None)
    if fast is not None:
        out["nets_warm"], out["nets_warm_cpu"] = best_rate(lambda: fast(nets, d), repeats)
        cold = fresh_networks(BATCH * (repeats + 1), cold_seed, d)
        chunks = iter([cold[i:i + BATCH] for i in range(0, len(cold), BATCH)])
        out["nets_cold"], out["nets_cold_cpu"] = best_rate(lambda: fast(next(chunks), d), repeats)
    return out


def _line(name: str, res: dict[str, float]) -> str:
    return f"{name:16s} " + "  ".join(f"{k} {v:>10,.0f} q/s" for k, v in res.items() if not k.endswith("_cpu"))


def _task_rows(corpus: Path, fit_rows: int) -> tuple[pl.DataFrame, dict[str, Any], list[Network]]:
    rows = read_corpus(corpus).filter(pl.col("status") == "ok").head(fit_rows)
    d = row_descriptors(rows.row(0, named=True))
    nets = [Network.from_json(j) for j in rows["arch_json"].head(BATCH).to_list()]
    return rows, d, [nets[i % len(nets)] for i in range(BATCH)]


def measure_frozen(folder: Path, fallback: Path | None, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    art = load_artefact(folder)
    named = art.manifest.get("corpus")
    corpus = Path(named) if named and Path(named).exists() else fallback
    if corpus is None:
        raise SystemExit(f"{folder}: its corpus {named!r} is not here; pass --corpus")
    rows, d, nets = _task_rows(corpus, args.fit_rows)

    class _All:  # every target of the artefact in one call, as the controller queries it
        def predict(self, r: pl.DataFrame) -> Any:
            return art.predict(r)

        def predict_networks(self, n: list[Network], dd: dict[str, Any]) -> Any:
            return art.predict_networks(n, dd)

    res: dict[str, Any] = measure(_All(), rows, nets, d, repeats=args.repeats, cold_seed=seed)
    families = {t: e["predictor"] for t, e in art.manifest["entries"].items()}
    verdict = "meets" if res.get("nets_cold", 0.0) >= TARGET_QPS else "MISSES"
    print(_line(str(folder), res) + f"  ({verdict} {TARGET_QPS:,} q/s cold; "
          f"{', '.join(f'{t}: {f}' for t, f in families.items())}; cold per CPU-second {res['nets_cold_cpu']:,.0f})",
          flush=True)
    return {**res, "families": families, "corpus": str(corpus), "meets_cold_target": verdict == "meets"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help="corpus the families are fitted on (and the fallback "
                    "for a frozen artefact whose corpus is not here)")
    ap.add_argument("--families", default=None, help="comma-separated (default: all registered; 'none': skip)")
    ap.add_argument("--target", default="val_acc")
    ap.add_argument("--fit-rows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frozen", type=Path, action="append", default=[],
                    help="also measure this artefact (all its targets at once); repeatable")
    ap.add_argument("--frozen-under", type=Path, default=None, help="also measure every 'frozen' folder under this")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()
    load_families()
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    names = [] if args.families == "none" else (args.families.split(",") if args.families else PREDICTORS.names())
    if names:
        if args.corpus is None:
            raise SystemExit("--corpus is needed to fit the families (or pass --families none)")
        rows, d, nets = _task_rows(args.corpus, args.fit_rows)
        for k, name in enumerate(names):
            cls = PREDICTORS.get(name)
            target = Target.of(args.target) if supports(cls, Target.of(args.target)) else Target.of("train_time_s")
            pred = cls(seed=0).fit(rows, target)
            # distinct never-seen networks per family: the feature cache is shared, so reusing them would be warm
            results[name] = measure(pred, rows, nets, d, repeats=args.repeats, cold_seed=1000 + k)
            print(_line(name, results[name]), flush=True)
    frozen = list(args.frozen)
    if args.frozen_under is not None:
        frozen += sorted(p for p in args.frozen_under.rglob("frozen") if p.is_dir() and (p / "manifest.json").exists())
    for k, folder in enumerate(frozen):
        results[f"frozen:{folder}"] = measure_frozen(folder, args.corpus, args, seed=999 - k)
    load_after = os.getloadavg()
    machine = {"cpus": os.cpu_count(), "load_average_1m_before": load_before[0], "load_average_1m_after": load_after[0]}
    print(f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} CPUs")
    if args.out:
        atomic_write_json(args.out, {"results": results, "machine": machine, "batch": BATCH,
                                     "target_cold_qps": TARGET_QPS}, sort_keys=False)


if __name__ == "__main__":
    main()
