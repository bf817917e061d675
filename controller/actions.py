"""The controller's factored action space: a move is a path of choices through named heads.

The action selector picks the kind; an *insert* then picks a position (a pointer over the network's nodes), a
layer type, a size, a kernel and a stride; an *insert-add* picks the later layer and an earlier one to join; a
*scale* picks a layer, an attribute and a value; a *remove* picks a layer. Heads a move does not use are not part
of its path, so log-probabilities and entropies are summed over the heads actually used. The legal moves of a
network form a trie over these paths: a head's mask at any point is the set of children that still lead to a
legal move, so an illegal move can never be sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from narch.controller.masks import Effect, MoveTable
from narch.search_space import Layer, Move, MoveKind, MoveVocab, Network, Op

KINDS: tuple[MoveKind, ...] = (MoveKind.INSERT, MoveKind.INSERT_ADD, MoveKind.SCALE, MoveKind.REMOVE)
INSERT_OPS: tuple[Op, ...] = (Op.CONV, Op.MAXPOOL, Op.AVGPOOL, Op.DENSE, Op.DROPOUT)
POINTER_HEADS: tuple[str, ...] = ("ins_pos", "add_b", "add_a", "scale_layer", "remove_layer")
"""Heads that point at a node (node 0 = the network input, node i + 1 = layer i)."""

Path = tuple[tuple[str, int], ...]


def categorical_widths(vocab: MoveVocab) -> dict[str, int]:
    """Width of every non-pointer head under a vocabulary."""
    return {
        "kind": len(KINDS),
        "ins_op": len(INSERT_OPS),
        "ins_size": max(len(vocab.conv_channels), len(vocab.dense_units), len(vocab.dropout_pcts)),
        "ins_kernel": max(len(vocab.conv_kernels), len(vocab.pool_kernels)),
        "ins_stride": 2,
        "scale_attr": 2,
        "scale_value": max(len(vocab.conv_channels), len(vocab.dense_units), len(vocab.dropout_pcts),
                           len(vocab.conv_kernels), len(vocab.pool_kernels)),
    }


def insert_path(layer: Layer, vocab: MoveVocab) -> Path:
    """The head choices after the insert position that spell an inserted layer."""
    head: list[tuple[str, int]] = [("ins_op", INSERT_OPS.index(layer.op))]
    match layer.op:
        case Op.CONV:
            head += [("ins_size", vocab.conv_channels.index(layer.channels)),
                     ("ins_kernel", vocab.conv_kernels.index(layer.kernel)),
                     ("ins_stride", vocab.conv_strides.index(layer.stride))]
        case Op.MAXPOOL | Op.AVGPOOL:
            head += [("ins_kernel", vocab.pool_kernels.index(layer.kernel)), ("ins_stride", int(layer.stride != 1))]
        case Op.DENSE:
            head.append(("ins_size", vocab.dense_units.index(layer.units)))
        case Op.DROPOUT:
            head.append(("ins_size", vocab.dropout_pcts.index(layer.dropout_pct)))
    return tuple(head)


def move_path(move: Move, vocab: MoveVocab, net: Network) -> Path:
    """The head choices that spell a move of ``net``."""
    kind = ("kind", KINDS.index(move.kind))
    match move.kind:
        case MoveKind.INSERT:
            assert move.layer is not None
            return (kind, ("ins_pos", move.at), *insert_path(move.layer, vocab))
        case MoveKind.INSERT_ADD:
            return (kind, ("add_b", move.at + 1), ("add_a", move.other + 1))
        case MoveKind.SCALE:
            values = vocab.scale_values(net.layers[move.at].op, move.attr)
            return (kind, ("scale_layer", move.at + 1), ("scale_attr", int(move.attr == "kernel")),
                    ("scale_value", values.index(move.value)))
        case MoveKind.REMOVE:
            return (kind, ("remove_layer", move.at + 1))
    raise ValueError(f"unknown move kind {move.kind!r}")  # pragma: no cover


@dataclass
class TrieNode:
    """A decision point: which head picks next and the children each choice leads to (a node or a Move)."""

    head: str
    children: dict[int, TrieNode | Move | Layer] | Mapping[int, TrieNode | Move] = field(default_factory=dict)


Leaf = Move | Layer  # an insert's leaf is its layer (the position is an earlier choice); others are moves


def _add(root: TrieNode, path: Path, leaf: Leaf) -> None:
    node = root
    for k, (head, idx) in enumerate(path):
        if node.head != head:  # pragma: no cover - the paths above share their head order by construction
            raise AssertionError(f"head order clash: {node.head} vs {head} in {path}")
        if k == len(path) - 1:
            node.children[idx] = leaf
        else:
            nxt = node.children.get(idx)
            if nxt is None:
                nxt = node.children[idx] = TrieNode(path[k + 1][0])
            assert isinstance(nxt, TrieNode)
            node = nxt


def build_trie(moves: list[Move], vocab: MoveVocab, net: Network) -> TrieNode | None:
    """The trie of an explicit list of legal moves (None when empty); the guard's filtered lists use this."""
    if not moves:
        return None
    root = TrieNode("kind")
    for m in moves:
        path = move_path(m, vocab, net)
        if m.kind == MoveKind.INSERT:
            assert m.layer is not None
            _add(root, path, m.layer)
        else:
            _add(root, path, m)
    return root


class TrieBuilder:
    """Tries from a MoveTable's legal moves; an insert position's subtree is shared among every position and
    network with the same legal shape effects (built once), so a new network costs a few dict inserts."""

    def __init__(self, table: MoveTable) -> None:
        self.table = table
        self.vocab = table.vocab
        self._templates: dict[frozenset[Effect], TrieNode] = {}

    def template(self, effects: frozenset[Effect]) -> TrieNode:
        t = self._templates.get(effects)
        if t is None:
            t = TrieNode("ins_op")
            for layer in self.table.insert_layers(effects):
                _add(t, insert_path(layer, self.vocab), layer)
            self._templates[effects] = t
        return t

    def build(self, net: Network) -> TrieNode | None:
        """The trie of ``net``'s legal moves. Insert positions, the later layer of an insert-add, scaled and removed
        layers expand lazily: their keys (the mask) are exact up front, the subtree (or move) below is computed only
        when a choice reaches it."""
        table, info = self.table, self.table.info(net)
        root = TrieNode("kind")
        if table.insert_room(info):
            eager = {at: table.effects_at(info, at) for at in range(len(info.rows) + 1)
                     if not table.shape_preserving_at(info, at)}
            keys = [at for at in range(len(info.rows) + 1) if at not in eager or eager[at]]

            def position(at: int) -> TrieNode:
                return self.template(eager[at] if at in eager else table.effects_at(info, at))

            if keys:
                root.children[KINDS.index(MoveKind.INSERT)] = TrieNode("ins_pos", LazyChildren(keys, position))
        pairs = table.add_pairs(info)
        if pairs:
            earlier_of = dict(pairs)

            def joins(node: int) -> TrieNode:
                b = node - 1
                return TrieNode("add_a", {a + 1: Move(MoveKind.INSERT_ADD, b, other=a) for a in earlier_of[b]})

            root.children[KINDS.index(MoveKind.INSERT_ADD)] = TrieNode("add_b", LazyChildren([b + 1 for b, _ in pairs],
                                                                                             joins))
        scales = {i: table.scales_of(net, info, i) for i in range(len(info.rows))
                  if not table.scale_surely_legal(net, i)}
        keys = [i + 1 for i in range(len(info.rows)) if i not in scales or scales[i]]

        def layer(node: int) -> TrieNode:
            sub = TrieNode("scale_attr")
            moves = scales.get(node - 1)
            for m in moves if moves is not None else table.scales_of(net, info, node - 1):
                _add(sub, move_path(m, self.vocab, net)[2:], m)
            return sub

        if keys:
            root.children[KINDS.index(MoveKind.SCALE)] = TrieNode("scale_layer", LazyChildren(keys, layer))
        removable = table.removable(info)
        if removable:
            root.children[KINDS.index(MoveKind.REMOVE)] = TrieNode("remove_layer", LazyChildren(
                [i + 1 for i in removable], lambda node: Move(MoveKind.REMOVE, node - 1)))
        return root if root.children else None


class LazyChildren(Mapping[int, "TrieNode | Move"]):
    """Children whose keys are known and whose subtrees (or leaf moves) are built on first access."""

    def __init__(self, keys: list[int], make: Callable[[int], TrieNode | Move]) -> None:
        self._keys = keys
        self._make = make
        self._built: dict[int, TrieNode | Move] = {}

    def __getitem__(self, k: int) -> TrieNode | Move:
        node = self._built.get(k)
        if node is None:
            if k not in self._keys:
                raise KeyError(k)
            node = self._built[k] = self._make(k)
        return node

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def resolve(leaf: Leaf, ins_pos: int) -> Move:
    """The move a leaf stands for (an inserted layer goes at the chosen position)."""
    return leaf if isinstance(leaf, Move) else Move(MoveKind.INSERT, ins_pos, leaf)
