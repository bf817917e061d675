"""The batched trace (one table for many networks) and what reads it: every network's row equals its own trace,
encoding and features; a Network's cached hash, JSON and arch_id are its own and are not pickled."""

from __future__ import annotations

import pickle
import random

import numpy as np

from narch.controller.env import Moves
from narch.predictors.features import ARCH_CACHE, FeatureSpec, network_features, path_vector
from narch.search_space import SEEDS, Network, add, conv, dropout, maxpool, sample_network, sep_conv
from narch.search_space.encoding import Encoder, encode_network
from narch.search_space.trace import trace_table


def _networks() -> list[Network]:
    rng = random.Random(11)
    nets = [sample_network(rng) for _ in range(40)]
    moves, walk = Moves(), random.Random(12)
    nets += [moves.random_walk(walk, SEEDS[name], 8) for name in sorted(SEEDS)]
    nets.append(Network((conv(8, 3), *sep_conv(8, 16, 5, 2, dilation=3), maxpool(3, 1), add(2, 3))))
    layers = [conv(8, 3), conv(8, 1), add(0, 1)]
    for _ in range(12):  # 2**13 paths: the path encoding truncates its labels
        last = len(layers) - 1
        layers += [conv(8, 3), dropout(10), add(last, last + 2)]
    nets.append(Network(tuple(layers)))
    return nets


def test_a_batch_traces_each_network_as_alone() -> None:
    nets = _networks()
    table = trace_table(nets, (1, 40), 10)
    for b, net in enumerate(nets):
        assert table.trace(b) == trace_table([net], (1, 40), 10).trace(0)


def test_batched_encodings_and_features_equal_one_network_ones() -> None:
    nets = _networks()
    batch = Encoder().networks(nets)
    for b, net in enumerate(nets):
        e = encode_network(net)
        n = e.tokens.shape[0]
        assert batch.lengths[b] == n and np.array_equal(batch.tokens[b, :n], e.tokens)
    spec = FeatureSpec(16, ())
    d = {"input_shape": [1, 40], "n_classes": 10}
    ARCH_CACHE.clear()
    together = network_features(nets, d, spec)
    ARCH_CACHE.clear()
    alone = np.concatenate([network_features([n], d, spec) for n in nets])
    assert np.array_equal(together, alone)
    paths = together[:, spec.names.index("log_n_paths"):spec.names.index("log_n_paths") + len(path_vector(nets[0]))]
    assert np.array_equal(paths, np.stack([path_vector(n) for n in nets]))


def test_network_caches_are_its_own_and_not_pickled() -> None:
    net = SEEDS["lenet"]
    twin = Network(net.layers)
    assert hash(net) == hash(twin) and net.to_json() == twin.to_json() and net.arch_id == twin.arch_id
    back = pickle.loads(pickle.dumps(net))
    assert back == net and back._hash is None and back._json is None and back._id is None
    assert back.arch_id == net.arch_id
