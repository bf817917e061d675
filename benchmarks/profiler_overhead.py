"""Profiler overhead: one network trained through train_network and through a minimal hand-written loop.

Both do the same work (same model, data on the device, AdamW, one-cycle schedule, index-slice batches,
validation accuracy after every epoch, test accuracy at the end), interleaved in one run so machine noise hits both.
Prints the ratio of medians: the whole profiler (with its latency and memory measurements) and its training part.

    python benchmarks/profiler_overhead.py [--arch resnet_tiny] [--epochs 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from torch.nn import functional as F

from narch.dataset_builder.model import build_model
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import load_task
from narch.dataset_builder.train import DeviceData, train_network
from narch.search_space import resolve_network


def hand_loop(net, data: DeviceData, p: Protocol, seed: int) -> float:
    """The minimal loop a person would write; returns its wall time."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(net, data.input_shape, data.n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    n = len(data.y_train)
    total = p.epochs * math.ceil(n / p.batch_size)
    warm = max(1, int(p.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (total - warm)))),
    )
    for _ in range(p.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, p.batch_size):
            idx = perm[i : i + p.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.inference_mode():
            (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    with torch.inference_mode():
        (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet_tiny")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net = resolve_network(args.arch)
    p = Protocol(epochs=args.epochs)
    data = DeviceData.from_task(load_task("mnist1d"), torch.device("cpu"))
    hand_loop(net, data, p, 0)  # warm-up of both paths
    train_network(net, data, p, seed=0)
    hand, prof, prof_train = [], [], []
    for r in range(args.repeats):
        hand.append(hand_loop(net, data, p, r))
        t0 = time.perf_counter()
        rec = train_network(net, data, p, seed=r)
        prof.append(time.perf_counter() - t0)
        prof_train.append(rec.to_columns()["train_time_s"] + 0.0)
    h, pr = statistics.median(hand), statistics.median(prof)
    print(
        f"arch {args.arch} ({net.arch_id}), mnist1d, {args.epochs} epochs, {args.repeats} interleaved repeats, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"hand-written loop  median {h:.3f} s")
    print(f"profiler (all)     median {pr:.3f} s   ratio {pr / h:.3f}")
    print(f"  of which training epochs median {statistics.median(prof_train):.3f} s")


if __name__ == "__main__":
    main()
