"""Sanity check of the neural predictor families on a corpus: quality on a held-out 20 % of architectures and
batched query throughput, beside the flat-feature families for reference.

    python benchmarks/neural_predictors.py quality --corpus DIR --families lstm_embedding,gin,gbdt
    python benchmarks/neural_predictors.py qps --corpus DIR --families lstm_embedding,gin,ensemble
    python benchmarks/neural_predictors.py fit --corpus DIR --families mlp,lstm_embedding,gin,gbdt --sizes 128,1024 \
        --out results/benchmarks/fit_time.json

Fit time (issue 12 item 5): seconds of one untuned fit (the family's defaults, early stopping included) per family
and training-set size, the median of ``--seeds`` fits on different architecture samples, beside the flat-feature
families of the same run (their ratio is the figure that transfers between machines); run with nothing else on the
machine, one torch thread (``OMP_NUM_THREADS=1``); the load before and after is recorded.

Quality: Kendall τ and MAE (val_acc), MAE of log train_time_s and the ±10 % hit rate, per split seed, then mean.
Throughput: queries/s of a warm predictor at batch 1024, through ``predict`` (corpus rows) and ``predict_networks``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy.stats import kendalltau

from narch.core.checks import csv_items, name_value_pairs
from narch.core.files import atomic_write_json
from narch.core.provenance import provenance
from narch.dataset_builder.corpus import read_corpus
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families
from narch.predictors.features import row_descriptors
from narch.search_space import Network, sample_network


def split_by_arch(rows: pl.DataFrame, *, seed: int, test_frac: float = 0.2) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = sorted(set(rows["arch_id"].to_list()))
    random.Random(seed).shuffle(ids)
    test = ids[: round(test_frac * len(ids))]
    mask = pl.col("arch_id").is_in(test)
    return rows.filter(~mask), rows.filter(mask)


def quality(rows: pl.DataFrame, families: list[str], params: dict[str, Any], seeds: int) -> pl.DataFrame:
    out = []
    for seed in range(seeds):
        train, test = split_by_arch(rows, seed=seed)
        for fam in families:
            for target in ("val_acc", "train_time_s"):
                t0 = time.perf_counter()
                pred = PREDICTORS.get(fam)(seed=seed, **params.get(fam, {})).fit(train, Target.of(target))
                fit_s = time.perf_counter() - t0
                yhat, y = pred.predict(test), test[target].to_numpy()
                row = {"family": fam, "target": target, "seed": seed, "fit_s": fit_s,
                       "kendall_tau": float(kendalltau(yhat, y)[0])}
                if target == "train_time_s":
                    row |= {"mae_log": float(np.abs(np.log(yhat) - np.log(y)).mean()),
                            "within_10pct": float(np.mean(np.abs(yhat / y - 1) <= 0.1))}
                else:
                    row |= {"mae": float(np.abs(yhat - y).mean())}
                print(json.dumps(row), flush=True)
                out.append(row)
    return pl.DataFrame(out)


def throughput(rows: pl.DataFrame, families: list[str], params: dict[str, Any], seconds: float) -> pl.DataFrame:
    rng = random.Random(0)
    nets: list[Network] = [sample_network(rng) for _ in range(1024)]
    desc = row_descriptors(rows.row(0, named=True))
    batch = rows.select(pl.all().gather(np.random.default_rng(0).integers(0, rows.height, 1024).tolist()))
    out = []
    for fam in families:
        pred = PREDICTORS.get(fam)(seed=0, **params.get(fam, {})).fit(rows, Target.of("val_acc"))
        for path, fn in (("rows", lambda p=pred: p.predict(batch)),
                         ("networks", lambda p=pred: p.predict_networks(nets, desc))):
            fn()  # warm: encodings and features cached
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                fn()
                n += 1
            qps = n * 1024 / (time.perf_counter() - t0)
            row = {"family": fam, "path": path, "qps": qps, "threads": torch.get_num_threads()}
            print(json.dumps(row), flush=True)
            out.append(row)
    return pl.DataFrame(out)


def fit_times(rows: pl.DataFrame, families: list[str], params: dict[str, Any], sizes: list[int], seeds: int,
              target: str) -> pl.DataFrame:
    ids = sorted(set(rows["arch_id"].to_list()))
    out = []
    for size in sizes:
        if size > len(ids):
            print(f"# size {size}: the corpus has {len(ids)} architectures, skipped", flush=True)
            continue
        for fam in families:
            secs = []
            for seed in range(seeds):
                pick = set(random.Random(seed).sample(ids, size))
                train = rows.filter(pl.col("arch_id").is_in(pick))
                t0 = time.perf_counter()
                PREDICTORS.get(fam)(seed=seed, **params.get(fam, {})).fit(train, Target.of(target))
                secs.append(time.perf_counter() - t0)
            row = {"family": fam, "size": size, "target": target, "fit_s_median": float(np.median(secs)),
                   "fit_s": secs, "threads": torch.get_num_threads()}
            print(json.dumps(row), flush=True)
            out.append(row)
    return pl.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("quality", "qps", "fit"))
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--families", default="lstm_embedding,gin,gbdt")
    ap.add_argument("--params", default="{}", help='JSON: {"family": {param: value}}')
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--max-rows", type=int, default=0, help="use the first N ok rows (0: all)")
    ap.add_argument("--sizes", default="128,1024", help="fit: training-set sizes (architectures)")
    ap.add_argument("--target", default="val_acc", help="fit: the target column")
    ap.add_argument("--where", default="", help="fit: NAME=VALUE row filters, comma-separated (e.g. epochs=200)")
    ap.add_argument("--out", type=Path, help="fit: write the rows, the command, load and git revision as JSON")
    args = ap.parse_args()
    load_families()
    rows = read_corpus(args.corpus).filter(pl.col("status") == "ok").sort("arch_id", "seed")
    for name, value in name_value_pairs(args.where or None, "--where").items():
        rows = rows.filter(pl.col(name).cast(pl.String) == value)
    if args.max_rows:
        rows = rows.head(args.max_rows)
    print(f"# {rows.height} rows, {rows['arch_id'].n_unique()} architectures", flush=True)
    fams, params = args.families.split(","), json.loads(args.params)
    if args.what == "quality":
        df = quality(rows, fams, params, args.seeds)
        aggs = [pl.col(c).mean().alias(c) for c in ("kendall_tau", "mae", "mae_log", "within_10pct", "fit_s")
                if c in df.columns]
        with pl.Config(tbl_rows=50, tbl_cols=10):
            print(df.group_by("target", "family", maintain_order=True).agg(*aggs))
    elif args.what == "fit":
        load0 = os.getloadavg()[0]
        sizes = [int(s) for s in csv_items(args.sizes, "--sizes") or ()]
        df = fit_times(rows, fams, params, sizes, args.seeds, args.target)
        base = {r["size"]: r["fit_s_median"] for r in df.iter_rows(named=True) if r["family"] == fams[-1]}
        df = df.with_columns((pl.col("fit_s_median") / pl.col("size").replace_strict(base, default=None))
                             .alias(f"ratio_to_{fams[-1]}"))
        with pl.Config(tbl_rows=50, tbl_cols=10):
            print(df.drop("fit_s"))
        if args.out:
            atomic_write_json(args.out, provenance(
                "python " + " ".join(sys.argv), corpus=str(args.corpus), load_avg_1m_before=load0,
                load_avg_1m_after=os.getloadavg()[0], omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                rows=df.to_dicts()), sort_keys=False)
    else:
        with pl.Config(tbl_rows=50):
            print(throughput(rows, fams, params, args.seconds))


if __name__ == "__main__":
    main()
