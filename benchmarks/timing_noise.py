"""Timing noise floor: the same networks trained several times on a quiet machine and with a CPU hog on every core.

For each candidate time label (wall time, process CPU time, low percentiles of per-step times) it prints the repeat
spread (coefficient of variation over the repeats of one network, median over networks) in both conditions and the
ratio of loaded to idle medians (median over networks): a label that holds on a busy machine has a small CV in both
and a ratio near 1. Passes alternate idle and loaded so slow drift of the machine hits both alike.

    python benchmarks/timing_noise.py [--networks 20] [--repeats 3] [--epochs 10] [--threads 1] [--out FILE.json]

The hogs are single-threaded processes (one per core) running small float32 matmuls in a loop, like another
training job would. Run it with nothing else heavy on the machine: the idle condition must be idle.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from narch.core.files import atomic_write_json
from narch.core.provenance import provenance
from narch.dataset_builder.contention import other_cores_now
from narch.dataset_builder.measure import robust_train_time
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import load_task
from narch.dataset_builder.train import DeviceData, RunRecord, train_network
from narch.search_space import plan_networks


def _hog(stop: Any) -> None:
    """Keep one core busy with small matmuls until ``stop`` is set."""
    os.environ["OMP_NUM_THREADS"] = "1"
    rng = np.random.default_rng(0)
    a = rng.standard_normal((192, 192), dtype=np.float32)
    while not stop.is_set():
        for _ in range(50):
            a = np.tanh(a @ a.T * 0.01)


class Hogs:
    """One hog process per core while the context is open."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.procs: list[Any] = []

    def __enter__(self) -> Hogs:
        self.stop.clear()
        self.procs = [self.ctx.Process(target=_hog, args=(self.stop,), daemon=True) for _ in range(self.n)]
        for p in self.procs:
            p.start()
        time.sleep(1.0)  # let them start spinning before anything is timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def candidates(rec: RunRecord, epochs: int) -> dict[str, float | None]:
    """Every candidate label of one run (seconds)."""
    return candidate_labels(rec.to_columns(), epochs, rec.warmup_steps)


def candidate_labels(row: dict[str, Any], epochs: int, warm: int) -> dict[str, float | None]:
    """Every candidate label of a run from its corpus row (its step curves; seconds)."""
    cpu_steps, wall_steps = list(row["step_cpu_s_curve"]), list(row["step_time_s_curve"])
    n = len(wall_steps)
    return {
        "wall": row["train_time_s"],
        "cpu": row.get("train_cpu_s"),
        "wall_step_p10_x_steps": float(np.percentile(wall_steps[warm:], 10) * n),
        "cpu_step_p10_x_steps": float(np.percentile(cpu_steps[warm:], 10) * n),
        "wall_positional_min": robust_train_time(wall_steps, epochs, q=0),
        "cpu_positional_min": robust_train_time(cpu_steps, epochs, q=0),
        "cpu_positional_p10": robust_train_time(cpu_steps, epochs, q=10),
        "cpu_positional_p25": robust_train_time(cpu_steps, epochs, q=25),
        "cpu_positional_p50": robust_train_time(cpu_steps, epochs, q=50),
    }


def _cv(xs: list[float]) -> float:
    return statistics.stdev(xs) / statistics.mean(xs) if len(xs) > 1 and statistics.mean(xs) > 0 else float("nan")


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per candidate: median CV idle and loaded, median loaded/idle ratio, and the worst network's CV."""
    probe_idle = statistics.median(r["probe_s"] for r in runs if r["condition"] == "idle")
    for r in runs:  # exploratory: the label scaled by how much slower the probe ran than on the idle machine
        r["labels"]["cpu_positional_p10_probe_scaled"] = r["labels"]["cpu_positional_p10"] * probe_idle / r["probe_s"]
    names = [k for k in runs[0]["labels"] if runs[0]["labels"][k] is not None]
    out: dict[str, dict[str, float]] = {}
    for name in names:
        by: dict[tuple[str, int], list[float]] = {}
        for r in runs:
            by.setdefault((r["condition"], r["net"]), []).append(r["labels"][name])
        nets = sorted({r["net"] for r in runs})
        cv = {c: [_cv(by[(c, i)]) for i in nets] for c in ("idle", "loaded")}
        ratio = [statistics.median(by[("loaded", i)]) / statistics.median(by[("idle", i)]) for i in nets]
        out[name] = {"cv_idle_median": float(np.nanmedian(cv["idle"])), "cv_loaded_median": float(np.nanmedian(
            cv["loaded"])), "cv_idle_p90": float(np.nanpercentile(cv["idle"], 90)),
            "cv_loaded_p90": float(np.nanpercentile(cv["loaded"], 90)),
            "loaded_over_idle_median": float(np.median(ratio))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="hog processes in the loaded condition")
    ap.add_argument("--seed", type=int, default=0, help="plan seed of the networks")
    ap.add_argument("--out", type=Path, default=None, help="write the runs and the summary as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = Protocol(epochs=args.epochs)
    data = DeviceData.from_task(load_task("mnist1d", data_seed=p.data_seed), torch.device("cpu"))
    nets = [item.net for item in plan_networks(args.networks, seed=args.seed)]
    quiet_before = other_cores_now()
    load_before = os.getloadavg()[0]
    print(f"{len(nets)} networks x {args.repeats} repeats x (idle, {args.hogs} hogs); other work before: "
          f"{quiet_before:.2f} cores, load {load_before:.2f}", flush=True)
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        for condition in ("idle", "loaded"):
            hogs = Hogs(args.hogs) if condition == "loaded" else None
            if hogs:
                hogs.__enter__()
            try:
                t0 = time.perf_counter()
                for i, net in enumerate(nets):
                    rec = train_network(net, data, p, seed=0)
                    if rec.status != "ok":
                        raise SystemExit(f"network {i} ({net.arch_id}) failed: {rec.error}")
                    runs.append({"net": i, "arch_id": net.arch_id, "repeat": rep, "condition": condition,
                                 "other_cpu_cores": rec.measures.get("other_cpu_cores"),
                                 "probe_s": rec.measures.get("speed_probe_s"),
                                 "labels": candidates(rec, args.epochs)})
                print(f"repeat {rep} {condition}: {time.perf_counter() - t0:.1f} s, other work "
                      f"{statistics.median(r['other_cpu_cores'] for r in runs[-len(nets):]):.2f} cores", flush=True)
            finally:
                if hogs:
                    hogs.__exit__()
    summary = summarise(runs)
    print(f"\n{'label':24s} {'CV idle':>8s} {'CV loaded':>10s} {'p90 idle':>9s} {'p90 load':>9s} {'loaded/idle':>12s}")
    for name, s in summary.items():
        print(f"{name:24s} {s['cv_idle_median']:8.2%} {s['cv_loaded_median']:10.2%} {s['cv_idle_p90']:9.2%} "
              f"{s['cv_loaded_p90']:9.2%} {s['loaded_over_idle_median']:12.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, {"summary": summary, "runs": runs, "args": vars(args) | {"out": str(args.out)},
                                     "other_cpu_cores_before": quiet_before, "load_avg_1m_before": load_before,
                                     "load_avg_1m_after": os.getloadavg()[0],
                                     "provenance": provenance(threads=args.threads, torch_threads=args.threads)})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
