"""Fast enumeration of legal moves: the same set as ``search_space.legal_moves``, without building every child.

``legal_moves`` builds and validates each of the ~100-500 candidate children of a network (10-100 ms), which would
cap the controller at a few dozen environment steps per second. Here legality is decided on a lean shape
trace: layers become (channels, downsample factor, flat) triples, an insert is checked once per *shape effect*
(a conv's kernel never changes legality, only its channels and stride do) and re-traced only from the insert
position on, and an add-join is legal iff its two inputs have equal shapes. A test checks the result equals
``legal_moves`` on random networks and walks; children are built only for the moves actually taken.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from search_space import Layer, Move, MoveKind, MoveVocab, Network, Op, SpecError
from search_space.moves import SCALABLE
from search_space.spec import POOL_OPS
from search_space.validate import Limits, infer_shapes

Shape = tuple[int, int, bool]  # (channels or units, downsample factor, flat)
Effect = tuple[Op, int, int]  # what an inserted layer does to shapes: (op class, width, stride)


@dataclass(frozen=True, slots=True)
class LegalMoves:
    """A network's legal moves: per insert position the legal shape effects, and every other move."""

    insert_effects: list[frozenset[Effect]]
    others: list[Move]


def _self_valid(layer: Layer, lim: Limits) -> bool:
    """Whether an insertable layer passes the per-layer rules on its own (it reads a spatial tensor)."""
    try:
        infer_shapes(Network((Layer(Op.CONV, channels=8), layer)), limits=lim)
    except SpecError:
        return False
    return True


def _effect(layer: Layer) -> Effect:
    """What an inserted layer does to shapes: everything legality depends on."""
    match layer.op:
        case Op.CONV:
            return (Op.CONV, layer.channels, layer.stride)
        case Op.MAXPOOL | Op.AVGPOOL:
            return (Op.MAXPOOL, 0, layer.stride)
        case Op.DENSE:
            return (Op.DENSE, layer.units, 1)
    return (Op.DROPOUT, 0, 1)


def _out(op: Op, size: int, stride: int, src: Shape) -> Shape | None:
    """Output shape of a single-input layer reading ``src``; None when the read is illegal."""
    if op == Op.CONV:
        return None if src[2] else (size, src[1] * stride, False)
    if op in POOL_OPS:
        return None if src[2] else (src[0], src[1] * stride, False)
    if op == Op.DENSE:
        return (size, 1, True)
    return src


def _layer_params(layer: Layer) -> tuple[Op, int, int]:
    size = layer.channels if layer.op == Op.CONV else layer.units
    return (layer.op, size, layer.stride)


class MoveTable:
    """Legal moves of networks under one vocabulary, cached per network (FIFO, bounded)."""

    def __init__(self, vocab: MoveVocab | None = None, *, in_channels: int = 1, max_entries: int = 50_000) -> None:
        self.vocab = vocab or MoveVocab()
        self.limits = self.vocab.limits()
        self.in_channels = in_channels
        self.max_entries = max_entries
        layers = [x for x in self.vocab.insertable_layers() if _self_valid(x, self.limits)]
        self._by_effect: dict[Effect, list[Layer]] = {}
        for x in layers:
            self._by_effect.setdefault(_effect(x), []).append(x)
        self._cache: OrderedDict[Network, LegalMoves] = OrderedDict()

    def shapes(self, net: Network) -> list[Shape]:
        s = infer_shapes(net, in_channels=self.in_channels, limits=self.limits)
        return [(x.channels, x.factor, x.flat) for x in s]

    def _trace_ok(self, net: Network, shapes: list[Shape], start: int, first: Shape) -> bool:
        """Re-trace old layers ``start..`` when the tensor their first one reads implicitly became ``first``.

        ``shapes`` are the old shapes by old index (patched by the caller where a layer itself changed); explicit
        references keep pointing at the same old layers, whose new shapes replace the old as the trace proceeds.
        """
        max_down = self.limits.max_downsample
        new: dict[int, Shape] = {}
        prev = first
        inp: Shape = (self.in_channels, 1, False)

        def shape_of(j: int) -> Shape:
            if j == -1:
                return inp
            return new.get(j, shapes[j])

        for i in range(start, len(net.layers)):
            layer = net.layers[i]
            if layer.op == Op.ADD:
                a, b = layer.inputs
                sa, sb = shape_of(a), shape_of(b)
                if sa != sb:
                    return False
                out = sa
            else:
                src = shape_of(layer.inputs[0]) if layer.inputs else prev
                op, size, stride = _layer_params(layer)
                o = _out(op, size, stride, src)
                if o is None:
                    return False
                out = o
            if not out[2] and out[1] > max_down:
                return False
            new[i] = out
            prev = out
        return True

    def _insert_effects(self, net: Network, shapes: list[Shape]) -> list[frozenset[Effect]]:
        """Per insert position 0..n, the shape effects a legal insert there may have."""
        n = len(net.layers)
        if n + 1 > self.limits.max_layers:
            return [frozenset()] * (n + 1)
        out = []
        inp: Shape = (self.in_channels, 1, False)
        for at in range(n + 1):
            src = shapes[at - 1] if at > 0 else inp
            ok: dict[Shape, bool] = {}
            legal = []
            for eff in self._by_effect:
                o = _out(*eff, src)
                if o is None or (not o[2] and o[1] > self.limits.max_downsample):
                    continue
                if o != src:
                    if o not in ok:
                        ok[o] = self._trace_ok(net, shapes, at, o)
                    if not ok[o]:
                        continue
                legal.append(eff)
            out.append(frozenset(legal))
        return out

    def insert_layers(self, effects: frozenset[Effect]) -> list[Layer]:
        """The insertable layers with these effects, in vocabulary order."""
        return [x for eff in self._by_effect if eff in effects for x in self._by_effect[eff]]

    def _adds(self, net: Network, shapes: list[Shape]) -> list[Move]:
        n = len(net.layers)
        if n + 1 > self.limits.max_layers:
            return []
        inp: Shape = (self.in_channels, 1, False)
        return [
            Move(MoveKind.INSERT_ADD, b, other=a)
            for b in range(n)
            for a in range(-1, b)
            if (inp if a == -1 else shapes[a]) == shapes[b]
        ]

    def _scales(self, net: Network, shapes: list[Shape]) -> list[Move]:
        out: list[Move] = []
        inp: Shape = (self.in_channels, 1, False)
        lim = self.limits
        for i, layer in enumerate(net.layers):
            j = layer.inputs[0] if layer.inputs else i - 1
            src = inp if j == -1 else shapes[j]
            for attr in SCALABLE[layer.op]:
                for v in self.vocab.scale_values(layer.op, attr):
                    if v == getattr(layer, attr):
                        continue
                    if self._scale_ok(net, shapes, i, layer, src, attr, v, lim):
                        out.append(Move(MoveKind.SCALE, i, attr=attr, value=v))
        return out

    def _scale_ok(
        self, net: Network, shapes: list[Shape], i: int, layer: Layer, src: Shape, attr: str, v: int, lim: Limits
    ) -> bool:
        match attr:
            case "dropout_pct":
                return 0 < v <= lim.max_dropout_pct
            case "kernel" if layer.op == Op.CONV:
                return v in lim.kernels
            case "kernel":
                stride = v if layer.stride == layer.kernel else layer.stride
                if v not in lim.pool_kernels or (stride == 1 and v % 2 == 0):
                    return False
                o = _out(layer.op, 0, stride, src)
            case "channels":
                if not 1 <= v <= lim.max_channels:
                    return False
                o = _out(Op.CONV, v, layer.stride, src)
            case "units":
                if not 1 <= v <= lim.max_units:
                    return False
                o = (v, 1, True)
            case _:
                return False
        if o is None or (not o[2] and o[1] > lim.max_downsample):
            return False
        if o == shapes[i]:
            return True
        patched = list(shapes)
        patched[i] = o
        return self._trace_ok(net, patched, i + 1, o)

    def _removes(self, net: Network, shapes: list[Shape]) -> list[Move]:
        n = len(net.layers)
        if not self.vocab.allow_remove or n <= 1:
            return []
        read = {j for x in net.layers for j in x.inputs}
        inp: Shape = (self.in_channels, 1, False)
        return [Move(MoveKind.REMOVE, i) for i in range(n) if i not in read and self._remove_ok(net, shapes, i, inp)]

    def _remove_ok(self, net: Network, shapes: list[Shape], i: int, inp: Shape) -> bool:
        first = shapes[i - 1] if i > 0 else inp
        if first == shapes[i]:
            return True
        # The layer after i now reads what i read implicitly (layer i - 1), so trace as if i's output were that.
        patched = list(shapes)
        patched[i] = first
        return self._trace_ok(net, patched, i + 1, first)

    def legal(self, net: Network) -> LegalMoves:
        """The legal moves of ``net`` (cached): insert effects per position, and the other moves spelled out."""
        hit = self._cache.get(net)
        if hit is not None:
            return hit
        shapes = self.shapes(net)
        out = LegalMoves(self._insert_effects(net, shapes),
                         self._adds(net, shapes) + self._scales(net, shapes) + self._removes(net, shapes))
        self._cache[net] = out
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return out

    def moves(self, net: Network) -> list[Move]:
        """Every legal move of ``net`` as a list (the same set as ``search_space.legal_moves``)."""
        lm = self.legal(net)
        ins = [Move(MoveKind.INSERT, at, x) for at, effs in enumerate(lm.insert_effects) if effs
               for x in self.insert_layers(effs)]
        return ins + lm.others
