"""Micro-benchmark of this host: fp32 matmul FLOP/s, stream-style bandwidth, per-op launch overhead.

CPU at 1 thread and at all threads; CUDA too when present (timed with CUDA events after a warm-up). The result
is cached per machine (``hardware.catalogue.bench_cache_path``: host, CPU model and count) so ``local`` in the
catalogue can use it, and is written with its provenance to a folder the caller names. Each stage reports its
figure through ``log`` as it finishes. About 20-40 s on an idle 2-core CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from narch.core.files import atomic_write_json
from narch.core.provenance import provenance
from narch.hardware.catalogue import bench_cache_path
from narch.hardware.costs import step_costs
from narch.hardware.device import logical_cpus
from narch.hardware.roofline import op_launches
from narch.search_space import Network, conv

SCHEMA = 1


def cpu_clock() -> Callable[[], float]:
    """The CPU timer: this thread's CPU time when torch runs single-threaded (so time the core spent on other
    processes of a shared machine does not count: the figure a dedicated core achieves), else wall time."""
    return time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def _timed(fn: Callable[[], object], device: torch.device, *, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call of fn, one sample per repeat (CUDA events on a GPU, ``cpu_clock`` on a CPU)."""
    for _ in range(warmup):
        fn()
    out = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1e3)
        return out
    clock = cpu_clock()
    for _ in range(repeats):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def bench_matmul(device: torch.device, *, n: int, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Best-case FLOP/s of an n x n x n matmul (2n^3 FLOPs; the best of the repeats)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    c = torch.empty(n, n, device=device, dtype=dtype)
    times = _timed(lambda: torch.mm(a, b, out=c), device, repeats=repeats)
    return 2 * n**3 / min(times)


def bench_bandwidth(device: torch.device, *, elems: int, repeats: int = 6) -> dict[str, float]:
    """Stream-style copy (2 arrays) and triad (3 arrays) bytes/s on buffers of ``elems`` fp32 each (best, as STREAM)."""
    a = torch.empty(elems, device=device)
    b = torch.rand(elems, device=device)
    c = torch.rand(elems, device=device)
    copy = _timed(lambda: a.copy_(b), device, repeats=repeats)
    triad = _timed(lambda: torch.add(b, c, alpha=3.0, out=a), device, repeats=repeats)
    nbytes = elems * 4
    return {
        "copy_bytes_per_s": 2 * nbytes / min(copy),
        "triad_bytes_per_s": 3 * nbytes / min(triad),
        "buffer_bytes": float(nbytes),
    }


def bench_launch(device: torch.device, *, ops: int = 2000, repeats: int = 5) -> dict[str, float]:
    """Seconds per tiny eager op (an add of 1-element tensors), and per op forward+backward under autograd."""
    x = torch.ones(1, device=device)
    y = torch.ones(1, device=device)

    def eager() -> None:
        for _ in range(ops):
            torch.add(x, y)

    w = torch.ones(1, device=device, requires_grad=True)

    def autograd() -> None:
        z = w
        for _ in range(ops // 4):
            z = z * 1.0001
        z.sum().backward()

    return {
        "launch_overhead_s": min(_timed(eager, device, repeats=repeats)) / ops,
        "autograd_op_overhead_s": min(_timed(autograd, device, repeats=repeats)) / (ops // 4),
    }


class _GlobalMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(2)


def _tiny_step_s(n_convs: int, device: torch.device, *, steps: int, repeats: int) -> tuple[float, int]:
    """Seconds per AdamW training step of a tiny conv net (every op is overhead) and its modelled launches."""
    layers: list[torch.nn.Module] = []
    for i in range(n_convs):
        layers += [torch.nn.Conv1d(1 if i == 0 else 2, 2, 3, padding=1), torch.nn.BatchNorm1d(2), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, _GlobalMean(), torch.nn.Linear(2, 10)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    x, y = torch.randn(64, 1, 8, device=device), torch.randint(0, 10, (64,), device=device)
    perm = torch.randperm(64, device=device)
    loss_sum = torch.zeros((), device=device)

    def run() -> None:  # the builder's step: index slice, zero_grad, forward, loss, backward, step, schedule
        nonlocal loss_sum
        for i in range(steps):
            idx = perm[(4 * i) % 64 : (4 * i) % 64 + 4]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(idx)

    per_step = min(_timed(run, device, repeats=repeats, warmup=1)) / steps
    costs = step_costs(Network(tuple(conv(2, 3) for _ in range(n_convs))), (1, 8), 10, 4)
    kind = "gpu" if device.type == "cuda" else "cpu"
    return per_step, sum(op_launches(o, kind) for o in costs.ops())


def bench_train_overhead(device: torch.device, *, steps: int = 30, repeats: int = 6, sweeps: int = 3
                         ) -> dict[str, float]:
    """Per-launch and fixed per-step overhead of eager training: a line through tiny nets of 1-13 conv blocks.

    The sizes are swept several times, interleaved, and each keeps its best time, so a burst of load on a
    shared machine does not tilt the line."""
    sizes = (1, 5, 9, 13)
    best: dict[int, tuple[float, int]] = {}
    for _ in range(sweeps):
        for k in sizes:
            t, n = _tiny_step_s(k, device, steps=steps, repeats=repeats)
            best[k] = (min(t, best[k][0]) if k in best else t, n)
    pts = list(best.values())
    n_mean = sum(n for _, n in pts) / len(pts)
    t_mean = sum(t for t, _ in pts) / len(pts)
    slope = sum((n - n_mean) * (t - t_mean) for t, n in pts) / sum((n - n_mean) ** 2 for _, n in pts)
    slope = max(0.0, slope)
    return {"train_launch_overhead_s": slope, "train_step_overhead_s": max(0.0, t_mean - slope * n_mean)}


Log = Callable[[str], None]
T = TypeVar("T")


def _quiet(line: str) -> None:
    """The default ``log``: say nothing."""


def _gflops(flops: float) -> str:
    return f"{flops / 1e9:.1f} GFLOP/s"


def _bandwidth(m: dict[str, float]) -> str:
    return f"copy {m['copy_bytes_per_s'] / 1e9:.1f} GB/s, triad {m['triad_bytes_per_s'] / 1e9:.1f} GB/s"


def _launch(m: dict[str, float]) -> str:
    return f"eager op {m['launch_overhead_s'] * 1e6:.2f} us, autograd op {m['autograd_op_overhead_s'] * 1e6:.2f} us"


def _train(m: dict[str, float]) -> str:
    return (f"{m['train_launch_overhead_s'] * 1e6:.2f} us per launch + {m['train_step_overhead_s'] * 1e6:.1f} us per "
            "step")


def stage(log: Log, what: str, measure: Callable[[], T], show: Callable[[T], str]) -> T:
    """Run one measurement and log ``<what>: <its figure> (<seconds> s)`` when it finishes."""
    t0 = time.perf_counter()
    value = measure()
    log(f"{what}: {show(value)} ({time.perf_counter() - t0:.1f} s)")
    return value


def bench_cpu(threads: int, *, quick: bool = False, log: Log = _quiet) -> dict[str, Any]:
    """The figures at a thread count, each stage logged as it ends (restores torch's thread setting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    where = f"cpu {threads} thread{'s' if threads > 1 else ''}"
    try:
        cpu = torch.device("cpu")
        n = 512 if quick else 1024
        out = {"matmul_flops": stage(log, f"{where}: fp32 matmul {n}^3",
                                     lambda: bench_matmul(cpu, n=n, repeats=4 if quick else 25), _gflops)}
        out |= stage(log, f"{where}: stream bandwidth", lambda: bench_bandwidth(
            cpu, elems=2**22 if quick else 2**26, repeats=3 if quick else 12), _bandwidth)
        out |= stage(log, f"{where}: launch overhead", lambda: bench_launch(
            cpu, ops=500 if quick else 5000, repeats=3 if quick else 7), _launch)
        out |= stage(log, f"{where}: training-step overhead", lambda: bench_train_overhead(
            cpu, steps=6 if quick else 30, repeats=2 if quick else 6, sweeps=1 if quick else 3), _train)
        out["clock"] = "thread_time" if cpu_clock() is time.thread_time else "wall"
        return out
    finally:
        torch.set_num_threads(before)


def bench_cuda(*, quick: bool = False, log: Log = _quiet) -> dict[str, Any]:
    """Figures of CUDA device 0: fp32 (CUDA cores), tf32 and bf16 matmul, bandwidth on 1 GiB buffers, launches."""
    dev = torch.device("cuda", 0)
    n = 2048 if quick else 8192
    prev = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        fp32 = stage(log, f"cuda: fp32 matmul {n}^3", lambda: bench_matmul(dev, n=n), _gflops)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = stage(log, f"cuda: tf32 matmul {n}^3", lambda: bench_matmul(dev, n=n), _gflops)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    bf16 = stage(log, f"cuda: bf16 matmul {n}^3", lambda: bench_matmul(dev, n=n, dtype=torch.bfloat16), _gflops)
    out: dict[str, Any] = {"matmul_flops": fp32, "matmul_tf32_flops": tf32, "matmul_bf16_flops": bf16}
    out |= stage(log, "cuda: stream bandwidth", lambda: bench_bandwidth(dev, elems=2**24 if quick else 2**28),
                 _bandwidth)
    out |= stage(log, "cuda: launch overhead", lambda: bench_launch(dev), _launch)
    out |= stage(log, "cuda: training-step overhead", lambda: bench_train_overhead(dev), _train)
    return {"threads": {"1": out}, "name": torch.cuda.get_device_name(0)}


def run_bench(*, quick: bool = False, cuda: bool | None = None, command: str | None = None,
              log: Log = _quiet) -> dict[str, Any]:
    """Benchmark the CPU (1 thread and all threads) and, when present, CUDA; with provenance. ``log`` gets one
    line per measurement stage, with its figure, as it finishes."""
    counts = sorted({1, logical_cpus()})
    with_cuda = cuda if cuda is not None else torch.cuda.is_available()
    log(f"benchmarking the CPU at {' and '.join(map(str, counts))} thread(s)" + (" and CUDA device 0" if with_cuda
        else "") + (" (quick: small buffers, few repeats)" if quick else ""))
    prov = provenance(command, torch=torch.__version__, quick=quick, loadavg_1m=os.getloadavg()[0])
    result: dict[str, Any] = {"schema": SCHEMA, "provenance": prov,
                              "cpu": {"threads": {str(t): bench_cpu(t, quick=quick, log=log) for t in counts}},
                              "cuda": None}
    if with_cuda:
        result["cuda"] = bench_cuda(quick=quick, log=log)
        prov["cuda_name"] = result["cuda"]["name"]
    return result


def save_bench(result: dict[str, Any], *, results_dir: Path | None = None, cache_path: Path | None = None,
               cache: bool | None = None) -> list[Path]:
    """Write the result to the per-machine cache and (unless None) a results folder; returns the paths written.

    A quick run (small buffers, few repeats) is not cached unless asked: its figures would become ``local``."""
    write_cache = cache if cache is not None else not result["provenance"].get("quick", False)
    paths = [cache_path or bench_cache_path(result["provenance"])] if write_cache else []
    if results_dir is not None:
        paths.append(results_dir / f"bench_{result['provenance']['host']}.json")
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(p, result)
    return paths


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Human-readable figures, one line per device and thread count."""
    lines = []
    for kind in ("cpu", "cuda"):
        for t, m in ((result.get(kind) or {}).get("threads") or {}).items():
            label = f"{kind} {t} thread(s)" if kind == "cpu" else f"cuda {result['cuda']['name']}"
            lines.append(f"{label}: matmul {_gflops(m['matmul_flops'])}, {_bandwidth(m)}, {_launch(m)}, training "
                         f"{_train(m)}")
    return lines
