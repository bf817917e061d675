"""Moves as pure functions (insert, insert_add, scale, remove) and the enumeration of legal moves."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from narch.core.files import parse_json
from narch.search_space.layer import POOL_OPS, Layer, Op, SpecError
from narch.search_space.spec import Network
from narch.search_space.validate import LIMITS, Limits, infer_shapes


class MoveError(SpecError):
    """A move that cannot be applied; the message names the move, the layer and the rule."""


class MoveKind(StrEnum):
    """The kinds of edit the controller and the random walks use."""

    INSERT = "insert"
    INSERT_ADD = "insert_add"
    SCALE = "scale"
    REMOVE = "remove"


SCALABLE: dict[Op, tuple[str, ...]] = {
    Op.CONV: ("channels", "kernel"),
    Op.MAXPOOL: ("kernel",),
    Op.AVGPOOL: ("kernel",),
    Op.DENSE: ("units",),
    Op.DROPOUT: ("dropout_pct",),
    Op.ADD: (),
}


MOVE_FIELDS: dict[MoveKind, tuple[str, ...]] = {
    MoveKind.INSERT: ("layer",),
    MoveKind.INSERT_ADD: ("other",),
    MoveKind.SCALE: ("attr", "value"),
    MoveKind.REMOVE: (),
}
"""The fields each kind's JSON carries besides ``kind`` and ``at``."""


@dataclass(frozen=True, slots=True)
class Move:
    """One edit. ``at`` is the position (insert), the layer (scale, remove) or the later input (insert_add)."""

    kind: MoveKind
    at: int
    layer: Layer | None = None
    other: int = 0
    attr: str = ""
    value: int = 0

    def to_json(self) -> str:
        """Canonical JSON, stored in the corpus's ``move`` column."""
        d: dict[str, Any] = {"kind": self.kind.value, "at": self.at}
        match self.kind:
            case MoveKind.INSERT:
                if self.layer is None:
                    raise MoveError("insert: the move carries no layer")
                d["layer"] = self.layer.to_dict()
            case MoveKind.INSERT_ADD:
                d["other"] = self.other
            case MoveKind.SCALE:
                d["attr"], d["value"] = self.attr, self.value
            case MoveKind.REMOVE:
                pass
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Move:
        """Parse a move in the form to_json writes (exactly the fields its kind uses); else raise MoveError."""
        d = parse_json(text, error=MoveError, what="move")
        if not isinstance(d, dict):
            raise MoveError(f"move: expected a JSON object, got {type(d).__name__}")
        try:
            kind = MoveKind(d.get("kind"))
        except ValueError:
            raise MoveError(
                f"move: unknown kind {d.get('kind')!r} (known: {', '.join(k.value for k in MoveKind)})"
            ) from None
        want = {"kind", "at", *MOVE_FIELDS[kind]}
        if set(d) != want:
            missing, extra = sorted(want - set(d)), sorted(set(d) - want)
            raise MoveError(f"move {kind.value}: missing field(s) {missing}, unexpected field(s) {extra}")
        for name in {"at", "other", "value"} & want:
            if isinstance(d[name], bool) or not isinstance(d[name], int):
                raise MoveError(f"move {kind.value}: field {name!r} must be an integer, got {d[name]!r}")
        if "attr" in want and not isinstance(d["attr"], str):
            raise MoveError(f"move {kind.value}: field 'attr' must be a string, got {d['attr']!r}")
        try:
            layer = Layer.from_dict(d["layer"]) if "layer" in want else None
        except SpecError as e:
            raise MoveError(f"move {kind.value}: {e}") from None
        return Move(kind, d["at"], layer, d.get("other", 0), d.get("attr", ""), d.get("value", 0))


def _shift(layer: Layer, pos: int, delta: int) -> Layer:
    if not layer.inputs:
        return layer
    return replace(layer, inputs=tuple(j + delta if j >= pos else j for j in layer.inputs))


def _build(layers: list[Layer], what: str) -> Network:
    try:
        return Network(tuple(layers))
    except MoveError:
        raise
    except SpecError as e:
        raise MoveError(f"{what}: {e}") from None


def insert(net: Network, at: int, layer: Layer) -> Network:
    """Insert ``layer`` before position ``at`` (0..len); later references shift by one."""
    if not 0 <= at <= len(net.layers):
        raise MoveError(f"insert at {at}: position must be in 0..{len(net.layers)}")
    layers = list(net.layers[:at]) + [layer] + [_shift(x, at, 1) for x in net.layers[at:]]
    return _build(layers, f"insert {layer.op.value} at {at}")


def insert_add(net: Network, a: int, b: int) -> Network:
    """Join layers a and b (a < b) with an add placed right after b: a residual connection."""
    if not -1 <= a < b < len(net.layers):
        raise MoveError(f"insert_add({a}, {b}): need -1 <= a < b < {len(net.layers)}")
    return _build(
        list(net.layers[: b + 1]) + [Layer(Op.ADD, inputs=(a, b))] + [_shift(x, b + 1, 1) for x in net.layers[b + 1 :]],
        f"insert_add({a}, {b})",
    )


def scale(net: Network, index: int, attr: str, value: int) -> Network:
    """Set one size attribute (channels, units, kernel or dropout_pct) of one layer.

    A non-overlapping pool (stride = kernel) keeps its stride equal to the new kernel.
    """
    if not 0 <= index < len(net.layers):
        raise MoveError(f"scale layer {index}: no such layer (network has {len(net.layers)})")
    layer = net.layers[index]
    if attr not in SCALABLE[layer.op]:
        raise MoveError(f"scale layer {index}: {layer.op.value} has no scalable {attr!r} ({SCALABLE[layer.op]})")
    if getattr(layer, attr) == value:
        raise MoveError(f"scale layer {index}: {attr} is already {value}")
    changes = {attr: value}
    if layer.op in POOL_OPS and attr == "kernel" and layer.stride == layer.kernel:
        # A non-overlapping pool stays non-overlapping; otherwise no pool-kernel scale could ever validate.
        changes["stride"] = value
    layers = list(net.layers)
    layers[index] = replace(layer, **changes)
    return _build(layers, f"scale layer {index} {attr}={value}")


def remove(net: Network, index: int) -> Network:
    """Delete one layer; refused while a later layer reads it explicitly."""
    if not 0 <= index < len(net.layers):
        raise MoveError(f"remove layer {index}: no such layer (network has {len(net.layers)})")
    for k, x in enumerate(net.layers[index + 1 :], start=index + 1):
        if index in x.inputs:
            raise MoveError(f"remove layer {index}: layer {k} ({x.op.value}) reads it")
    layers = list(net.layers[:index]) + [_shift(x, index + 1, -1) for x in net.layers[index + 1 :]]
    return _build(layers, f"remove layer {index}")


def apply_move(net: Network, move: Move) -> Network:
    """Apply a Move; raises MoveError when it is illegal for this network."""
    match move.kind:
        case MoveKind.INSERT:
            if move.layer is None:
                raise MoveError("insert: the move carries no layer")
            return insert(net, move.at, move.layer)
        case MoveKind.INSERT_ADD:
            return insert_add(net, move.other, move.at)
        case MoveKind.SCALE:
            return scale(net, move.at, move.attr, move.value)
        case MoveKind.REMOVE:
            return remove(net, move.at)
    raise MoveError(f"unknown move kind {move.kind!r}")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class MoveVocab:
    """The discrete choices moves draw from (the controller's action heads index into these)."""

    conv_channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    conv_kernels: tuple[int, ...] = (1, 3, 5, 7)
    conv_strides: tuple[int, ...] = (1, 2)
    pool_kernels: tuple[int, ...] = (2, 3)
    dense_units: tuple[int, ...] = (32, 64, 128, 256)
    dropout_pcts: tuple[int, ...] = (10, 20, 30, 50)
    max_layers: int = 16
    max_downsample: int = 16
    allow_remove: bool = True

    def insertable_layers(self) -> list[Layer]:
        """Every layer an insert may place."""
        out = [
            Layer(Op.CONV, channels=c, kernel=k, stride=s)
            for c in self.conv_channels
            for k in self.conv_kernels
            for s in self.conv_strides
        ]
        out += [
            Layer(op, kernel=k, stride=s)
            for op in (Op.MAXPOOL, Op.AVGPOOL)
            for k in self.pool_kernels
            for s in sorted({1, k})
            if s == k or k % 2
        ]
        out += [Layer(Op.DENSE, units=u) for u in self.dense_units]
        out += [Layer(Op.DROPOUT, dropout_pct=p) for p in self.dropout_pcts]
        return out

    def scale_values(self, op: Op, attr: str) -> tuple[int, ...]:
        """The values a scale move may set."""
        match attr:
            case "channels":
                return self.conv_channels
            case "units":
                return self.dense_units
            case "dropout_pct":
                return self.dropout_pcts
            case "kernel":
                return self.conv_kernels if op == Op.CONV else self.pool_kernels
        return ()

    def limits(self) -> Limits:
        """Hard limits tightened by this vocabulary's depth and downsampling bounds."""
        return replace(LIMITS, max_layers=self.max_layers, max_downsample=self.max_downsample)


def candidate_moves(net: Network, vocab: MoveVocab) -> list[Move]:
    """Every move the vocabulary can express for this network, legal or not."""
    n = len(net.layers)
    out = [Move(MoveKind.INSERT, at, layer) for at in range(n + 1) for layer in vocab.insertable_layers()]
    out += [Move(MoveKind.INSERT_ADD, b, other=a) for b in range(n) for a in range(-1, b)]
    for i, layer in enumerate(net.layers):
        for attr in SCALABLE[layer.op]:
            out += [
                Move(MoveKind.SCALE, i, attr=attr, value=v)
                for v in vocab.scale_values(layer.op, attr)
                if v != getattr(layer, attr)
            ]
    if vocab.allow_remove and n > 1:
        out += [Move(MoveKind.REMOVE, i) for i in range(n)]
    return out


def try_move(net: Network, move: Move, vocab: MoveVocab) -> Network | None:
    """The child network if the move is legal under the vocabulary's limits, else None."""
    try:
        child = apply_move(net, move)
        infer_shapes(child, limits=vocab.limits())
    except SpecError:
        return None
    return child


def legal_moves(net: Network, vocab: MoveVocab | None = None) -> list[tuple[Move, Network]]:
    """Every legal move with the network it produces (the controller builds its masks from these)."""
    vocab = vocab or MoveVocab()
    out = []
    for move in candidate_moves(net, vocab):
        child = try_move(net, move, vocab)
        if child is not None:
            out.append((move, child))
    return out
