"""Protocol splits (by architecture, disjoint, hashed files) and metrics against scipy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import kendalltau, spearmanr

from narch.predictors.metrics import precision_at, score, within
from narch.predictors.protocol import make_splits, query_groups, rows_of, train_sizes, verify_split_file, write_splits


def _ids(n: int) -> list[str]:
    return [f"{i:016x}" for i in range(n)]


def test_splits_are_disjoint_nested_and_seeded() -> None:
    ids = _ids(200)
    splits = make_splits(ids * 3, seeds=5)  # repeated ids (several rows per arch) count once
    assert len(splits) == 5
    for sp in splits:
        assert not set(sp.test) & set(sp.pool)
        assert set(sp.test) | set(sp.pool) == set(ids)
        assert len(sp.test) == 40
        assert sp.train(16) == sp.train(64)[:16]
    assert splits[0].test != splits[1].test
    assert make_splits(list(reversed(ids)), seeds=5)[2] == splits[2]  # input order does not matter
    with pytest.raises(ValueError, match="exceeds"):
        splits[0].train(161)


def test_train_sizes_capped_by_pool() -> None:
    assert train_sizes(100) == [16, 32, 64, 100]
    assert train_sizes(5000) == [16, 32, 64, 128, 256, 512, 1024, 5000]
    assert train_sizes(10) == [10]
    assert train_sizes(100, include_all=False) == [16, 32, 64]


def test_rows_of_one_arch_stay_on_one_side() -> None:
    rows = pl.DataFrame({"arch_id": [a for a in _ids(30) for _ in range(3)], "seed": [0, 1, 2] * 30,
                         "val_acc": np.linspace(0, 1, 90)})
    sp = make_splits(rows["arch_id"].to_list(), seeds=1)[0]
    train, test = rows_of(rows, sp.train(16)), rows_of(rows, sp.test)
    assert train.height == 48 and not set(train["arch_id"]) & set(test["arch_id"])
    q, y = query_groups(test, "val_acc")
    assert q.height == len(sp.test) and q["arch_id"].n_unique() == q.height
    means = test.group_by("arch_id").agg(pl.col("val_acc").mean())
    got = dict(zip(q["arch_id"].to_list(), y.to_list(), strict=True))
    for a, m in means.iter_rows():
        assert got[a] == pytest.approx(m)


def test_split_files_carry_sha256(tmp_path: Path) -> None:
    splits = make_splits(_ids(50), seeds=2)
    digests = write_splits(tmp_path, splits, [16, 40])
    assert set(digests) == {f"seed{s}_{k}.json" for s in (0, 1) for k in ("test", "train16", "train40")}
    sums = dict(line.split("  ")[::-1] for line in (tmp_path / "SHA256SUMS").read_text().splitlines())
    for name, d in digests.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == d == sums[name]
    assert verify_split_file(tmp_path / "seed1_test.json", digests["seed1_test.json"]) == list(splits[1].test)
    (tmp_path / "seed1_test.json").write_text(json.dumps(list(splits[0].test)))
    with pytest.raises(ValueError, match="sha256"):
        verify_split_file(tmp_path / "seed1_test.json", digests["seed1_test.json"])


def test_metrics_against_scipy() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 3.0, 300)
    pred = true * rng.lognormal(0, 0.1, 300)
    m = score(pred, true, log=True)
    assert m["kendall_tau"] == pytest.approx(kendalltau(pred, true).statistic)
    assert m["spearman"] == pytest.approx(spearmanr(pred, true).statistic)
    assert m["mae"] == pytest.approx(np.mean(np.abs(pred - true)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert m["mae_log"] == pytest.approx(np.mean(np.abs(np.log(pred / true))))
    assert m["within_10pct"] == pytest.approx(np.mean(np.abs(pred / true - 1) <= 0.1))
    lin = score(pred, true, log=False)
    assert np.isnan(lin["within_10pct"]) and np.isnan(lin["mae_log"])


def test_precision_and_within_by_hand() -> None:
    true = np.arange(20.0)
    pred = true.copy()
    pred[19], pred[0] = 0.0, 19.0  # the best is predicted worst and vice versa
    assert precision_at(pred, true, frac=0.1) == 0.5  # top 2: {19, 18} vs {0, 18}
    assert precision_at(pred, true, frac=0.1, higher_is_better=False) == 0.5
    assert within(np.array([1.05, 1.2, 0.95]), np.ones(3)) == pytest.approx(2 / 3)
    assert score(np.ones(5), np.arange(5.0), log=False)["kendall_tau"] == 0.0  # constant predictions rank nothing
