"""Device catalogue, per-layer costs, roofline times, micro-benchmarks and device telemetry.

Re-exports the pure-Python parts (no torch): costs, catalogue, roofline and the wave-scaling transfer.
The benchmark (``hardware.bench``), the comparison (``hardware.compare``) and device detection import torch,
polars or NVML and are imported by name.
"""

from narch.hardware.catalogue import CATALOGUE, Device, Spec, get_device, local_device
from narch.hardware.costs import LayerCost, OpClass, OpCost, RunCosts, StepCosts, run_costs, step_costs
from narch.hardware.roofline import RunTime, StepTime, roofline_run, roofline_train_time_s, step_time
from narch.hardware.transfer import wave_scaled_time_s

__all__ = [
    "CATALOGUE",
    "Device",
    "LayerCost",
    "OpClass",
    "OpCost",
    "RunCosts",
    "RunTime",
    "Spec",
    "StepCosts",
    "StepTime",
    "get_device",
    "local_device",
    "roofline_run",
    "roofline_train_time_s",
    "run_costs",
    "step_costs",
    "step_time",
    "wave_scaled_time_s",
]
