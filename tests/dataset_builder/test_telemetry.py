"""NVML telemetry logic, exercised through a stand-in NVML module (the GPU path is tested under `gpu`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from narch.hardware import telemetry
from narch.hardware.telemetry import NullTelemetry, NvmlTelemetry, open_telemetry


class FakeNvml:
    """The few pynvml calls NvmlTelemetry makes, answering from counters that advance per call."""

    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, *, energy: bool = True) -> None:
        self.energy_mj = 1_000_000.0
        self.has_energy = energy
        self.calls = 0

    def nvmlDeviceGetTotalEnergyConsumption(self, h: object) -> float:
        if not self.has_energy:
            raise self.NVMLError("not supported")
        self.energy_mj += 2500.0
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, h: object) -> int:
        self.calls += 1
        return 200_000 + 1000 * (self.calls % 3)  # mW

    def nvmlDeviceGetUtilizationRates(self, h: object) -> object:
        @dataclass
        class U:
            gpu: int = 80

        return U()

    def nvmlDeviceGetClockInfo(self, h: object, which: int) -> int:
        assert which == self.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetMemoryInfo(self, h: object) -> object:
        @dataclass
        class M:
            used: int = 5 * 2**30

        return M()


def test_energy_counter_delta_and_sampled_stats() -> None:
    fake = FakeNvml()
    t = NvmlTelemetry(fake, handle=None, interval_s=0.001)
    t.start()
    torch.ones(1000).sum()
    rep = t.stop()
    assert rep.energy_j == pytest.approx(2.5)
    assert 200 <= rep.power_w_mean <= 202 and rep.power_w_max <= 202
    assert rep.gpu_util_pct_mean == 80 and rep.sm_clock_mhz_mean == 1980
    assert rep.gpu_mem_used_bytes_max == 5 * 2**30 and rep.samples >= 2


def test_without_energy_counter_power_is_integrated(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 12.5])  # start, stop: 2.5 s elapsed
    monkeypatch.setattr(telemetry, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    t = NvmlTelemetry(FakeNvml(energy=False), handle=None, interval_s=0.001)
    t.start()
    rep = t.stop()
    assert 200 <= rep.power_w_mean <= 202 and rep.samples >= 2
    assert rep.energy_j == pytest.approx(rep.power_w_mean * 2.5)  # mean sampled power x elapsed time
    assert 500 <= rep.energy_j <= 505


def test_cpu_gets_null_telemetry() -> None:
    t = open_telemetry("cpu")
    assert isinstance(t, NullTelemetry)
    t.start()
    assert t.stop().to_dict() == {k: None for k in t.stop().to_dict()}


@pytest.mark.gpu
def test_real_nvml_on_cuda() -> None:
    t = open_telemetry("cuda")
    assert isinstance(t, NvmlTelemetry)
    t.start()
    x = torch.randn(4096, 4096, device="cuda")
    for _ in range(20):
        x = x @ x
        x = x / x.norm()
    torch.cuda.synchronize()
    rep = t.stop()
    assert rep.power_w_mean and rep.power_w_mean > 0 and rep.energy_j and rep.energy_j > 0
