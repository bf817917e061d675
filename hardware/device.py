"""What machine a run is on: CPU model, threads, host, and the CUDA device when one is present."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass

from narch.core.errors import NarchError
from narch.core.provenance import cpu_model

__all__ = ["DeviceError", "DeviceInfo", "cpu_model", "describe_device", "logical_cpus", "nvml_driver_version",
           "resolve_device"]


class DeviceError(NarchError, RuntimeError):
    """A device was asked for that this machine does not have."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Provenance of the device a run used (columns of the corpus)."""

    device_kind: str
    device_name: str
    driver: str | None
    cuda_version: str | None
    torch_version: str
    cpu_model: str
    threads: int
    host: str

    def to_dict(self) -> dict[str, object]:
        """As corpus columns."""
        return asdict(self)


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'auto' -> 'cpu' or 'cuda'; asking for CUDA without one is an error."""
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise DeviceError(f"device {device!r} is not one of cpu, cuda, auto")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise DeviceError("device 'cuda' was asked for but torch sees no CUDA device")
    return "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"


def nvml_driver_version() -> str | None:
    """The NVIDIA driver version through NVML, or None without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVMLError, missing library: no driver to report
        return None


def describe_device(kind: str) -> DeviceInfo:
    """Provenance for a resolved device kind ('cpu' or 'cuda')."""
    import torch

    if kind == "cuda":
        name, driver, cuda = torch.cuda.get_device_name(0), nvml_driver_version(), torch.version.cuda
    else:
        name, driver, cuda = cpu_model(), None, None
    return DeviceInfo(
        device_kind=kind,
        device_name=name,
        driver=driver,
        cuda_version=cuda,
        torch_version=torch.__version__,
        cpu_model=cpu_model(),
        threads=torch.get_num_threads(),
        host=socket.gethostname(),
    )


def logical_cpus() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
