"""Fast enumeration of legal moves: the same set as ``search_space.legal_moves``, without building every child.

``legal_moves`` builds and validates each of the ~100-500 candidate children of a network (10-100 ms), which would
cap the controller at a few dozen environment steps per second. Here legality is decided on the search space's lean
shape trace (``trace.shape_keys`` and its one shape rule ``trace.step``): layers become (channels, downsample
factor, flat) triples, an insert is checked once per *shape effect*
(a conv's kernel never changes legality, only its channels and stride do) and re-traced only from the insert
position on, and an add-join is legal iff its two inputs have equal shapes. A test checks the result equals
``legal_moves`` on random networks and walks; children are built only for the moves actually taken.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from narch.search_space import Layer, Move, MoveKind, MoveVocab, Network, Op, SpecError
from narch.search_space.layer import POOL_OPS
from narch.search_space.trace import ShapeKey, shape_keys, step, width
from narch.search_space.validate import Limits, infer_shapes

Effect = tuple[Op, int, int]  # what an inserted layer does to shapes: (op class, width, stride)
_Row = tuple[Op, int, int, tuple[int, ...], int]  # (op, channels or units, stride, explicit inputs, conv groups)


@dataclass(frozen=True, slots=True)
class _NetInfo:
    rows: list[_Row]
    shapes: list[ShapeKey]
    readers: list[int]  # per layer, the last layer reading it explicitly (-1: none)
    inp: ShapeKey


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


def _stepped(op: Op, size: int, stride: int, src: ShapeKey) -> ShapeKey:
    """The trace's shape rule for a layer of a constructed network (which never reads a flat tensor spatially)."""
    out = step(op, size, stride, src)
    assert out is not None, "a constructed Network never reads a flat tensor spatially"
    return out


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
        self._infos: OrderedDict[Network, _NetInfo] = OrderedDict()
        self._groups: dict[ShapeKey, tuple[frozenset[Effect], list[tuple[ShapeKey, frozenset[Effect]]]]] = {}

    def shapes(self, net: Network) -> list[ShapeKey]:
        """Shapes under the vocabulary's limits, fully validated (raises SpecError)."""
        s = infer_shapes(net, in_channels=self.in_channels, limits=self.limits)
        return [(x.channels, x.factor, x.flat) for x in s]

    def info(self, net: Network) -> _NetInfo:
        """Cached lean description of a network (see ``_info``)."""
        hit = self._infos.get(net)
        if hit is None:
            hit = self._infos[net] = self._info(net)
            if len(self._infos) > self.max_entries:
                self._infos.popitem(last=False)
        return hit

    def _info(self, net: Network) -> _NetInfo:
        """Lean per-layer rows, the trace's shapes and the last explicit readers of a network (it was validated on
        construction; only the vocabulary's tighter depth and downsampling limits are checked here)."""
        layers = net.layers
        n = len(layers)
        if n > self.limits.max_layers:
            raise SpecError(f"arch: {n} layers exceed the depth limit of {self.limits.max_layers}")
        rows: list[_Row] = [(x.op, width(x), x.stride, x.inputs, x.groups) for x in layers]
        shapes = shape_keys(net, self.in_channels)
        max_down = self.limits.max_downsample
        readers = [-1] * n
        for i, (x, out) in enumerate(zip(layers, shapes, strict=True)):
            for j in x.inputs:
                if j >= 0:
                    readers[j] = i
            if not out[2] and out[1] > max_down:
                raise SpecError(f"layer {i}: total downsampling {out[1]} exceeds {max_down}")
        return _NetInfo(rows, shapes, readers, (self.in_channels, 1, False))

    @staticmethod
    def _trace_ok(info: _NetInfo, start: int, first: ShapeKey, max_down: int, *, changed: int = -1,
                  changed_shape: ShapeKey | None = None) -> bool:
        """Re-trace old layers ``start..`` when the tensor their first one reads implicitly became ``first``.

        Explicit references keep pointing at the same old layers, whose new shapes replace the old as the trace
        proceeds (``changed``: a layer before ``start`` whose own shape became ``changed_shape``). The trace stops
        early once the implicit chain is back to the old shapes and no later layer reads a changed one: the rest
        of the (valid) network then sees exactly what it saw before.
        """
        rows, shapes, readers, inp = info.rows, info.shapes, info.readers, info.inp
        new: dict[int, ShapeKey] = {}
        pending = -1
        if changed >= 0:
            assert changed_shape is not None
            new[changed] = changed_shape
            pending = readers[changed]
        prev = first
        for i in range(start, len(rows)):
            op, size, stride, ins, groups = rows[i]
            if op == Op.ADD:
                a, b = ins
                sa = inp if a == -1 else new.get(a, shapes[a])
                sb = inp if b == -1 else new.get(b, shapes[b])
                if sa != sb:
                    return False
                out = sa
            else:
                if ins:
                    j = ins[0]
                    src = inp if j == -1 else new.get(j, shapes[j])
                else:
                    src = prev
                o = step(op, size, stride, src)
                if o is None or src[0] % groups:  # a grouped conv's groups must divide what it reads
                    return False
                out = o
            if not out[2] and out[1] > max_down:
                return False
            if out != shapes[i]:
                new[i] = out
                if readers[i] > pending:
                    pending = readers[i]
            elif i >= pending:
                return True
            prev = out
        return True

    def _effect_groups(self, src: ShapeKey) -> tuple[frozenset[Effect], list[tuple[ShapeKey, frozenset[Effect]]]]:
        """For an insert reading ``src``: the shape-preserving effects, and the others grouped by output shape
        (memoised: input shapes repeat across positions and networks)."""
        hit = self._groups.get(src)
        if hit is None:
            same: list[Effect] = []
            by_out: dict[ShapeKey, list[Effect]] = {}
            for eff in self._by_effect:
                o = step(*eff, src)
                if o is None or (not o[2] and o[1] > self.limits.max_downsample):
                    continue
                if o == src:
                    same.append(eff)
                else:
                    by_out.setdefault(o, []).append(eff)
            hit = self._groups[src] = (frozenset(same), [(o, frozenset(e)) for o, e in by_out.items()])
        return hit

    def insert_room(self, info: _NetInfo) -> bool:
        return len(info.rows) + 1 <= self.limits.max_layers

    def shape_preserving_at(self, info: _NetInfo, at: int) -> bool:
        """Whether some insert at ``at`` keeps the shape (then the position surely has a legal insert)."""
        src = info.shapes[at - 1] if at > 0 else info.inp
        return bool(self._effect_groups(src)[0])

    def effects_at(self, info: _NetInfo, at: int) -> frozenset[Effect]:
        """The shape effects a legal insert at position ``at`` may have (empty past the depth limit)."""
        if not self.insert_room(info):
            return frozenset()
        src = info.shapes[at - 1] if at > 0 else info.inp
        legal, groups = self._effect_groups(src)
        max_down = self.limits.max_downsample
        for o, effs in groups:
            if self._trace_ok(info, at, o, max_down):
                legal = legal | effs
        return legal

    def _insert_effects(self, info: _NetInfo) -> list[frozenset[Effect]]:
        """Per insert position 0..n, the shape effects a legal insert there may have."""
        return [self.effects_at(info, at) for at in range(len(info.rows) + 1)]

    def insert_layers(self, effects: frozenset[Effect]) -> list[Layer]:
        """The insertable layers with these effects, in vocabulary order."""
        return [x for eff in self._by_effect if eff in effects for x in self._by_effect[eff]]

    def add_pairs(self, info: _NetInfo) -> list[tuple[int, list[int]]]:
        """Per layer b that an add may join (ascending), the earlier layers a it may join it with (ascending, -1:
        the network input): those of equal shape."""
        shapes = info.shapes
        if len(shapes) + 1 > self.limits.max_layers:
            return []
        seen: dict[ShapeKey, list[int]] = {(self.in_channels, 1, False): [-1]}
        out = []
        for b, key in enumerate(shapes):
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = [b]
            else:
                out.append((b, list(earlier)))
                earlier.append(b)
        return out

    def adds(self, info: _NetInfo) -> list[Move]:
        return [Move(MoveKind.INSERT_ADD, b, other=a) for b, earlier in self.add_pairs(info) for a in earlier]

    def _scales(self, net: Network, info: _NetInfo) -> list[Move]:
        return [m for i in range(len(info.rows)) for m in self.scales_of(net, info, i)]

    def scale_surely_legal(self, net: Network, i: int) -> bool:
        """Whether layer i has a scale that cannot change any shape (a conv's kernel, a dropout's rate)."""
        layer, lim = net.layers[i], self.limits
        if layer.op == Op.CONV:
            return any(v != layer.kernel and v in lim.kernels for v in self.vocab.conv_kernels)
        if layer.op == Op.DROPOUT:
            return any(v != layer.dropout_pct and 0 < v <= lim.max_dropout_pct for v in self.vocab.dropout_pcts)
        return False

    def scales_of(self, net: Network, info: _NetInfo, i: int) -> list[Move]:
        """The legal scale moves of layer i."""
        out: list[Move] = []
        shapes, inp, lim = info.shapes, info.inp, self.limits
        max_down = lim.max_downsample
        vocab = self.vocab
        layer = net.layers[i]
        op = layer.op
        if op == Op.ADD:
            return out
        j = layer.inputs[0] if layer.inputs else i - 1
        src = inp if j == -1 else shapes[j]
        cands: list[tuple[str, int, ShapeKey | None]] = []  # (attr, value, new output shape; None: unchanged)
        if op == Op.CONV:
            cands += [("channels", v, _stepped(op, v, layer.stride, src)) for v in vocab.conv_channels
                      if v != layer.channels and 1 <= v <= lim.max_channels and v % layer.groups == 0]
            cands += [("kernel", v, None) for v in vocab.conv_kernels if v != layer.kernel and v in lim.kernels]
        elif op in POOL_OPS:
            for v in vocab.pool_kernels:
                stride = v if layer.stride == layer.kernel else layer.stride
                if v == layer.kernel or v not in lim.pool_kernels or (stride == 1 and v % 2 == 0):
                    continue
                cands.append(("kernel", v, _stepped(op, 0, stride, src)))
        elif op == Op.DENSE:
            cands += [("units", v, _stepped(op, v, 1, src)) for v in vocab.dense_units
                      if v != layer.units and 1 <= v <= lim.max_units]
        elif op == Op.DROPOUT:
            cands += [("dropout_pct", v, None) for v in vocab.dropout_pcts
                      if v != layer.dropout_pct and 0 < v <= lim.max_dropout_pct]
        for attr, v, o in cands:
            if o is not None and o != shapes[i]:
                if not o[2] and o[1] > max_down:
                    continue
                if not self._trace_ok(info, i + 1, o, max_down, changed=i, changed_shape=o):
                    continue
            out.append(Move(MoveKind.SCALE, i, attr=attr, value=v))
        return out

    def removable(self, info: _NetInfo) -> list[int]:
        """The layers a remove may delete (ascending)."""
        n = len(info.rows)
        if not self.vocab.allow_remove or n <= 1:
            return []
        out = []
        for i in range(n):
            if info.readers[i] >= 0:
                continue  # a later layer reads it explicitly
            # The layer after i now reads what i read implicitly (layer i - 1): trace as if i's output were that.
            first = info.shapes[i - 1] if i > 0 else info.inp
            if first == info.shapes[i] or self._trace_ok(info, i + 1, first, self.limits.max_downsample,
                                                         changed=i, changed_shape=first):
                out.append(i)
        return out

    def removes(self, info: _NetInfo) -> list[Move]:
        return [Move(MoveKind.REMOVE, i) for i in self.removable(info)]

    def legal(self, net: Network) -> LegalMoves:
        """The legal moves of ``net`` (cached): insert effects per position, and the other moves spelled out."""
        hit = self._cache.get(net)
        if hit is not None:
            return hit
        info = self.info(net)
        out = LegalMoves(self._insert_effects(info), self.adds(info) + self._scales(net, info) + self.removes(info))
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
