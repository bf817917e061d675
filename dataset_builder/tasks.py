"""Tasks: MNIST-1D (generated offline), digits (bundled), CIFAR-10 (local folder); splits, descriptors."""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from narch.core.errors import NarchError

TASKS = ("mnist1d", "digits", "cifar10")
TASK_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "mnist1d": ((1, 40), 10),
    "digits": ((1, 8, 8), 10),
    "cifar10": ((3, 32, 32), 10),
}
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


class TaskError(NarchError, ValueError):
    """A task that cannot be loaded (unknown name, missing folder, bad files)."""


@dataclass(frozen=True)
class TaskData:
    """Arrays of one task: x float32 (N, C, *spatial), y int64; splits fixed by ``data_seed``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # make_dataset reseeds the global RNGs: restore them; mnist1d imports matplotlib, so import lazily.
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return d["x"], d["y"], d["x_test"], d["y_test"]


class _CifarUnpickler(pickle.Unpickler):
    """Loads the CIFAR-10 python batches but refuses any class other than numpy's array plumbing."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "dict"),
        ("builtins", "list"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as e:  # corrupt or foreign files: one message naming the file
        raise TaskError(f"cifar10 file {path}: unreadable ({type(e).__name__}: {e})") from None
    return x, y


def check_cifar_dir(data_dir: str | Path | None) -> Path:
    """The CIFAR-10 folder (python-pickle layout) or a TaskError naming what is missing."""
    if data_dir is None:
        raise TaskError("task cifar10 needs --data-dir pointing at the 'cifar-10-batches-py' folder")
    d = Path(data_dir)
    if not d.is_dir():
        raise TaskError(f"cifar10 folder {d}: does not exist")
    missing = [f for f in CIFAR_FILES if not (d / f).is_file()]
    if missing:
        raise TaskError(f"cifar10 folder {d}: missing {', '.join(missing)}")
    return d


def _cifar_arrays(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    parts = [_read_cifar_batch(data_dir / f) for f in CIFAR_FILES[:5]]
    x_test, y_test = _read_cifar_batch(data_dir / "test_batch")
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts])
    return x, y, x_test.astype(np.float32) / 255.0, y_test


def _standardise(x_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    axes = (0, *range(2, x_train.ndim))
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True) + 1e-6
    return [((a - mean) / std).astype(np.float32) for a in (x_train, *others)]


@cache
def _load_full(name: str, data_dir: str | None, data_seed: int) -> TaskData:
    rng = np.random.default_rng(data_seed)
    if name == "mnist1d":
        x, y, x_test, y_test = _mnist1d_arrays()
        x, x_test = x[:, None, :], x_test[:, None, :]
        n_val = 1000
    elif name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x_all, y_all = d.data.reshape(-1, 1, 8, 8) / 16.0, d.target
        perm = rng.permutation(len(y_all))
        n_test = len(y_all) // 5
        x_test, y_test = x_all[perm[:n_test]], y_all[perm[:n_test]]
        x, y = x_all[perm[n_test:]], y_all[perm[n_test:]]
        n_val = len(y_all) // 5
    elif name == "cifar10":
        x, y, x_test, y_test = _cifar_arrays(check_cifar_dir(data_dir))
        n_val = max(1, len(y) // 10)
    else:
        raise TaskError(f"task {name!r} is unknown (known: {', '.join(TASKS)})")
    perm = rng.permutation(len(y))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    x_tr, x_val, x_te = _standardise(x[train_idx], x[val_idx], x_test)
    return TaskData(
        name=name,
        x_train=x_tr,
        y_train=y[train_idx].astype(np.int64),
        x_val=x_val,
        y_val=y[val_idx].astype(np.int64),
        x_test=x_te,
        y_test=np.asarray(y_test, dtype=np.int64),
        n_classes=TASK_SHAPES[name][1],
    )


def load_task(
    name: str, *, n_train: int | None = None, data_dir: str | Path | None = None, data_seed: int = 0
) -> TaskData:
    """A task's splits; ``n_train`` keeps the first n training examples of the seeded order (the size knob)."""
    if name not in TASKS:
        raise TaskError(f"task {name!r} is unknown (known: {', '.join(TASKS)})")
    full = _load_full(name, None if data_dir is None else str(data_dir), data_seed)
    if n_train is None or n_train == full.n_train:
        return full
    if not 0 < n_train <= full.n_train:
        raise TaskError(f"task {name}: n_train must be in 1..{full.n_train}, got {n_train}")
    return TaskData(
        name,
        full.x_train[:n_train],
        full.y_train[:n_train],
        full.x_val,
        full.y_val,
        full.x_test,
        full.y_test,
        full.n_classes,
    )


def describe_task(data: TaskData) -> dict[str, Any]:
    """Descriptors of the training data: size, classes, input shape, class balance and regularity measures."""
    from sklearn.linear_model import LogisticRegression

    counts = np.bincount(data.y_train, minlength=data.n_classes).astype(float)
    p = counts / counts.sum()
    nz = p[p > 0]
    balance = float(-(nz * np.log(nz)).sum() / np.log(data.n_classes))
    flat_tr = data.x_train.reshape(data.n_train, -1)
    flat_val = data.x_val.reshape(len(data.y_val), -1)
    probe = LogisticRegression(max_iter=300).fit(flat_tr, data.y_train)
    centroids = np.stack(
        [
            flat_tr[data.y_train == c].mean(0) if counts[c] else np.full(flat_tr.shape[1], np.inf)
            for c in range(data.n_classes)
        ]
    )
    nearest = ((flat_val[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    return {
        "n_train": data.n_train,
        "n_classes": data.n_classes,
        "input_shape": list(data.input_shape),
        "class_balance": balance,
        "linear_probe_acc": float(probe.score(flat_val, data.y_val)),
        "centroid_acc": float((nearest == data.y_val).mean()),
    }


def with_task_shapes(rows: pl.DataFrame) -> pl.DataFrame:
    """Corpus rows with a null ``input_shape`` / ``n_classes`` (corpora older than those columns) filled from their
    task's shape; rows of tasks this version does not know keep their nulls."""
    known = pl.DataFrame(
        {"task": list(TASK_SHAPES), "_shape": [list(s) for s, _ in TASK_SHAPES.values()],
         "_classes": [n for _, n in TASK_SHAPES.values()]},
        schema={"task": pl.String, "_shape": pl.List(pl.Int64), "_classes": pl.Int64},
    )
    for col, dtype in (("input_shape", pl.List(pl.Int64)), ("n_classes", pl.Int64)):
        if col not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype).alias(col))
    out = rows.join(known, on="task", how="left", maintain_order="left")
    return out.with_columns(
        pl.col("input_shape").fill_null(pl.col("_shape").cast(rows.schema["input_shape"])),
        pl.col("n_classes").fill_null(pl.col("_classes").cast(rows.schema["n_classes"])),
    ).drop("_shape", "_classes")
