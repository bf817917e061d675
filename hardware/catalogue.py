"""Device catalogue: peak FLOP/s per dtype, memory bandwidth and size, SMs, L2, TDP, each with its source.

Every peak is dense (NVIDIA datasheets quote tensor-core figures "with sparsity" at twice the dense rate; those
are halved here and the note says so). ``local`` is built from this machine's cached micro-benchmark
(``narch hardware bench``; keyed by host, CPU model and count), or from conservative defaults when none is cached.
Pure Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from narch.core.provenance import cpu_model
from narch.core.registry import UnknownName

DTYPES = ("fp32", "tf32", "bf16", "fp16")
T, G = 1e12, 1e9

# Sources: vendor datasheets and architecture whitepapers. "checked:" names public pages a search on 2026-11-28
# agreed with (third-party pages that quote the datasheets); figures not so checked are marked in the note.
V100_DS = ("NVIDIA Tesla V100 datasheet, SXM2 column (images.nvidia.com/content/technologies/volta/pdf/"
           "volta-v100-datasheet-update-us-1165301-r5.pdf) + Volta GV100 whitepaper; checked: developer.nvidia.com "
           "(125 tensor TFLOPS), techrival.com (80 SMs, 6144 KB L2)")
A100_DS = ("NVIDIA A100 datasheet, 80GB SXM column (nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
           "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf) + Ampere GA100 whitepaper; checked: "
           "glennklockwood.com/garden/processors/A100, thundercompute.com (2,039 GB/s, 40 MB L2, 400 W)")
H100_DS = ("NVIDIA H100 Tensor Core GPU datasheet, SXM column + Hopper whitepaper (dense TF32 494.7, FP16 989.4); "
           "checked: glennklockwood.com/garden/processors/h100, codesota.com (3,350 GB/s, 700 W)")
H200_DS = ("NVIDIA H200 datasheet, SXM column (nvidia.com/en-us/data-center/h200); compute identical to H100 SXM "
           "(same GH100 die); checked: aiminingco.com, lzwjava.github.io (141 GB HBM3e, 4.8 TB/s, 700 W, 132 SMs)")
L4_DS = ("NVIDIA L4 datasheet (nvidia.com/en-us/data-center/l4) + Ada whitepaper; checked: sourcecode.com "
         "(TF32 120 sparse), grokipedia (FP16 242 sparse, 300 GB/s, 72 W), fpsbench.com (48 MB L2, 30.29 TFLOPS); "
         "58 SMs = 30.3 TFLOPS / (2 x 128 lanes x 2.04 GHz)")
T4_DS = ("NVIDIA T4 datasheet (nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/"
         "t4-tensor-core-datasheet-951643.pdf); checked: sysrqmts.com (8.141 TFLOPS, 65 FP16, 320 GB/s, 40 SMs, "
         "4 MB L2, 70 W); no TF32/BF16 path (Turing)")
ADA_WP = ("NVIDIA Ada Lovelace architecture whitepaper, GeForce RTX 4090 column (images.nvidia.com/aem-dam/Solutions/"
          "geforce/ada/nvidia-ada-gpu-architecture.pdf); checked: waredb.com (82.58 FP32, TF32 82.58 dense, FP16/BF16 "
          "165.15 dense with FP32 accumulate, 1008 GB/s, 72 MB L2)")
A10G_SRC = ("no NVIDIA datasheet for the AWS-only A10G: memory from baseten.co/blog/nvidia-a10-vs-a10g-for-ml-model-"
            "inference (24 GB, 600 GB/s); FP32 31.52, tensor 35/70 TFLOPS, 72 SMs, 300 W as commonly quoted for G5 "
            "instances, not checked here")
MAMF = "measured best-case matmul / peak (maximum achievable matmul FLOPS), as given in issue 3"
ASSUMED = "assumption (no measurement in this repo)"
SPARSE_HALVED = "datasheet gives the sparse rate; dense = half"


@dataclass(frozen=True, slots=True)
class Spec:
    """One catalogue figure in SI units, where it comes from, and whether it is a dense (non-sparse) rate."""

    value: float
    source: str
    dense: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A device the roofline can model. FLOP/s and bytes/s are peaks; efficiencies scale them to attainable."""

    key: str
    name: str
    kind: str  # "gpu" | "cpu"
    peak_flops: dict[str, Spec]  # by dtype: fp32 on CUDA cores (vector), tf32/bf16/fp16 on tensor cores
    mem_bandwidth: Spec  # bytes/s
    mem_bytes: Spec | None = None
    sm_count: Spec | None = None  # CPU: threads used
    l2_bytes: Spec | None = None
    tdp_w: Spec | None = None
    boost_clock_mhz: Spec | None = None
    compute_efficiency: float = 0.75
    memory_efficiency: float = 0.85
    launch_overhead_s: float = 5e-6
    step_overhead_s: float = 0.0  # fixed per training step (loop, scheduler, loss bookkeeping); measured locally
    efficiency_source: str = ASSUMED
    uncertain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for a dtype (fp32 vector rate where the device has no tensor path for it)."""
        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
        spec = self.peak_flops.get(dtype) or self.peak_flops["fp32"]
        if not spec.dense:
            raise ValueError(f"{self.key}: the {dtype} peak is not dense: refusing a sparse figure")
        return spec.value

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte where the fp32 roof meets the memory roof (attainable figures)."""
        return self.peak("fp32") * self.compute_efficiency / (self.mem_bandwidth.value * self.memory_efficiency)


def _s(value: float, source: str, note: str = "") -> Spec:
    return Spec(value, source, True, note)


def _gpu(key: str, name: str, src: str, *, fp32: float, tf32: float | None, bf16: float | None,
         fp16: float | None, bw: float, mem_gb: float, sms: int, l2_mb: float, tdp: float, clock: float,
         sparse_note: bool = True, **kw: Any) -> Device:
    peaks = {"fp32": _s(fp32 * T, src)}
    for dt, v in (("tf32", tf32), ("bf16", bf16), ("fp16", fp16)):
        if v is not None:
            peaks[dt] = _s(v * T, src, SPARSE_HALVED if sparse_note else "")
    return Device(
        key=key, name=name, kind="gpu", peak_flops=peaks, mem_bandwidth=_s(bw * G, src),
        mem_bytes=_s(mem_gb * G, src), sm_count=_s(sms, src), l2_bytes=_s(l2_mb * 2**20, src),
        tdp_w=_s(tdp, src), boost_clock_mhz=_s(clock, src), **kw,
    )


CATALOGUE: dict[str, Device] = {
    "v100": _gpu("v100", "NVIDIA V100 SXM2 32GB", V100_DS, fp32=15.7, tf32=None, bf16=None, fp16=125.0,
                 bw=900, mem_gb=32, sms=80, l2_mb=6, tdp=300, clock=1530, sparse_note=False),
    "a100": _gpu("a100", "NVIDIA A100 SXM 80GB", A100_DS, fp32=19.5, tf32=156.0, bf16=312.0, fp16=312.0,
                 bw=2039, mem_gb=80, sms=108, l2_mb=40, tdp=400, clock=1410,
                 compute_efficiency=0.87, efficiency_source=MAMF),
    "h100": _gpu("h100", "NVIDIA H100 SXM 80GB", H100_DS, fp32=66.9, tf32=494.7, bf16=989.4, fp16=989.4,
                 bw=3350, mem_gb=80, sms=132, l2_mb=50, tdp=700, clock=1980,
                 compute_efficiency=0.80, efficiency_source=MAMF),
    "h200": _gpu("h200", "NVIDIA H200 SXM 141GB", H200_DS, fp32=66.9, tf32=494.7, bf16=989.4, fp16=989.4,
                 bw=4800, mem_gb=141, sms=132, l2_mb=50, tdp=700, clock=1980,
                 compute_efficiency=0.80, efficiency_source=MAMF + "; H100's figure (same compute die)"),
    "l4": _gpu("l4", "NVIDIA L4", L4_DS, fp32=30.3, tf32=60.0, bf16=121.0, fp16=121.0,
               bw=300, mem_gb=24, sms=58, l2_mb=48, tdp=72, clock=2040),
    "t4": _gpu("t4", "NVIDIA T4", T4_DS, fp32=8.1, tf32=None, bf16=None, fp16=65.0,
               bw=320, mem_gb=16, sms=40, l2_mb=4, tdp=70, clock=1590, sparse_note=False),
    "rtx4090": _gpu("rtx4090", "NVIDIA GeForce RTX 4090", ADA_WP, fp32=82.6, tf32=82.6, bf16=165.2, fp16=165.2,
                    bw=1008, mem_gb=24, sms=128, l2_mb=72, tdp=450, clock=2520),
    "a10g": _gpu("a10g", "NVIDIA A10G (AWS)", A10G_SRC, fp32=31.52, tf32=35.0, bf16=70.0, fp16=70.0,
                 bw=600, mem_gb=24, sms=72, l2_mb=6, tdp=300, clock=1710, sparse_note=False, uncertain=True),
}
ALIASES = {"a100-80gb": "a100", "h100-sxm": "h100", "h200-sxm": "h200", "4090": "rtx4090", "v100-sxm2": "v100"}

# Conservative local defaults when no benchmark is cached: below what MACHINE_NOTES measured on a 2-core host.
DEFAULT_LOCAL = {"matmul_flops": 50e9, "triad_bytes_per_s": 10e9, "launch_overhead_s": 5e-6}
# Per-launch overhead: a tiny training step's slope per launch when benched, else the eager-op figure.
LAUNCH_KEYS = ("train_launch_overhead_s", "launch_overhead_s")


MACHINE_KEYS = ("host", "cpu_model", "cpus")  # what a cached micro-benchmark belongs to (provenance keys)


def cache_dir() -> Path:
    """Where the per-machine micro-benchmark is cached ($NARCH_CACHE_DIR or ~/.cache/narch)."""
    return Path(os.environ.get("NARCH_CACHE_DIR") or Path.home() / ".cache" / "narch")


def this_machine() -> dict[str, Any]:
    """This machine as a cached benchmark's provenance records it: host name, CPU model, logical CPU count."""
    return {"host": socket.gethostname(), "cpu_model": cpu_model(), "cpus": os.cpu_count()}


def bench_cache_path(machine: Mapping[str, Any] | None = None) -> Path:
    """The cache file of a machine (its provenance, or this one): ``bench-<host>-<sha256 of host, CPU model and
    count, 12 hex>.json``, so another machine under the same host name never reads this one's figures."""
    m = machine if machine is not None else this_machine()
    digest = hashlib.sha256(json.dumps([m.get(k) for k in MACHINE_KEYS]).encode()).hexdigest()[:12]
    return cache_dir() / f"bench-{m.get('host')}-{digest}.json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_bench(path: Path | None = None) -> dict[str, Any] | None:
    """The micro-benchmark at ``path``, or the cached one of this machine, or None. A cache written before the key
    held the CPU (``bench-<host>.json``) is read only when its provenance names this machine's CPU model and count."""
    if path is not None:
        return _read(path)
    machine = this_machine()
    found = _read(bench_cache_path(machine))
    if found is not None:
        return found
    legacy = _read(cache_dir() / f"bench-{machine['host']}.json")
    prov = (legacy or {}).get("provenance") or {}
    return legacy if all(prov.get(k) == machine[k] for k in MACHINE_KEYS) else None


def _pick_threads(by_threads: dict[str, Any], threads: int | None) -> tuple[int, dict[str, Any]]:
    avail = sorted(int(t) for t in by_threads)
    want = threads if threads is not None else avail[-1]
    t = min(avail, key=lambda a: (abs(a - want), -a))
    return t, by_threads[str(t)]


def local_device(*, threads: int | None = None, bench: dict[str, Any] | None = None, cuda: bool = False) -> Device:
    """This host from its cached micro-benchmark (achieved figures, so efficiencies are 1), or defaults."""
    b = bench if bench is not None else load_bench()
    section = (b or {}).get("cuda" if cuda else "cpu") or {}
    by_threads = section.get("threads", {})
    if by_threads:
        t, m = _pick_threads(by_threads, threads)
        prov = b.get("provenance", {})  # type: ignore[union-attr]
        src = f"micro-benchmark {prov.get('created_at') or prov.get('date', '?')} ({t} threads)"  # older files: 'date'
        model = prov.get("cuda_name" if cuda else "cpu_model", "local")
        est = False
    elif cuda:  # no CUDA bench cached: the smallest catalogued datacenter GPU at its efficiencies (T4)
        return replace(CATALOGUE["t4"], key="local", name="local CUDA (unbenchmarked; T4 figures)", uncertain=True)
    else:
        t, m, src, model, est = threads or (os.cpu_count() or 1), DEFAULT_LOCAL, "conservative default", "local", True
    label = "" if model == "local" else f" {model}"
    name = f"local{label} ({t} threads)" if not cuda else f"local{label}"
    peaks = {"fp32": Spec(m["matmul_flops"], src, True, "achieved fp32 matmul")}
    for dt in ("tf32", "bf16"):  # CUDA: tensor-core matmuls are benched too
        if f"matmul_{dt}_flops" in m:
            peaks[dt] = Spec(m[f"matmul_{dt}_flops"], src, True, f"achieved {dt} matmul")
    return Device(
        key="local", name=name, kind="gpu" if cuda else "cpu",
        peak_flops=peaks, mem_bandwidth=Spec(m["triad_bytes_per_s"], src, True, "achieved stream triad"),
        sm_count=Spec(t, src) if not cuda else None, compute_efficiency=1.0, memory_efficiency=1.0,
        launch_overhead_s=next(m[k] for k in LAUNCH_KEYS if k in m),
        step_overhead_s=m.get("train_step_overhead_s", 0.0), efficiency_source=src, uncertain=est,
        extra={"threads": t, "measured": not est},
    )


def get_device(key: str, *, threads: int | None = None) -> Device:
    """A catalogued device by key (or alias), or ``local`` / ``local-cuda``; unknown keys name the known ones."""
    k = key.strip().lower()
    if k == "local":
        return local_device(threads=threads)
    if k == "local-cuda":
        return local_device(cuda=True)
    k = ALIASES.get(k, k)
    if k not in CATALOGUE:
        raise UnknownName(f"device {key!r} is unknown (known: {', '.join([*CATALOGUE, 'local'])})")
    return CATALOGUE[k]


def with_efficiency(dev: Device, *, compute: float | None = None, memory: float | None = None,
                    launch_s: float | None = None) -> Device:
    """A copy of a device with other efficiency factors (e.g. calibrated ones)."""
    return replace(
        dev, compute_efficiency=dev.compute_efficiency if compute is None else compute,
        memory_efficiency=dev.memory_efficiency if memory is None else memory,
        launch_overhead_s=dev.launch_overhead_s if launch_s is None else launch_s,
    )
