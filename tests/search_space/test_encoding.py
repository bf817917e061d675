"""Tokens, edges and batching of search_space.encoding."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from narch.search_space import SEEDS, Layer, Network, add, conv, dense, dropout, sample_network
from narch.search_space.encoding import (
    FEATURE_VOCABS,
    FEATURES,
    INPUT_OP,
    MAX_OFFSET,
    N_FEATURES,
    OP_TOKEN,
    Encoder,
    batch_encoded,
    encode_arch_jsons,
    encode_network,
    encode_networks,
    pack_tokens,
    size_token,
)
from narch.search_space.layer import Op


def _col(name: str) -> int:
    return FEATURES.index(name)


def test_resnet_tiny_tokens_and_edges() -> None:
    enc = encode_network(SEEDS["resnet_tiny"])
    t = enc.tokens
    assert t.shape == (9, N_FEATURES)
    assert t[0, _col("op")] == INPUT_OP
    assert list(t[1:, _col("op")]) == [OP_TOKEN[x.op] for x in SEEDS["resnet_tiny"].layers]
    # add(0, 2) is layer 3 = node 4; it reads nodes 1 and 3: distances 3 and 1
    assert t[4, _col("in_a")] == 3 and t[4, _col("in_b")] == 1
    assert t[5, _col("stride")] == 2 and t[5, _col("res")] == 2  # the strided conv halves the resolution
    assert t[1, _col("size")] == size_token(32) and t[5, _col("size")] == size_token(64)
    edges = {tuple(e) for e in enc.edges.tolist()}
    assert (1, 4) in edges and (3, 4) in edges and (0, 1) in edges
    assert len(edges) == 8 + 2  # one edge per layer, two for each add


def test_tokens_within_vocabularies() -> None:
    rng = random.Random(1)
    for _ in range(200):
        t = encode_network(sample_network(rng)).tokens
        assert (t >= 0).all()
        assert (t < np.asarray(FEATURE_VOCABS)).all()


def test_explicit_input_and_dense_and_dropout() -> None:
    skip = Layer(Op.CONV, channels=16, kernel=3, inputs=(0,))
    net = Network((conv(16, 5), conv(16, 3), skip, dense(64), dropout(30)))
    t = encode_network(net, in_channels=3).tokens
    assert t[0, _col("size")] == size_token(3)
    assert t[3, _col("in_a")] == 2  # layer 2 reads layer 0 explicitly
    assert {tuple(e) for e in encode_network(net).edges.tolist()} >= {(1, 3)}
    assert t[4, _col("res")] == 0  # dense output is flat
    assert t[5, _col("dropout")] == 3
    assert t[4, _col("in_size")] == size_token(16)


def test_offsets_clip() -> None:
    layers = [conv(8, 3) for _ in range(MAX_OFFSET + 4)] + [add(0, MAX_OFFSET + 3)]
    t = encode_network(Network(tuple(layers))).tokens
    assert t[-1, _col("in_a")] == MAX_OFFSET and t[-1, _col("in_b")] == 1


def test_add_from_network_input() -> None:
    net = Network((conv(1, 3), add(-1, 0)))
    enc = encode_network(net)
    assert enc.tokens[2, _col("in_a")] == 2  # node 0, two nodes back
    assert {tuple(e) for e in enc.edges.tolist()} == {(0, 1), (0, 2), (1, 2)}


def test_batch_padding_matches_single() -> None:
    nets = [SEEDS["tiny"], SEEDS["resnet_tiny"], SEEDS["lenet"]]
    batch = encode_networks(nets, encoder=Encoder())
    assert batch.tokens.shape == (3, 9, N_FEATURES)
    assert batch.lengths.tolist() == [2, 9, 7]
    for k, net in enumerate(nets):
        single = encode_network(net)
        n = single.n_nodes
        np.testing.assert_array_equal(batch.tokens[k, :n], single.tokens)
        assert (batch.tokens[k, n:] == 0).all()
        assert batch.mask[k].sum() == n
    adj = batch.adjacency()
    assert adj.shape == (3, 9, 9)
    assert adj.sum() == sum(encode_network(n).edges.shape[0] for n in nets)
    assert adj[1, 4, 1] == 1 and adj[1, 4, 3] == 1 and adj[0, 1, 0] == 1


def test_sources_list_each_nodes_inputs() -> None:
    batch = encode_networks([SEEDS["tiny"], SEEDS["resnet_tiny"]], encoder=Encoder())
    src = batch.sources()
    assert src.shape == (2, 9, 2)
    assert src[0, :2].tolist() == [[-1, -1], [0, -1]]
    assert src[1, 4].tolist() == [1, 3]  # the add reads layers 0 and 2
    assert (src[0, 2:] == -1).all()


def test_batch_pad_to_and_empty() -> None:
    batch = batch_encoded([encode_network(SEEDS["tiny"])], pad_to=5)
    assert batch.tokens.shape == (1, 5, N_FEATURES)
    with pytest.raises(ValueError):
        batch_encoded([])


def test_cache_by_value_and_json() -> None:
    enc = Encoder(max_entries=3)
    a = SEEDS["vgg_tiny"]
    b = Network.from_json(a.to_json())  # equal spec, distinct object
    assert enc.network(a) is enc.network(b)
    assert len(enc) == 1
    j = enc.arch_json(a.to_json())
    np.testing.assert_array_equal(j.tokens, enc.network(a).tokens)
    assert not j.tokens.flags.writeable
    for net in list(SEEDS.values()):
        enc.network(net)
    assert len(enc) == 3  # bounded
    b1 = encode_arch_jsons([a.to_json()] * 2, in_channels=[1, 3], encoder=enc)
    assert b1.tokens[0, 0, _col("size")] != b1.tokens[1, 0, _col("size")]


def test_pack_tokens_distinguishes_rows() -> None:
    rng = random.Random(2)
    toks = np.concatenate([encode_network(sample_network(rng)).tokens for _ in range(100)])
    keys = pack_tokens(toks)
    assert len(np.unique(keys)) == len(np.unique(toks, axis=0))


def test_every_op_has_a_token() -> None:
    assert sorted(OP_TOKEN.values()) == list(range(2, 2 + len(Op)))


def test_imports_without_torch() -> None:
    code = "import sys, narch.search_space.encoding; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
