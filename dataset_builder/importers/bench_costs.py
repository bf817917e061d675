"""Parameters and forward FLOPs of the real, stacked networks of NAS-Bench-201 and NAS-Bench-101 (and EC-NAS).

An imported row's ``arch_json`` encodes one cell (dataset_builder/importers/cells.py), but its accuracy and time
belong to the benchmark's whole network: a stem, the cell repeated over three stages, reductions and a classifier.
So imported rows get ``params`` and ``flops_fwd`` of that whole network, computed here from the cell and the
benchmark's published skeleton, in the units of the corpus schema:

- ``params``: trainable parameters (conv weights, batch-norm scale and shift, classifier weight and bias).
- ``flops_fwd``: 2 FLOPs per multiply-accumulate of the convolutions and the classifier, per example, which is what
  ``torch.utils.flop_counter.FlopCounterMode`` counts and what the benchmarks' own "FLOPs" count (in MACs): pooling,
  batch-norm and ReLU are left out, as there.

NAS-Bench-201 (Dong & Yang 2020; ``xautodl.models.cell_infers.TinyNetwork``): stem conv3x3 (3 -> 16) + BN; three
stages of 5 cells at 16, 32 and 64 channels; between stages a ResNet basic block (ReLU-conv3x3-BN stride 2,
ReLU-conv3x3-BN, shortcut avgpool 2x2 + conv1x1); a final BN-ReLU, global pooling and a linear classifier. Every
edge of a cell is computed, reachable or not: ``nor_conv_kxk`` is ReLU-conv-BN (k*k*C*C + 2C parameters), pools,
skips and ``none`` have no parameters. Checked against NASLib's parameter counts of NAS-Bench-201 cells
(tests/dataset_builder/test_bench_costs.py).

NAS-Bench-101 (Ying et al. 2019; ``nasbench/lib/model_builder.py``): stem conv3x3-BN-ReLU (3 -> 128); three stacks
of 3 modules, a 2x2 max-pool and twice the channels before stacks 2 and 3; global pooling and a dense layer. Inside a
module the output channels are split over the vertices that feed the output (``compute_vertex_channels``), the input
reaches an interior vertex through a 1x1 conv-BN-ReLU projection, and the output through another when the input
feeds it directly. Checked against NAS-Bench-101's and EC-NAS's own ``trainable_parameters``, which EC-NAS's 4-vertex
space shares with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from narch.dataset_builder.importers.cells import parse_nb201


@dataclass(frozen=True, slots=True)
class NetCost:
    """The whole network's trainable parameters and forward FLOPs per example (conv and linear, 2 per MAC)."""

    params: int
    flops_fwd: int

    def __add__(self, other: NetCost) -> NetCost:
        return NetCost(self.params + other.params, self.flops_fwd + other.flops_fwd)


ZERO = NetCost(0, 0)


def _conv_bn(c_in: int, c_out: int, k: int, hw_out: int) -> NetCost:
    """A bias-free k x k convolution followed by an affine batch-norm, at an output of hw_out x hw_out."""
    return NetCost(k * k * c_in * c_out + 2 * c_out, 2 * k * k * c_in * c_out * hw_out * hw_out)


def _linear(c_in: int, c_out: int) -> NetCost:
    return NetCost(c_in * c_out + c_out, 2 * c_in * c_out)


NB201_KERNEL = {"nor_conv_3x3": 3, "nor_conv_1x1": 1}  # the other ops (skip, avg pool, none) cost no MACs


def nb201_cost(arch_str: str, *, n_classes: int, hw: int, channels: int = 16, cells: int = 5) -> NetCost:
    """The NAS-Bench-201 network of this cell on hw x hw inputs (32 for CIFAR, 16 for ImageNet16-120)."""
    edges = parse_nb201(arch_str)
    total = _conv_bn(3, channels, 3, hw)  # stem
    c = channels
    for stage in range(3):
        if stage:  # ResNet basic block, stride 2: conv_a, conv_b and the avgpool + 1x1 shortcut (no BN)
            c_in, c, hw = c, 2 * c, hw // 2
            total += _conv_bn(c_in, c, 3, hw) + _conv_bn(c, c, 3, hw)
            total += NetCost(c_in * c, 2 * c_in * c * hw * hw)
        cell = ZERO
        for op in edges.values():
            if op in NB201_KERNEL:
                cell += _conv_bn(c, c, NB201_KERNEL[op], hw)
        total += NetCost(cell.params * cells, cell.flops_fwd * cells)
    return total + NetCost(2 * c, 0) + _linear(c, n_classes)  # last BN, classifier


NB101_KERNEL = {"conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1}  # maxpool3x3 costs no MACs


def nb101_vertex_channels(c_in: int, c_out: int, adjacency: Sequence[Sequence[int]]) -> list[int]:
    """NAS-Bench-101's ``compute_vertex_channels``: the channels of every vertex of a module."""
    n = len(adjacency)
    ch = [0] * n
    ch[0], ch[n - 1] = c_in, c_out
    if n == 2:
        return ch
    in_degree = [sum(adjacency[s][d] for s in range(1, n)) for d in range(n)]
    interior, correction = divmod(c_out, in_degree[n - 1])
    for v in range(1, n - 1):
        if adjacency[v][n - 1]:
            ch[v] = interior + (1 if correction else 0)
            correction -= 1 if correction else 0
    for v in range(n - 3, 0, -1):
        if not adjacency[v][n - 1]:
            for d in range(v + 1, n - 1):
                if adjacency[v][d]:
                    ch[v] = max(ch[v], ch[d])
    if any(c <= 0 for c in ch[1:-1]):
        raise ValueError(f"a vertex of the module {adjacency} has no channels (is the cell pruned?)")
    return ch


def _nb101_module(c_in: int, c_out: int, adjacency: Sequence[Sequence[int]], ops: Sequence[str], hw: int) -> NetCost:
    n = len(adjacency)
    ch = nb101_vertex_channels(c_in, c_out, adjacency)
    total = ZERO
    for t in range(1, n - 1):
        if adjacency[0][t]:  # the input's 1x1 projection to this vertex
            total += _conv_bn(c_in, ch[t], 1, hw)
        if ops[t] in NB101_KERNEL:
            total += _conv_bn(ch[t], ch[t], NB101_KERNEL[ops[t]], hw)
    if adjacency[0][n - 1]:  # the input feeds the output: projected to the output's channels
        total += _conv_bn(c_in, c_out, 1, hw)
    return total


def nb101_cost(adjacency: Sequence[Sequence[int]], ops: Sequence[str], *, n_classes: int = 10, hw: int = 32,
               stem: int = 128, stacks: int = 3, modules: int = 3) -> NetCost:
    """The NAS-Bench-101 network of this (pruned) module on hw x hw inputs."""
    total = _conv_bn(3, stem, 3, hw)
    c = stem
    for s in range(stacks):
        c_in = c
        if s:
            hw, c = (hw + 1) // 2, 2 * c  # max-pool 2x2 'same', then twice the channels
        for _ in range(modules):
            total += _nb101_module(c_in, c, adjacency, ops, hw)
            c_in = c
    return total + _linear(c, n_classes)


__all__ = ["NetCost", "nb101_cost", "nb101_vertex_channels", "nb201_cost"]
