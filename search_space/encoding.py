"""Discrete per-layer tokens and the layer DAG of a Network, shared by the neural predictors and the controller.

A network of n layers becomes n + 1 nodes: node 0 is the network input, node i + 1 is layer i. So an add's input
-1 (the network input) is node 0, and the controller's insert positions 0..n and add sources -1..n-1 index the
same rows. Each node carries ``N_FEATURES`` small integer tokens (see ``FEATURES``); op token 0 marks padding.
Pure Python and numpy: the encoder runs inside the controller's hot loop, so encodings are cached per network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from narch.search_space.layer import Op
from narch.search_space.spec import Network
from narch.search_space.trace import TraceTable, trace_table

FEATURES = ("op", "size", "kernel", "stride", "dropout", "in_a", "in_b", "in_size", "res")
"""Token names of a node: op; output width (channels or units); kernel; stride; dropout; distance back to the first
and second input (0: none); width of the first input; resolution (downsample factor of the output, 0: flat)."""

OPS: tuple[Op, ...] = tuple(Op)
PAD_OP, INPUT_OP = 0, 1
OP_TOKEN: dict[Op, int] = {op: 2 + k for k, op in enumerate(OPS)}
OP_VOCAB = 2 + len(OPS)
SIZE_VOCAB = 25  # round(2 * log2(width)): half-octave buckets up to 4096
KERNEL_VOCAB = 10  # kernel, clipped to 9
STRIDE_VOCAB = 4  # stride, clipped to 3
DROPOUT_VOCAB = 10  # round(pct / 10)
MAX_OFFSET = 15
OFFSET_VOCAB = MAX_OFFSET + 1  # node distance to an input, clipped; 0 = no such input
RES_VOCAB = 12  # 0 flat, else 1 + log2(factor), clipped

FEATURE_VOCABS: tuple[int, ...] = (
    OP_VOCAB,
    SIZE_VOCAB,
    KERNEL_VOCAB,
    STRIDE_VOCAB,
    DROPOUT_VOCAB,
    OFFSET_VOCAB,
    OFFSET_VOCAB,
    SIZE_VOCAB,
    RES_VOCAB,
)
N_FEATURES = len(FEATURES)
_RADIX = np.cumprod((1, *FEATURE_VOCABS[:-1])).astype(np.int64)


def size_token(width: int) -> int:
    """Half-octave bucket of a channel or unit count."""
    return min(SIZE_VOCAB - 1, max(0, round(2 * math.log2(max(width, 1)))))


def res_token(factor: int, *, flat: bool) -> int:
    """0 for a flat tensor, else 1 + log2 of the downsample factor."""
    return 0 if flat else min(RES_VOCAB - 1, 1 + round(math.log2(max(factor, 1))))


@dataclass(frozen=True, slots=True)
class EncodedNetwork:
    """One network: tokens (n_nodes, N_FEATURES) and edges (E, 2) as (src node, dst node), both uint8 (tokens
    and node indices stay below 256), so a cache of many networks stays small; batches are int64."""

    tokens: np.ndarray
    edges: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.tokens.shape[0])


_SIZE_TABLE = np.zeros(0, dtype=np.uint8)
_DROPOUT_TABLE = np.asarray([min(DROPOUT_VOCAB - 1, round(p / 10)) for p in range(101)], dtype=np.uint8)
_OP_TOKENS = np.asarray([OP_TOKEN[op] for op in OPS], dtype=np.uint8)  # by op code (= trace.OPS order)


def _size_tokens(widths: np.ndarray) -> np.ndarray:
    """``size_token`` of every width, by a table of its values."""
    global _SIZE_TABLE
    top = int(widths.max(initial=0))
    if top >= len(_SIZE_TABLE):
        _SIZE_TABLE = np.asarray([size_token(w) for w in range(max(top + 1, 4097))], dtype=np.uint8)
    return _SIZE_TABLE[widths]


def encode_table(t: TraceTable) -> list[EncodedNetwork]:
    """Tokens and edges of every network of a traced batch (the input's channels are the table's), computed on
    its columns at once."""
    c = t.cols
    n_nets = len(t)
    starts = t.start[:-1]
    node_row = np.arange(len(t.net), dtype=np.int64) + t.net + 1  # a network's input node precedes its layers
    input_row = starts + np.arange(n_nets, dtype=np.int64)
    tokens = np.zeros((len(t.net) + n_nets, N_FEATURES), dtype=np.uint8)
    in_channels = t.input_shape[0]
    tokens[input_row] = (INPUT_OP, size_token(in_channels), 0, 0, 0, 0, 0, 0, res_token(1, flat=False))
    factor, flat = c["factor"], c["flat"] != 0
    uniq, inv = np.unique(factor, return_inverse=True)
    res = np.asarray([res_token(f, flat=False) for f in uniq.tolist()], dtype=np.uint8)[inv.reshape(-1)]
    src, dist_b = c["src"], c["dist_b"]
    tokens[node_row] = np.column_stack([
        _OP_TOKENS[c["op"]], _size_tokens(c["out_channels"]), np.minimum(c["kernel"], KERNEL_VOCAB - 1),
        np.minimum(c["stride"], STRIDE_VOCAB - 1), _DROPOUT_TABLE[c["dropout_pct"]],
        np.minimum(MAX_OFFSET, t.pos - src), np.minimum(MAX_OFFSET, dist_b), _size_tokens(t.in_channels),
        np.where(flat, 0, res),
    ]).astype(np.uint8)
    # edges: each node reads its first source, an add its second too (node i + 1 is layer i, node 0 the input)
    node = t.pos + 1
    first = np.column_stack([src + 1, node])
    is_add = dist_b > 0
    second = np.column_stack([(t.pos - dist_b + 1)[is_add], node[is_add]])
    edge_net = np.concatenate([t.net, t.net[is_add]])
    edge_key = np.concatenate([np.arange(len(t.net)) * 2, np.flatnonzero(is_add) * 2 + 1])
    order = np.argsort(edge_key, kind="stable")
    edges = np.concatenate([first, second]).astype(np.uint8)[order]
    edge_net = edge_net[order]
    edge_start = np.searchsorted(edge_net, np.arange(n_nets + 1))
    bounds = [*(starts + np.arange(n_nets)).tolist(), len(tokens)]
    eb = edge_start.tolist()
    return [EncodedNetwork(tokens[bounds[k]:bounds[k + 1]].copy(), edges[eb[k]:eb[k + 1]].copy())
            for k in range(n_nets)]


def encode_network(net: Network, *, in_channels: int = 1) -> EncodedNetwork:
    """Tokens and edges of one network (uncached)."""
    return encode_table(trace_table([net], (in_channels,), 1))[0]


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """Networks padded to one node count: tokens (B, N, F) int64 (op 0 on padding), lengths (B,) node counts,
    and the edges of all networks as flat arrays (batch index, src node, dst node)."""

    tokens: np.ndarray
    lengths: np.ndarray
    edge_batch: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(B, N) bool, True on real nodes."""
        return np.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]

    def sources(self) -> np.ndarray:
        """(B, N, 2) int64: the nodes each node reads (in-degree is at most 2: an add), -1 where none."""
        b, n = self.tokens.shape[:2]
        out = np.full((b, n, 2), -1, dtype=np.int64)
        same = np.zeros(len(self.edge_dst), dtype=bool)
        same[1:] = (self.edge_dst[1:] == self.edge_dst[:-1]) & (self.edge_batch[1:] == self.edge_batch[:-1])
        out[self.edge_batch, self.edge_dst, same.astype(np.int64)] = self.edge_src
        return out

    def adjacency(self, *, dtype: type = np.float32) -> np.ndarray:
        """Dense (B, N, N) adjacency with adj[b, dst, src] = 1 (messages flow from inputs to consumers)."""
        b, n = self.tokens.shape[:2]
        adj = np.zeros((b, n, n), dtype=dtype)
        adj[self.edge_batch, self.edge_dst, self.edge_src] = 1
        return adj


def batch_encoded(encs: Sequence[EncodedNetwork], *, pad_to: int | None = None) -> EncodedBatch:
    """Pad encoded networks into one batch (no per-row Python beyond gathering the arrays)."""
    if not encs:
        raise ValueError("batch_encoded: no networks")
    lengths = np.fromiter((e.tokens.shape[0] for e in encs), dtype=np.int64, count=len(encs))
    n = int(lengths.max()) if pad_to is None else max(pad_to, int(lengths.max()))
    b = len(encs)
    starts = np.arange(b, dtype=np.int64) * n
    flat_rows = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    flat_rows += np.arange(int(lengths.sum()), dtype=np.int64)
    tokens = np.zeros((b * n, N_FEATURES), dtype=np.int64)
    tokens[flat_rows] = np.concatenate([e.tokens for e in encs])
    n_edges = np.fromiter((e.edges.shape[0] for e in encs), dtype=np.int64, count=b)
    edges = np.concatenate([e.edges for e in encs]).astype(np.int64)
    return EncodedBatch(
        tokens.reshape(b, n, N_FEATURES),
        lengths,
        np.repeat(np.arange(b, dtype=np.int64), n_edges),
        edges[:, 0].copy(),
        edges[:, 1].copy(),
    )


def pack_tokens(tokens: np.ndarray) -> np.ndarray:
    """One int64 key per node (mixed radix over the feature vocabularies): equal keys mean equal tokens."""
    return tokens @ _RADIX


class Encoder:
    """Caches encodings per network (by value, so equal specs share an entry: one per arch_id) or per JSON text.

    The cache is first-in-first-out and bounded; entries are immutable numpy arrays, never copied.
    """

    def __init__(self, *, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._cache: dict[Hashable, EncodedNetwork] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def _put(self, key: Hashable, enc: EncodedNetwork) -> EncodedNetwork:
        enc.tokens.setflags(write=False)
        enc.edges.setflags(write=False)
        self._cache[key] = enc
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]
        return enc

    def network(self, net: Network, *, in_channels: int = 1) -> EncodedNetwork:
        key = (net, in_channels)
        enc = self._cache.get(key)
        return enc if enc is not None else self._put(key, encode_network(net, in_channels=in_channels))

    def arch_json(self, text: str, *, in_channels: int = 1) -> EncodedNetwork:
        key = (text, in_channels)
        enc = self._cache.get(key)
        if enc is None:
            enc = self._put(key, encode_network(Network.from_json(text), in_channels=in_channels))
        return enc

    def _many(self, keys: list[tuple[Hashable, int]], parse: Callable[[Hashable], Network]) -> list[EncodedNetwork]:
        """Entries of (network or JSON text, input channels) keys; the ones not cached are encoded together."""
        get = self._cache.get
        out = [get(k) for k in keys]
        todo: dict[tuple[Hashable, int], None] = {}
        for k, v in zip(keys, out, strict=True):
            if v is None:
                todo[k] = None
        if todo:
            by_channels: dict[int, list[tuple[Hashable, int]]] = {}
            for k in todo:
                by_channels.setdefault(k[1], []).append(k)
            new: dict[tuple[Hashable, int], EncodedNetwork] = {}
            for c, ks in by_channels.items():
                encs = encode_table(trace_table([parse(k[0]) for k in ks], (c,), 1))
                new.update(zip(ks, encs, strict=True))
            for k, enc in new.items():  # FIFO: inserted in batch order, evicted oldest first
                self._put(k, enc)
            out = [v if v is not None else new[k] for k, v in zip(keys, out, strict=True)]
        return out  # type: ignore[return-value]

    def networks(self, nets: Iterable[Network], *, in_channels: int = 1) -> EncodedBatch:
        return batch_encoded(self._many([(n, in_channels) for n in nets], lambda n: n))  # type: ignore[arg-type,return-value]

    def arch_jsons(self, texts: Iterable[str], *, in_channels: int | Sequence[int] = 1) -> EncodedBatch:
        texts = list(texts)
        chans = [in_channels] * len(texts) if isinstance(in_channels, int) else list(in_channels)
        return batch_encoded(self._many(list(zip(texts, chans, strict=True)),
                                        lambda t: Network.from_json(t)))  # type: ignore[arg-type]

    def clear(self) -> None:
        self._cache.clear()


DEFAULT_ENCODER = Encoder()


def encode_networks(nets: Iterable[Network], *, in_channels: int = 1, encoder: Encoder | None = None) -> EncodedBatch:
    """Padded tokens, lengths and edges of a batch of networks, through the (default) cache."""
    return (encoder or DEFAULT_ENCODER).networks(nets, in_channels=in_channels)


def encode_arch_jsons(
    texts: Iterable[str], *, in_channels: int | Sequence[int] = 1, encoder: Encoder | None = None
) -> EncodedBatch:
    """As encode_networks, from canonical JSON texts (corpus rows' ``arch_json``); parses only on a cache miss."""
    return (encoder or DEFAULT_ENCODER).arch_jsons(texts, in_channels=in_channels)


__all__ = [
    "DEFAULT_ENCODER",
    "DROPOUT_VOCAB",
    "FEATURES",
    "FEATURE_VOCABS",
    "INPUT_OP",
    "KERNEL_VOCAB",
    "MAX_OFFSET",
    "N_FEATURES",
    "OFFSET_VOCAB",
    "OP_TOKEN",
    "OP_VOCAB",
    "PAD_OP",
    "RES_VOCAB",
    "SIZE_VOCAB",
    "STRIDE_VOCAB",
    "EncodedBatch",
    "EncodedNetwork",
    "Encoder",
    "batch_encoded",
    "encode_arch_jsons",
    "encode_network",
    "encode_networks",
    "pack_tokens",
    "res_token",
    "size_token",
]
