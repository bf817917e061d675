"""Which time label repeats best, measured on a corpus's own repeat runs (networks trained with several seeds):
the seed-to-seed coefficient of variation of every candidate label, and the share of repeat pairs that agree
within ±10 % (the ceiling of a time predictor's ±10 % hit rate), of benchmarks/timing_noise.py, recomputed from
the step curves the rows store, plain and scaled to the corpus's median speed probe (``speed_probe_s``).

    python benchmarks/label_spread.py --corpus results/corpus/mnist1d_clean [--out FILE.json]

Nothing is trained (seconds of CPU): the timings are the corpus's. Seeds change the initial weights and the batch
order, not the work, so their spread is the timing noise of the machine the corpus was built on.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import polars as pl
from timing_noise import candidate_labels  # type: ignore[import-not-found]

from narch.core.files import atomic_write_json
from narch.core.provenance import provenance
from narch.dataset_builder.corpus import read_corpus, read_manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    m = read_manifest(args.corpus)
    epochs, warm = int(m.protocol["epochs"]), int(m.protocol.get("timing_warmup_steps", 0))
    ok = read_corpus(args.corpus).filter((pl.col("status") == "ok") & pl.col("step_cpu_s_curve").is_not_null())
    reps = ok.group_by("arch_id", "n_train").agg(pl.col("seed").n_unique().alias("k")).filter(pl.col("k") >= 2)
    rows = ok.join(reps, on=["arch_id", "n_train"])
    probe = float(rows["speed_probe_s"].median())  # type: ignore[arg-type]
    labels: dict[tuple[str, int], list[dict[str, float]]] = {}
    for r in rows.iter_rows(named=True):
        c = {k: v for k, v in candidate_labels(r, epochs, warm).items() if v is not None}
        c |= {f"{k}*probe": v * probe / r["speed_probe_s"] for k, v in list(c.items())}
        labels.setdefault((r["arch_id"], r["n_train"]), []).append(c)
    names = list(next(iter(labels.values()))[0])
    summary = {}
    for name in names:
        cvs = [statistics.stdev(v) / statistics.mean(v) for runs in labels.values()
               if len(v := [x[name] for x in runs]) > 1]
        series = [[x[name] for x in runs] for runs in labels.values()]
        pairs = [abs(a / b - 1.0) <= 0.1 for v in series for i, a in enumerate(v) for b in v[i + 1:]]
        summary[name] = {"cv_median": float(np.median(cvs)), "cv_p90": float(np.percentile(cvs, 90)),
                         "pairs_within_10pct": float(np.mean(pairs))}
    print(f"{len(labels)} networks with >= 2 seeds, {rows.height} runs; median speed probe {probe * 1000:.2f} ms")
    print(f"{'label':28s} {'CV median':>10s} {'CV p90':>8s} {'pairs ±10%':>11s}")
    for name, s in sorted(summary.items(), key=lambda kv: kv[1]["cv_median"]):
        print(f"{name:28s} {s['cv_median']:10.2%} {s['cv_p90']:8.2%} {s['pairs_within_10pct']:11.1%}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, {"corpus": str(args.corpus), "networks": len(labels), "runs": rows.height,
                                     "summary": summary, "provenance": provenance()})
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
