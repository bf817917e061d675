"""What the zero-cost proxies cost: per network, the time of all 13 proxies as a fraction of that network's training
time under the default MNIST-1D protocol, both measured in this run, on one thread (goal: median <= 2 %).

    python benchmarks/zero_cost_cost.py [--networks 30] [--epochs 10] [--out FILE.json]

Both clocks are process CPU time (the proxies and the training run in this process, one thread), so the ratio is
what the build pays for the columns. Also prints each pass's share of the proxies' time. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
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
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import load_task
from narch.dataset_builder.train import DeviceData, train_network
from narch.dataset_builder.zero_cost import PROXIES, minibatch, zero_cost_scores
from narch.search_space import plan_networks


def _cpu(fn: Any) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1, help="plan seed of the networks")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = Protocol(epochs=args.epochs)
    data = DeviceData.from_task(load_task("mnist1d", data_seed=p.data_seed), torch.device("cpu"))
    batch = minibatch(data.x_train, data.y_train)
    shape = tuple(data.x_train.shape[1:])
    nets = [item.net for item in plan_networks(args.networks, seed=args.seed)]
    quiet, load = other_cores_now(), os.getloadavg()[0]
    print(f"{len(nets)} networks; other work {quiet:.2f} cores, load {load:.2f}", flush=True)
    zero_cost_scores(nets[0], batch, shape, data.n_classes)  # warm-up (first-call allocations)
    groups = list(dict.fromkeys(pr.group for pr in PROXIES.values()))
    rows = []
    for i, net in enumerate(nets):
        zc = _cpu(lambda net=net: zero_cost_scores(net, batch, shape, data.n_classes, seed=0))
        per = {g.__name__.lstrip("_"): _cpu(lambda g=g, net=net: zero_cost_scores(
            net, batch, shape, data.n_classes, names=[n for n, pr in PROXIES.items() if pr.group is g]))
            for g in groups}
        rec = train_network(net, data, p, seed=0)
        train = rec.measures.get("train_cpu_s") or float("nan")
        rows.append({"arch_id": net.arch_id, "zc_cpu_s": zc, "train_cpu_s": train, "ratio": zc / train,
                     "passes_cpu_s": per, "status": rec.status})
        print(f"{i:3d} {net.arch_id}: proxies {zc * 1000:6.1f} ms, training {train:6.2f} s, "
              f"ratio {zc / train:.2%}", flush=True)
    ratios = [r["ratio"] for r in rows if np.isfinite(r["ratio"])]
    share = {g: statistics.median(r["passes_cpu_s"][g] / r["zc_cpu_s"] for r in rows) for g in rows[0]["passes_cpu_s"]}
    summary = {"ratio_median": statistics.median(ratios), "ratio_p90": float(np.percentile(ratios, 90)),
               "zc_cpu_s_median": statistics.median(r["zc_cpu_s"] for r in rows),
               "train_cpu_s_median": statistics.median(r["train_cpu_s"] for r in rows), "pass_share_median": share}
    print(f"\nproxies / training: median {summary['ratio_median']:.2%}, p90 {summary['ratio_p90']:.2%} "
          f"(proxies {summary['zc_cpu_s_median'] * 1000:.1f} ms, training {summary['train_cpu_s_median']:.2f} s)")
    print("share of the proxies' time per pass: " + ", ".join(f"{g} {v:.0%}" for g, v in share.items()))
    if args.out:
        prov = provenance(threads=1, other_cpu_cores_before=quiet, load_avg_1m_before=load,
                          load_avg_1m_after=os.getloadavg()[0])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, {"args": vars(args) | {"out": str(args.out)}, "provenance": prov,
                                     "summary": summary, "runs": rows})
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
