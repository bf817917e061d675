"""Cell DAGs (operations on edges, as NAS-Bench-201; or on nodes, as NAS-Bench-101 / EC-NAS) mapped onto a
search_space layer DAG, through a table of what each operation becomes (``CellOp``).

The public benchmarks stack one searched cell many times inside a fixed skeleton (stem, stages, reductions).
Our spec caps depth at 48 layers and has no notion of a repeated cell, so an imported network encodes ONE cell:

- node 0 (the cell input) is the output of a stem, ``conv(C, 3)`` at layer 0 by default; C = 16 for
  NAS-Bench-201 (its first-stage width) and 128 for NAS-Bench-101 / EC-NAS (their stem width).
- an operation becomes its chain of layers, the first reading the source through ``inputs``. NAS-Bench-201's and
  NAS-Bench-101's tables (``nb201_ops``, ``nb101_ops``): 3x3 / 1x1 convolutions are ``conv(C, 3)`` / ``conv(C, 1)``;
  3x3 pools are stride-1 'same' pools (``avgpool(3, 1)``, ``maxpool(3, 1)``). NAS-Bench-201's ReLU-conv-BN is
  approximated by our conv-BN-ReLU. The generic table importer (``importers/table.py``) takes the user's table.
- a skip (``skip_connect``, the empty chain) adds no layer: the target reads the source layer directly; ``none``
  (None in the table) is no edge at all.
- a node with several incoming terms sums them by a chain of ``add`` layers (sources in increasing node order);
  a node with one term is that term.
- NAS-Bench-101's input-to-node 1x1 projections are dropped (every node has C channels here) and its output
  concatenation is approximated by a sum (an ``add`` chain) of the output's predecessors.

Edge cases, each counted in ``CellMapping.notes`` (or raised as ``UnmappableCell``) so an importer can report them:

- ``zero_node``: a node whose every incoming edge is ``none`` (or reads such a node), or a node whose own op is
  ``none`` (node form), is zero; edges out of it are treated as ``none``.
- ``dead_node``: a node (with its layers) that cannot reach the cell output is dropped, as NAS-Bench-101's own
  pruning does; for NAS-Bench-201 it still cost compute upstream, so latency rows under-count it.
- ``self_add``: two skip edges that resolve to the same layer (x + x) would make an add join a layer with itself;
  the duplicate term is dropped (a factor of 2 that the next batch-norm or the linear head absorbs).
- ``UnmappableCell``: the output is identically zero (every path to it crosses a ``none`` edge, NAS-Bench-201),
  not connected to the input (NAS-Bench-101), or the layers break a rule of the spec (``invalid_spec``: e.g. a
  large cell of multi-layer ops past the depth limit). The importers skip such cells and count them.

Malformed input (an unknown op, a bad cell string, a non-DAG adjacency) raises ``CellFormatError``: it means a
wrong or corrupt source file, so importers stop. Isomorphic cells may map to the same network (and arch_id).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from narch.core.errors import NarchError
from narch.search_space import Layer, Network, SpecError, add, avgpool, conv, maxpool

CELL_MAPPING_VERSION = 1
"""Bump when the mapping changes: it is part of every imported corpus's protocol (and so its hash)."""

NB201_CHANNELS = 16
NB101_CHANNELS = 128
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")


class CellFormatError(NarchError, ValueError):
    """A cell that is not well formed (wrong or corrupt source); the message names the cell and the rule."""


class UnmappableCell(NarchError, ValueError):
    """A well-formed cell with no sensible layer DAG; ``reason`` is a short code to count by."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CellMapping:
    """A mapped cell: the network and the approximations applied (note -> count)."""

    net: Network
    notes: dict[str, int]


CellOp = tuple[Layer, ...] | None
"""What one operation of a cell becomes: a chain of layers, each reading the one before (the first reads the op's
source); the empty chain is a skip (the identity) and None is zero (``none``: as if the edge were not there)."""


def nb201_ops(channels: int = NB201_CHANNELS) -> dict[str, CellOp]:
    """NAS-Bench-201's operations (``NB201_OPS``) at ``channels``."""
    return {"none": None, "skip_connect": (), "nor_conv_1x1": (conv(channels, 1),),
            "nor_conv_3x3": (conv(channels, 3),), "avg_pool_3x3": (avgpool(3, 1),)}


def nb101_ops(channels: int = NB101_CHANNELS) -> dict[str, CellOp]:
    """NAS-Bench-101's operations (``NB101_OPS``) at ``channels``."""
    return {"conv3x3-bn-relu": (conv(channels, 3),), "conv1x1-bn-relu": (conv(channels, 1),),
            "maxpool3x3": (maxpool(3, 1),)}


class _Emitter:
    """Appends layers; a layer reading the previous one keeps ``inputs`` empty (the spec's canonical form)."""

    def __init__(self, stem: Sequence[Layer], ops: Mapping[str, CellOp]) -> None:
        self.layers: list[Layer] = list(stem)
        self.ops = ops
        self.notes: Counter[str] = Counter()

    def _reading(self, layer: Layer, src: int) -> int:
        if src != len(self.layers) - 1:
            layer = replace(layer, inputs=(src,))
        self.layers.append(layer)
        return len(self.layers) - 1

    def apply(self, op: str, src: int) -> int:
        """The layer index holding ``op(src)``; a skip returns ``src`` itself."""
        for layer in self.ops[op] or ():
            src = self._reading(layer, src)
        return src

    def total(self, terms: Sequence[int]) -> int:
        """The layer index holding the sum of ``terms`` (an add chain); duplicate terms are dropped."""
        unique = list(dict.fromkeys(terms))
        if len(unique) < len(terms):
            self.notes["self_add"] += len(terms) - len(unique)
        acc = unique[0]
        for t in unique[1:]:
            self.layers.append(add(acc, t))
            acc = len(self.layers) - 1
        return acc

    def network(self, out: int, cell: str) -> CellMapping:
        if out != len(self.layers) - 1:  # pragma: no cover - pruning guarantees it; kept as a guard
            raise UnmappableCell("output_not_last", f"cell {cell}: its output (layer {out}) is not the last layer")
        try:
            net = Network(tuple(self.layers))
        except SpecError as e:
            raise UnmappableCell("invalid_spec", f"cell {cell}: {e}") from None
        return CellMapping(net, {k: v for k, v in sorted(self.notes.items()) if v})


_NB201_NODE = re.compile(r"^\|(.+)\|$")


def parse_edge_string(arch_str: str, *, ops: Collection[str], nodes: int | None = None) -> dict[tuple[int, int], str]:
    """Edges (source, target) -> op of a cell string in NAS-Bench-201's form ``|op~0|+|op~0|op~1|+...``: node j's
    group names the ops of its j incoming edges (any number of groups unless ``nodes`` fixes it)."""
    groups = arch_str.split("+")
    if nodes is not None and len(groups) != nodes - 1:
        raise CellFormatError(f"cell {arch_str!r}: expected {nodes - 1} node groups joined by '+', got {len(groups)}")
    edges: dict[tuple[int, int], str] = {}
    for j, group in enumerate(groups, start=1):
        m = _NB201_NODE.match(group)
        parts = m.group(1).split("|") if m else []
        if len(parts) != j:
            raise CellFormatError(f"cell {arch_str!r}: node {j} needs {j} edges '|op~i|...', got {group!r}")
        for i, part in enumerate(parts):
            op, _, src = part.partition("~")
            if src != str(i):
                raise CellFormatError(f"cell {arch_str!r}: node {j} edge {i} must read node {i}, got {part!r}")
            if op not in ops:
                raise CellFormatError(f"cell {arch_str!r}: unknown op {op!r} (known: {', '.join(ops)})")
            edges[(i, j)] = op
    return edges


def parse_nb201(arch_str: str) -> dict[tuple[int, int], str]:
    """Edges (source, target) -> op of a NAS-Bench-201 cell string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    return parse_edge_string(arch_str, ops=NB201_OPS, nodes=4)


def node_cell_json(adjacency: Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """A cell in node form as the ``bench_cell`` column holds it: canonical JSON of {"adjacency", "ops"}."""
    return json.dumps({"adjacency": [[int(v) for v in r] for r in adjacency], "ops": list(ops)},
                      separators=(",", ":"))


def edges_to_nodes(edges: Mapping[tuple[int, int], str], n: int) -> tuple[list[list[int]], list[str]]:
    """An ops-on-edges cell of ``n`` nodes in node form (the usual conversion): the input, one node per edge
    carrying its op (``none`` included, so every cell of a space has the same graph), the output. The node of
    edge (i, j) reads the nodes of the edges into i (the input for i = 0) and feeds those out of j (the output for
    j = n - 1)."""
    order = sorted(edges)
    m = len(order) + 2
    adj = [[0] * m for _ in range(m)]
    node = {e: k + 1 for k, e in enumerate(order)}
    for (i, j), a in node.items():
        for (_, l2), b in node.items():
            if l2 == i:
                adj[b][a] = 1
        if i == 0:
            adj[0][a] = 1
        if j == n - 1:
            adj[a][m - 1] = 1
    return adj, ["input", *(edges[e] for e in order), "output"]


def edge_cell_network(edges: Mapping[tuple[int, int], str], n: int, ops: Mapping[str, CellOp], *,
                      stem: Sequence[Layer], cell: str) -> CellMapping:
    """The layer DAG of a cell with operations on its edges (NAS-Bench-201's form): node 0 is the output of
    ``stem``, node j sums ``op(node i)`` over its incoming edges (i, j) (a missing edge is zero), node n - 1 is
    the output. ``ops`` maps every op name the edges use (see the module docstring for the rules)."""
    for (i, j), op in edges.items():
        if not 0 <= i < j < n:
            raise CellFormatError(f"cell {cell}: edge {i}->{j} is not an edge of a {n}-node DAG in node order")
        if op not in ops:
            raise CellFormatError(f"cell {cell}: edge {i}->{j} has unknown op {op!r} (known: {', '.join(ops)})")

    def live(i: int, j: int) -> bool:
        op = edges.get((i, j))
        return op is not None and ops[op] is not None

    nonzero = [True] + [False] * (n - 1)
    for j in range(1, n):
        nonzero[j] = any(live(i, j) and nonzero[i] for i in range(j))
    if not nonzero[n - 1]:
        msg = f"cell {cell}: the output is zero (every path to it crosses a 'none' edge)"
        raise UnmappableCell("zero_output", msg)
    alive = [False] * (n - 1) + [True]
    for i in range(n - 2, -1, -1):
        alive[i] = nonzero[i] and any(live(i, k) and alive[k] for k in range(i + 1, n))
    em = _Emitter(stem, ops)
    em.notes["zero_node"] = sum(not z for z in nonzero[1:])
    em.notes["dead_node"] = sum(z and not a for z, a in zip(nonzero[1:], alive[1:], strict=True))
    idx: dict[int, int] = {0: len(stem) - 1}
    for j in range(1, n):
        if not alive[j]:
            continue
        terms = [em.apply(edges[(i, j)], idx[i]) for i in range(j) if live(i, j) and alive[i]]
        idx[j] = em.total(terms)
    return em.network(idx[n - 1], cell)


def nb201_network(arch_str: str, *, channels: int = NB201_CHANNELS) -> CellMapping:
    """The layer DAG of a NAS-Bench-201 cell (see the module docstring for the rules)."""
    return edge_cell_network(parse_nb201(arch_str), 4, nb201_ops(channels), stem=(conv(channels, 3),), cell=arch_str)


def node_cell_network(
    adjacency: Sequence[Sequence[int]],
    ops: Sequence[str],
    table: Mapping[str, CellOp],
    *,
    stem: Sequence[Layer],
    input_op: str = "input",
    output_op: str = "output",
) -> CellMapping:
    """The layer DAG of a cell with operations on its nodes (NAS-Bench-101's form): an upper-triangular 0/1
    adjacency and one op label per node, ``input_op`` first and ``output_op`` last. Node 0 is the output of
    ``stem``; an interior node applies its op to the sum of its inputs; the output sums its inputs."""
    n = len(ops)
    cell = f"{[list(map(int, r)) for r in adjacency]} {list(ops)}"
    if n < 2 or len(adjacency) != n or any(len(r) != n for r in adjacency):
        raise CellFormatError(f"cell {cell}: adjacency must be {n}x{n} for {n} ops")
    if ops[0] != input_op or ops[-1] != output_op:
        raise CellFormatError(f"cell {cell}: the first op must be {input_op!r} and the last {output_op!r}")
    for j, op in enumerate(ops[1:-1], start=1):
        if op not in table:
            raise CellFormatError(f"cell {cell}: node {j} has unknown op {op!r} (known: {', '.join(table)})")
    for i in range(n):
        for j in range(n):
            v = adjacency[i][j]
            if v not in (0, 1):
                raise CellFormatError(f"cell {cell}: adjacency[{i}][{j}] must be 0 or 1, got {v!r}")
            if v and j <= i:
                raise CellFormatError(f"cell {cell}: edge {i}->{j} breaks the upper-triangular (DAG) order")
    zero = [0 < j < n - 1 and table[ops[j]] is None for j in range(n)]  # a 'none' node outputs zero
    reach_in = [True] + [False] * (n - 1)
    for j in range(1, n):
        reach_in[j] = not zero[j] and any(adjacency[i][j] and reach_in[i] for i in range(j))
    if not reach_in[n - 1]:
        raise UnmappableCell("disconnected_output", f"cell {cell}: the output is not connected to the input")
    alive = [False] * (n - 1) + [True]
    for i in range(n - 2, -1, -1):
        alive[i] = reach_in[i] and any(adjacency[i][k] and alive[k] for k in range(i + 1, n))
    em = _Emitter(stem, table)
    em.notes["dead_node"] = sum(not a and not z for a, z in zip(alive[1:-1], zero[1:-1], strict=True))
    em.notes["zero_node"] = sum(zero)
    idx: dict[int, int] = {0: len(stem) - 1}
    for j in range(1, n):
        if not alive[j]:
            continue
        summed = em.total([idx[i] for i in range(j) if adjacency[i][j] and alive[i]])
        idx[j] = summed if j == n - 1 else em.apply(ops[j], summed)
    return em.network(idx[n - 1], cell)


def nb101_network(
    adjacency: Sequence[Sequence[int]], ops: Sequence[str], *, channels: int = NB101_CHANNELS
) -> CellMapping:
    """The layer DAG of a NAS-Bench-101-style cell: an upper-triangular 0/1 adjacency and op labels
    (``input``, ``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``, ``output``)."""
    return node_cell_network(adjacency, ops, nb101_ops(channels), stem=(conv(channels, 3),))
