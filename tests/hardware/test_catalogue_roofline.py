"""Catalogue figures, the local device, roofline times and the wave-scaling transfer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from narch.hardware.catalogue import (
    CATALOGUE,
    DEFAULT_LOCAL,
    MACHINE_KEYS,
    bench_cache_path,
    get_device,
    load_bench,
    local_device,
    this_machine,
)
from narch.hardware.costs import OpClass, step_costs
from narch.hardware.roofline import op_dtype, roofline_run, roofline_train_time_s, step_time
from narch.hardware.transfer import gamma, kernel_factor, wave_scaled_time_s
from narch.search_space import SEEDS, Network, conv, dense, seed_network

REQUIRED = {"v100", "a100", "h100", "h200", "l4", "t4", "rtx4090", "a10g"}


def test_catalogue_has_every_device_with_sourced_dense_figures() -> None:
    assert set(CATALOGUE) >= REQUIRED
    for dev in CATALOGUE.values():
        assert dev.kind == "gpu" and "fp32" in dev.peak_flops
        for spec in [*dev.peak_flops.values(), dev.mem_bandwidth, dev.mem_bytes, dev.sm_count, dev.l2_bytes,
                     dev.tdp_w]:
            assert spec is not None and spec.value > 0 and spec.source and spec.dense
        for dt in ("tf32", "bf16", "fp16"):
            assert dev.peak(dt) >= dev.peak("fp32") * 0.99  # tensor paths are never slower than fp32 cores
    assert CATALOGUE["a10g"].uncertain
    assert CATALOGUE["a100"].compute_efficiency == pytest.approx(0.87)
    assert CATALOGUE["h100"].compute_efficiency == pytest.approx(0.80)


def test_dense_peaks_are_half_the_datasheet_sparse_figures() -> None:
    assert CATALOGUE["a100"].peak("bf16") == pytest.approx(312e12)  # 624 with sparsity
    assert CATALOGUE["h100"].peak("fp16") == pytest.approx(989.4e12)  # 1979 with sparsity
    assert CATALOGUE["h200"].peak("tf32") == pytest.approx(494.7e12)
    assert CATALOGUE["h200"].mem_bandwidth.value == pytest.approx(4.8e12)


def test_unknown_device_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="h100"):
        get_device("b300")
    assert get_device("A100-80GB").key == "a100"


def test_local_device_from_a_cached_bench_and_default(tmp_path: Path) -> None:
    bench = {"provenance": {"date": "d", "cpu_model": "Test CPU"}, "cpu": {"threads": {
        "1": {"matmul_flops": 1e11, "triad_bytes_per_s": 2e10, "launch_overhead_s": 1e-6},
        "4": {"matmul_flops": 3e11, "triad_bytes_per_s": 4e10, "launch_overhead_s": 1e-6}}}}
    p = tmp_path / "b.json"
    p.write_text(json.dumps(bench))
    loaded = load_bench(p)
    assert loaded is not None
    one, four = local_device(threads=1, bench=loaded), local_device(bench=loaded)
    assert one.peak("fp32") == 1e11 and four.peak("fp32") == 3e11 and four.extra["threads"] == 4
    assert local_device(threads=3, bench=loaded).extra["threads"] == 4  # nearest, ties to more threads
    assert "Test CPU" in one.name and one.compute_efficiency == 1.0
    default = local_device(bench={})
    assert default.peak("fp32") == DEFAULT_LOCAL["matmul_flops"] and default.uncertain
    assert load_bench(tmp_path / "missing.json") is None


def test_the_bench_cache_is_keyed_by_host_cpu_model_and_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("NARCH_CACHE_DIR", str(tmp_path))
    here = this_machine()
    assert set(here) == set(MACHINE_KEYS) and bench_cache_path() == bench_cache_path(here)
    assert bench_cache_path(here).name.startswith(f"bench-{here['host']}-")
    for key, other in (("cpu_model", "Another CPU"), ("cpus", 1024)):
        assert bench_cache_path(here | {key: other}) != bench_cache_path(here)  # same host name, another machine
    bench = {"provenance": {**here, "created_at": "t"}, "cpu": {"threads": {"1": {
        "matmul_flops": 7e10, "triad_bytes_per_s": 1e10, "launch_overhead_s": 1e-6}}}}
    legacy = tmp_path / f"bench-{here['host']}.json"  # keyed by host name only, as caches were before
    legacy.write_text(json.dumps(bench | {"provenance": {**here, "cpu_model": "Another CPU"}}))
    assert load_bench() is None  # another machine's figures under this host name are not `local`
    legacy.write_text(json.dumps(bench))
    assert load_bench() == bench  # this machine's: still read
    bench_cache_path().write_text(json.dumps(bench | {"schema": 2}))
    assert load_bench() == bench | {"schema": 2}  # the keyed file first


def test_precision_picks_the_tensor_path_as_pytorch_does() -> None:
    a100 = CATALOGUE["a100"]
    assert op_dtype(OpClass.CONV, a100, "fp32") == "tf32"  # cuDNN allow_tf32 defaults on
    assert op_dtype(OpClass.DENSE, a100, "fp32") == "fp32"  # matmul allow_tf32 defaults off
    assert op_dtype(OpClass.CONV, CATALOGUE["t4"], "fp32") == "fp32"
    assert op_dtype(OpClass.BN, a100, "bf16") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        op_dtype(OpClass.CONV, a100, "int8")


def test_op_time_is_max_of_compute_and_memory_plus_launches() -> None:
    dev = CATALOGUE["h100"]
    c = step_costs(seed_network("resnet_tiny"), (3, 32, 32), 10, 128)
    st = step_time(c, dev)
    for o, t in zip(c.ops(), st.ops, strict=True):
        peak = dev.peak(op_dtype(o.op_class, dev, "fp32")) * dev.compute_efficiency
        assert t.compute_s == pytest.approx(o.flops / peak)
        assert t.memory_s == pytest.approx(o.bytes / (dev.mem_bandwidth.value * dev.memory_efficiency))
        assert t.time_s == pytest.approx(max(t.compute_s, t.memory_s) + t.launch_s)
    assert st.time_s == pytest.approx(sum(st.layer_times().values()))
    assert sum(st.bound_times().values()) == pytest.approx(st.time_s)
    assert st.bound in ("compute", "memory", "launch")


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_on_every_device(name: str) -> None:
    net = seed_network(name)
    for key in [*CATALOGUE, "local"]:
        for shape in ((1, 40), (3, 32, 32)):
            r = roofline_run(net, shape, 10, batch_size=128, n_train=1000, epochs=2, device=key)
            assert r.train_time_s > 0 and math.isfinite(r.train_time_s)
            assert r.train_time_s == pytest.approx(2 * (7 * r.full.time_s + r.remainder.time_s))
            assert r.dominating_layer in r.full.layer_times()


def test_faster_devices_are_faster_on_big_work() -> None:
    net = Network((conv(128, 3), conv(128, 3), conv(128, 3), dense(256)))
    t = {k: roofline_train_time_s(net, (3, 32, 32), 10, batch_size=256, n_train=4096, epochs=1, device=k)
         for k in ("t4", "v100", "a100", "h100", "h200")}
    assert t["t4"] > t["v100"] > t["a100"] > t["h100"] >= t["h200"]


def test_wave_scaling_identity_and_direction() -> None:
    net = seed_network("vgg_tiny")
    assert wave_scaled_time_s(1.0, net, (3, 32, 32), 10, batch_size=128, src="a100", dst="a100") == pytest.approx(1.0)
    assert wave_scaled_time_s(1.0, net, (3, 32, 32), 10, batch_size=128, src="t4", dst="h100") < 1.0
    c = step_costs(net, (3, 32, 32), 10, 128)
    for o in c.ops():
        assert 0.0 <= gamma(o, CATALOGUE["h100"]) <= 1.0
        assert kernel_factor(o, CATALOGUE["a100"], CATALOGUE["a100"]) == pytest.approx(1.0)


def test_local_cuda_device_uses_benched_tensor_core_rates() -> None:
    m = {"matmul_flops": 5e13, "matmul_tf32_flops": 4e14, "matmul_bf16_flops": 8e14, "triad_bytes_per_s": 4e12,
         "launch_overhead_s": 5e-6, "train_launch_overhead_s": 8e-6, "train_step_overhead_s": 1e-4}
    dev = local_device(cuda=True, bench={"provenance": {"cuda_name": "NVIDIA H200"}, "cuda": {"threads": {"1": m}}})
    assert dev.kind == "gpu" and "H200" in dev.name
    assert op_dtype(OpClass.CONV, dev, "fp32") == "tf32" and dev.peak("tf32") == 4e14
    assert dev.launch_overhead_s == 8e-6 and dev.step_overhead_s == 1e-4


def test_unbenchmarked_local_cuda_is_a_conservative_gpu() -> None:
    dev = local_device(cuda=True, bench={})
    assert dev.key == "local" and dev.kind == "gpu" and dev.uncertain
    assert dev.peak("fp32") == CATALOGUE["t4"].peak("fp32")


def test_gamma_follows_habitat_piecewise_form() -> None:
    from narch.hardware.costs import OpCost

    h100 = CATALOGUE["h100"]
    ridge = h100.peak("fp32") / h100.mem_bandwidth.value
    mem = OpCost("x", OpClass.RELU, flops_fwd=0, bytes_fwd=400)
    assert gamma(mem, h100) == 1.0
    at_half = OpCost("y", OpClass.BN, flops_fwd=int(ridge * 1000), bytes_fwd=2000)
    assert gamma(at_half, h100) == pytest.approx(1 - 0.5 * 0.5, rel=1e-3)
    heavy = OpCost("z", OpClass.BN, flops_fwd=int(ridge * 4000), bytes_fwd=1000)
    assert gamma(heavy, h100) == pytest.approx(0.5 / 4, rel=1e-3)


def test_small_kernels_scale_with_per_sm_rate() -> None:
    from narch.hardware.costs import OpCost

    tiny = OpCost("t", OpClass.RELU, flops_fwd=10, bytes_fwd=10_000, out_elems=1000)  # one block
    a100, h100 = CATALOGUE["a100"], CATALOGUE["h100"]
    per_sm = (a100.peak("fp32") * a100.compute_efficiency / 108) / (h100.peak("fp32") * h100.compute_efficiency / 132)
    g = gamma(tiny, h100)
    assert kernel_factor(tiny, a100, h100) == pytest.approx(per_sm ** (1 - g))
