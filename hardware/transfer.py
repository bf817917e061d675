"""Habitat-style wave scaling (Yu et al., USENIX ATC 2021): map a time measured on one device to another.

A comparator for the roofline. The measured time is shared out over the step's ops in proportion to their
roofline times on the origin device; each op's kernel share is then scaled as in Habitat's roofline wave scaling:

    t_dest = t_origin * (B_o / B_d) ** gamma * (C_o / C_d) ** (1 - gamma)

with B the attainable memory bandwidth, C the attainable compute rate of the op's dtype (Habitat uses the
clock x SM ratio; the peak ratio generalises it to SMs of different width), and gamma in [0, 1] the op's
memory-boundedness from its arithmetic intensity I against the destination's ridge point R: 1 - I / (2R) below
R, R / (2I) above. Ops too small to fill one wave on either device scale with the per-SM rate and the blocks
each SM runs instead. Launch time scales with the devices' launch counts and per-launch figures; the fixed
per-step overhead is the destination's.
"""

from __future__ import annotations

import math

from narch.hardware.catalogue import Device, get_device
from narch.hardware.costs import OpClass, OpCost, StepCosts, step_costs
from narch.hardware.roofline import op_dtype, op_launches, op_time
from narch.search_space import Network

GEMM_TILE = (128, 128)  # output tile of one thread block of an implicit-GEMM / GEMM kernel
ELEMS_PER_BLOCK = 256 * 4  # element-wise kernels: 256 threads x 4 elements
BLOCKS_PER_SM = {"gemm": 1, "elementwise": 8}


def thread_blocks(op: OpCost) -> tuple[int, str]:
    """Estimated thread blocks of an op's main kernel, and its kernel family."""
    if op.op_class in (OpClass.CONV, OpClass.DENSE):  # output (batch x positions) x (channels or units)
        rows = max(1, op.out_elems // max(1, op.out_cols))
        return math.ceil(rows / GEMM_TILE[0]) * math.ceil(op.out_cols / GEMM_TILE[1]), "gemm"
    return math.ceil(max(1, op.out_elems) / ELEMS_PER_BLOCK), "elementwise"


def gamma(op: OpCost, dst: Device, precision: str = "fp32") -> float:
    """Memory-boundedness in [0, 1] from the op's intensity and the destination's ridge point."""
    if op.flops == 0:
        return 1.0
    if op.bytes == 0:
        return 0.0
    ridge = dst.peak(op_dtype(op.op_class, dst, precision)) / dst.mem_bandwidth.value
    i = op.flops / op.bytes
    return 0.5 * ridge / i if i > ridge else 1.0 - 0.5 * i / ridge


def _units(dev: Device) -> int:
    return int(dev.sm_count.value) if dev.sm_count else 1


def kernel_factor(op: OpCost, src: Device, dst: Device, precision: str = "fp32") -> float:
    """t_dest / t_origin for the op's kernel time."""
    g = gamma(op, dst, precision)
    c_src = src.peak(op_dtype(op.op_class, src, precision)) * src.compute_efficiency
    c_dst = dst.peak(op_dtype(op.op_class, dst, precision)) * dst.compute_efficiency
    blocks, family = thread_blocks(op)
    u_src, u_dst = _units(src), _units(dst)
    occ = BLOCKS_PER_SM[family]
    if blocks < u_src * occ and blocks < u_dst * occ:  # a partial wave on both devices
        per_unit = (c_src / u_src) / (c_dst / u_dst)
        return (per_unit * math.ceil(blocks / u_dst) / math.ceil(blocks / u_src)) ** (1 - g)
    b_src = src.mem_bandwidth.value * src.memory_efficiency
    b_dst = dst.mem_bandwidth.value * dst.memory_efficiency
    return (b_src / b_dst) ** g * (c_src / c_dst) ** (1 - g)


def wave_scaled_step(measured_s: float, costs: StepCosts, src: Device, dst: Device, precision: str = "fp32") -> float:
    """A time measured on ``src`` for steps of known costs (one step or many equal ones) mapped to ``dst``."""
    pairs = [(o, op_time(o, lc.label, src, precision)) for lc in costs.layers for o in lc.ops]
    total = sum(t.time_s for _, t in pairs)  # the origin's roofline step time, less its fixed overhead
    out = dst.step_overhead_s
    for o, t in pairs:
        kernel = max(t.compute_s, t.memory_s)
        src_launch = op_launches(o, src.kind) * src.launch_overhead_s  # launch counts differ (AdamW foreach on CUDA)
        launch_ratio = op_launches(o, dst.kind) * dst.launch_overhead_s / src_launch if src_launch else 0.0
        out += kernel * kernel_factor(o, src, dst, precision) + t.launch_s * launch_ratio
    return measured_s * out / (total + src.step_overhead_s)


def wave_scaled_time_s(
    measured_s: float, net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int,
    src: Device | str, dst: Device | str, precision: str = "fp32",
) -> float:
    """A time measured on ``src`` (one step or a whole run of equal steps) mapped to ``dst``."""
    s = src if isinstance(src, Device) else get_device(src)
    d = dst if isinstance(dst, Device) else get_device(dst)
    return wave_scaled_step(measured_s, step_costs(net, input_shape, n_classes, batch_size), s, d, precision)
