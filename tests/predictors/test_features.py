"""Features: rows and Network objects featurise identically; fixed length; the path encoding sees structure."""

from __future__ import annotations

import numpy as np
import polars as pl

from narch.predictors.features import FeatureSpec, network_features, path_vector, row_descriptors, row_features
from narch.search_space import Network, add, conv, dense, maxpool, seed_network


def test_rows_and_networks_agree(pred_rows: pl.DataFrame) -> None:
    spec = FeatureSpec.from_rows(pred_rows)
    x = row_features(pred_rows, spec)
    assert x.shape == (pred_rows.height, len(spec.names))
    assert np.all(np.isfinite(x))
    for i in (0, pred_rows.height - 1):
        row = pred_rows.row(i, named=True)
        xn = network_features([Network.from_json(row["arch_json"])], row_descriptors(row), spec)
        np.testing.assert_array_equal(xn[0], x[i])


def test_spec_round_trips_and_pads(pred_rows: pl.DataFrame) -> None:
    spec = FeatureSpec.from_rows(pred_rows, max_depth=3)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    deep = seed_network("vgg_tiny")  # 8 layers: the per-layer block keeps the first 3, global counts see all
    x = network_features([deep, seed_network("tiny")], {"input_shape": [1, 40], "n_classes": 10}, spec)
    assert x.shape == (2, len(spec.names))
    depth = spec.names.index("depth")
    assert x[0, depth] == 8 and x[1, depth] == 1


def test_missing_descriptors_take_the_training_mean(pred_rows: pl.DataFrame) -> None:
    spec = FeatureSpec.from_rows(pred_rows)
    net = seed_network("lenet")
    full = network_features([net], row_descriptors(pred_rows.row(0, named=True)), spec)
    bare = network_features([net], {"input_shape": [1, 40], "n_classes": 10}, spec)
    i = spec.names.index("d_class_balance")
    assert bare[0, i] == spec.defaults["class_balance"]
    assert full.shape == bare.shape


def test_path_encoding_is_position_free() -> None:
    a = Network((conv(8, 3), conv(8, 1, 1), conv(8, 3), add(0, 2)))
    b = Network((conv(8, 3), conv(8, 3), conv(8, 1), add(0, 2)))  # same paths, other order of the branch ops
    c = Network((conv(8, 3), maxpool(2), dense(10)))
    pa, pb, pc = path_vector(a), path_vector(b), path_vector(c)
    assert pa[0] == np.log(2) and pc[0] == 0.0  # two input-to-output paths vs one
    assert pa[2] == 1 and pa[4] == 3  # min / max convs on a path (stem only vs stem + branch)
    assert not np.array_equal(pa[8:], pc[8:])
    assert np.array_equal(pa[:8], pb[:8])
