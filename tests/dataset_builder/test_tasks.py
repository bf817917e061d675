"""Tasks: offline data, fixed splits, the size knob, descriptors, CIFAR-10 from a local pickle-layout folder."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from narch.dataset_builder.tasks import CIFAR_FILES, TaskError, describe_task, load_task


@pytest.mark.parametrize(("task", "shape"), [("mnist1d", (1, 40)), ("digits", (1, 8, 8))])
def test_splits_are_fixed_and_disjoint(task: str, shape: tuple[int, ...]) -> None:
    a, b = load_task(task), load_task(task)
    assert a.input_shape == shape
    np.testing.assert_array_equal(a.x_val, b.x_val)
    other = load_task(task, data_seed=1)
    assert not np.array_equal(a.y_val, other.y_val)
    train = {x.tobytes() for x in a.x_train}
    assert not any(x.tobytes() in train for x in a.x_test[:200])
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64


def test_n_train_knob_takes_a_prefix() -> None:
    full, small = load_task("mnist1d"), load_task("mnist1d", n_train=100)
    assert small.n_train == 100
    np.testing.assert_array_equal(small.x_train, full.x_train[:100])
    with pytest.raises(TaskError, match="n_train must be in"):
        load_task("mnist1d", n_train=10**6)


def test_descriptors() -> None:
    d = describe_task(load_task("digits", n_train=400))
    assert d["n_train"] == 400 and d["n_classes"] == 10 and d["input_shape"] == [1, 8, 8]
    assert 0.9 < d["class_balance"] <= 1.0
    assert 0.5 < d["linear_probe_acc"] <= 1.0


def _write_cifar(folder: Path, n: int = 30) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in CIFAR_FILES:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        batch[b"labels"] = [int(v) for v in batch[b"labels"]]
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)


def test_cifar10_from_local_pickle_layout(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    d = load_task("cifar10", data_dir=tmp_path / "cifar-10-batches-py")
    assert d.input_shape == (3, 32, 32)
    assert d.n_train + len(d.y_val) == 150 and len(d.y_test) == 30


def test_cifar10_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    _write_cifar(folder)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(TaskError, match=r"data_batch_1: unreadable .*refusing to load (posix|os)\.system"):
        load_task("cifar10", data_dir=folder)


def test_cifar10_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    with pytest.raises(TaskError, match="missing data_batch_1"):
        load_task("cifar10", data_dir=tmp_path / "c")
