"""GPU telemetry through NVML behind a small interface (start/stop), testable without a GPU.

On a CPU-only machine ``open_telemetry`` returns a NullTelemetry whose report is all None.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from statistics import fmean
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TelemetryReport:
    """What a device reported over one measured span (None where it reports nothing)."""

    energy_j: float | None = None
    power_w_mean: float | None = None
    power_w_max: float | None = None
    gpu_util_pct_mean: float | None = None
    sm_clock_mhz_mean: float | None = None
    gpu_mem_used_bytes_max: int | None = None
    samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """As corpus columns."""
        d = asdict(self)
        d.pop("samples")
        return d


class Telemetry(Protocol):
    """Measures a span: ``start()`` before, ``stop()`` after."""

    def start(self) -> None: ...

    def stop(self) -> TelemetryReport: ...


class NullTelemetry:
    """For devices that report nothing (CPU)."""

    def start(self) -> None:
        return None

    def stop(self) -> TelemetryReport:
        return TelemetryReport()


class NvmlTelemetry:
    """Energy-counter delta plus sampled power, utilisation, SM clock and memory of one GPU.

    ``nvml`` is the pynvml module (injectable so the logic is unit-tested without a GPU).
    """

    def __init__(self, nvml: Any, handle: Any, *, interval_s: float = 0.05) -> None:
        self._nvml, self._h, self._interval_s = nvml, handle, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._power_w: list[float] = []
        self._util: list[float] = []
        self._clock: list[float] = []
        self._mem: list[int] = []
        self._energy0_mj: float | None = None
        self._t0 = 0.0

    def _energy_mj(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._h))
        except self._nvml.NVMLError:  # older GPUs have no energy counter
            return None

    def _sample(self) -> None:
        n = self._nvml
        self._power_w.append(n.nvmlDeviceGetPowerUsage(self._h) / 1000.0)
        self._util.append(float(n.nvmlDeviceGetUtilizationRates(self._h).gpu))
        self._clock.append(float(n.nvmlDeviceGetClockInfo(self._h, n.NVML_CLOCK_SM)))
        self._mem.append(int(n.nvmlDeviceGetMemoryInfo(self._h).used))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def start(self) -> None:
        self._power_w, self._util, self._clock, self._mem = [], [], [], []
        self._stop.clear()
        self._energy0_mj = self._energy_mj()
        self._t0 = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="nvml-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> TelemetryReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        elapsed_s = time.perf_counter() - self._t0
        e1 = self._energy_mj()
        if self._energy0_mj is not None and e1 is not None:
            energy_j: float | None = (e1 - self._energy0_mj) / 1000.0
        else:  # no counter: integrate sampled power instead
            energy_j = fmean(self._power_w) * elapsed_s if self._power_w else None
        return TelemetryReport(
            energy_j=energy_j,
            power_w_mean=fmean(self._power_w),
            power_w_max=max(self._power_w),
            gpu_util_pct_mean=fmean(self._util),
            sm_clock_mhz_mean=fmean(self._clock),
            gpu_mem_used_bytes_max=max(self._mem),
            samples=len(self._power_w),
        )


def open_telemetry(device_kind: str, index: int = 0) -> Telemetry:
    """NVML telemetry for a CUDA device when NVML answers; NullTelemetry otherwise."""
    if device_kind != "cuda":
        return NullTelemetry()
    try:
        import pynvml

        pynvml.nvmlInit()
        return NvmlTelemetry(pynvml, pynvml.nvmlDeviceGetHandleByIndex(index))
    except Exception:  # pynvml.NVMLError or a missing library: no telemetry, not a failed run
        return NullTelemetry()
