"""Fast fixed-length features of corpus rows and of Network objects: a flat architecture encoding plus data descriptors.

The architecture part is read off the search space's trace (shapes, parameters and multiply-accumulates) and cached
per (architecture, input shape, classes), so rows parsed from JSON and ``Network`` objects from the controller give
identical features and a repeated network costs a dict look-up.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from narch.search_space import Layer, Network, Op, deepest, trace_network

FEATURES_VERSION = 2
OPS = tuple(Op)
PER_LAYER = (*(f"is_{o.value}" for o in OPS), "log2_channels", "kernel", "stride", "log2_units", "dropout",
             "skip_a", "skip_b", "log2_out", "log2_factor")
GLOBAL = ("depth", *(f"n_{o.value}" for o in OPS), "n_stride2", "log_params", "log_flops_fwd", "log_activations",
          "log2_downsample", "log2_max_width", "log2_mean_width", "max_kernel", "log2_last_width", "flat_out")
PATH_BUCKETS = 128
PATHS = ("log_n_paths", "n_labels", "min_path_conv", "mean_path_conv", "max_path_conv", "frac_paths_no_conv",
         "min_path_len", "max_path_len", *(f"path_{b}" for b in range(PATH_BUCKETS)))
MAX_LABELS = 4096
RUN = ("log_flops_run", "log_steps_run", "log_act_run", "log_params_steps")
DESCRIPTORS = ("n_train", "n_classes", "class_balance", "linear_probe_acc", "centroid_acc", "epochs", "batch_size",
               "lr")
LOG_DESCRIPTORS = frozenset({"n_train", "epochs", "batch_size", "lr", "n_classes"})
DEFAULT_SHAPE: tuple[tuple[int, ...], int] = ((1, 40), 10)
_CACHE_MAX = 200_000
_NO_ACTIVATIONS = (Op.DROPOUT, Op.ADD)  # their outputs are not counted as activations (a tuple: no enum hash)


@dataclass(frozen=True)
class FeatureSpec:
    """What a fitted predictor's feature matrix holds: padded depth and the data descriptors used."""

    max_depth: int
    descriptors: tuple[str, ...]
    version: int = FEATURES_VERSION
    defaults: dict[str, float] = field(default_factory=dict)  # fill for a descriptor a row lacks

    @property
    def names(self) -> list[str]:
        per = [f"l{i}_{n}" for i in range(self.max_depth) for n in PER_LAYER]
        return [*GLOBAL, *RUN, *per, *PATHS, *(f"d_{d}" for d in self.descriptors), "log_input_size"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["descriptors"] = list(self.descriptors)
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> FeatureSpec:
        if d.get("version") != FEATURES_VERSION:
            raise ValueError(f"feature spec version {d.get('version')!r} is not {FEATURES_VERSION}")
        return FeatureSpec(int(d["max_depth"]), tuple(d["descriptors"]), defaults=dict(d.get("defaults", {})))

    @staticmethod
    def from_rows(rows: pl.DataFrame, *, max_depth: int | None = None) -> FeatureSpec:
        """Depth from the deepest training network (at most 48); descriptors that the rows carry."""
        if max_depth is None:
            max_depth = min(48, max(1, deepest(rows["arch_json"].to_list())))
        used, defaults = [], {}
        for d in DESCRIPTORS:
            if d in rows.columns and rows[d].null_count() < rows.height:
                used.append(d)
                defaults[d] = float(rows[d].cast(pl.Float64).mean())  # type: ignore[arg-type]
        return FeatureSpec(max_depth, tuple(used), defaults=defaults)


def _lg(x: float) -> float:
    return math.log2(x + 1.0)


def _token(layer: Layer) -> str:
    match layer.op:
        case Op.CONV:
            # grouped and dilated convs get labels of their own; a plain conv's label (and its bucket) is unchanged
            g = "g" if layer.groups != 1 else ""
            d = f"d{layer.dilation}" if layer.dilation != 1 else ""
            return f"c{layer.kernel}s{layer.stride}{g}{d}"
        case Op.MAXPOOL | Op.AVGPOOL:
            return f"{layer.op.value[0]}p{layer.kernel}s{layer.stride}"
        case Op.DENSE:
            return "d"
    return ""  # dropout and add leave a path's label unchanged


def path_vector(net: Network) -> np.ndarray:
    """Path encoding (after BANANAS): input-to-output paths labelled by their op sequence, counted into hashed
    buckets, plus path statistics. Position-free, so cells mapped onto layer DAGs encode by structure."""
    paths: list[dict[tuple[str, ...], int]] = []
    for i, layer in enumerate(net.layers):
        srcs = layer.inputs if layer.inputs else (i - 1,)
        merged: dict[tuple[str, ...], int] = {}
        tok = _token(layer)
        for j in srcs:
            for label, c in (paths[j] if j >= 0 else {(): 1}).items():
                key = (*label, tok) if tok else label
                merged[key] = merged.get(key, 0) + c
        if len(merged) > MAX_LABELS:  # keep the most frequent labels; counts beyond are rare in this space
            merged = dict(sorted(merged.items(), key=lambda kv: -kv[1])[:MAX_LABELS])
        paths.append(merged)
    out = paths[-1]
    counts = np.asarray(list(out.values()), dtype=np.float64)
    convs = np.asarray([sum(t[0] == "c" for t in label) for label in out], dtype=np.float64)
    lens = np.asarray([len(label) for label in out], dtype=np.float64)
    total = counts.sum()
    buckets = np.zeros(PATH_BUCKETS)
    for label, c in out.items():
        buckets[zlib.crc32("/".join(label).encode()) % PATH_BUCKETS] += c
    head = [math.log(total), len(out), convs.min(), float(counts @ convs / total), convs.max(),
            float(counts[convs == 0].sum() / total), lens.min(), lens.max()]
    return np.concatenate([np.asarray(head), buckets])


def arch_vector(net: Network, input_shape: tuple[int, ...], n_classes: int, max_depth: int) -> np.ndarray:
    """GLOBAL + per-layer features of one network (RUN and descriptors are added per row), read off its trace."""
    t = trace_network(net, input_shape, n_classes)
    in_elems = math.prod(input_shape[1:])
    per = np.zeros((max_depth, len(PER_LAYER)))
    counts = dict.fromkeys(OPS, 0)
    acts = n_stride2 = max_kernel = 0
    for i, (layer, lt) in enumerate(zip(net.layers, t.layers, strict=True)):
        op = layer.op
        if op not in _NO_ACTIVATIONS:
            acts += lt.out_elems
        counts[op] += 1
        n_stride2 += layer.stride == 2 and op == Op.CONV
        max_kernel = max(max_kernel, layer.kernel)
        if i < max_depth:
            ins = layer.inputs
            row = per[i]
            row[OPS.index(op)] = 1.0
            row[len(OPS):] = (_lg(layer.channels), layer.kernel, layer.stride, _lg(layer.units),
                              layer.dropout_pct / 100, i - ins[0] if ins else 0, i - ins[1] if len(ins) > 1 else 0,
                              _lg(lt.channels), math.log2(lt.downsample))
    chans = [lt.channels for lt in t.layers]
    last = t.layers[-1]
    g = [t.depth, *(counts[o] for o in OPS), n_stride2, math.log(t.params), math.log(2.0 * t.macs + 1),
         math.log(acts + in_elems), math.log2(max(lt.downsample for lt in t.layers)), _lg(max(chans)),
         _lg(sum(chans) / len(chans)), max_kernel, _lg(last.channels), float(last.shape.flat)]
    return np.concatenate([np.asarray(g, dtype=np.float64), per.ravel(), path_vector(net)])


class _ArchCache:
    """Arch vectors keyed by (arch_id or Network, input shape, classes, depth); cleared when it grows large."""

    def __init__(self) -> None:
        self._d: dict[tuple[Any, ...], np.ndarray] = {}

    def get(self, net: Network, shape: tuple[int, ...], n_classes: int, depth: int) -> np.ndarray:
        v = self._d.get((net, shape, n_classes, depth))
        return self.put((net, shape, n_classes, depth), net) if v is None else v

    def put(self, key: tuple[Any, ...], net: Network) -> np.ndarray:
        if len(self._d) >= _CACHE_MAX:
            self._d.clear()
        v = self._d[key] = arch_vector(net, key[1], key[2], key[3])
        return v


ARCH_CACHE = _ArchCache()


def _run_block(arch: np.ndarray, n_train: np.ndarray, epochs: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Whole-run products in log space: FLOPs, steps, activations and parameter updates over the run."""
    gi = {n: i for i, n in enumerate(GLOBAL)}
    steps = np.ceil(n_train / batch) * epochs
    log_ne = np.log(n_train * epochs)
    return np.column_stack([
        arch[:, gi["log_flops_fwd"]] + log_ne, np.log(steps), arch[:, gi["log_activations"]] + log_ne,
        arch[:, gi["log_params"]] + np.log(steps),
    ])


def _descriptor_block(spec: FeatureSpec, cols: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    out = np.empty((n, len(spec.descriptors)))
    for j, d in enumerate(spec.descriptors):
        v = cols.get(d)
        x = np.full(n, spec.defaults.get(d, 0.0)) if v is None else np.asarray(v, dtype=np.float64)
        x = np.where(np.isnan(x), spec.defaults.get(d, 0.0), x)
        out[:, j] = np.log(np.maximum(x, 1e-12)) if d in LOG_DESCRIPTORS else x
    return out


def _assemble(spec: FeatureSpec, arch: np.ndarray, cols: Mapping[str, np.ndarray], in_sizes: np.ndarray) -> np.ndarray:
    n = arch.shape[0]

    def col(name: str, default: float) -> np.ndarray:
        v = cols.get(name)
        x = np.full(n, default) if v is None else np.asarray(v, dtype=np.float64)
        return np.where(np.isnan(x), default, x)

    run = _run_block(arch, col("n_train", spec.defaults.get("n_train", 1.0)),
                     col("epochs", spec.defaults.get("epochs", 1.0)), col("batch_size", spec.defaults.get("batch_size",
                                                                                                          1.0)))
    g = len(GLOBAL)
    return np.concatenate([arch[:, :g], run, arch[:, g:], _descriptor_block(spec, cols, n),
                           np.log(in_sizes)[:, None]], axis=1)


def _constant(rows: pl.DataFrame, col: str) -> Any:
    """The column's single value when every row holds the same non-null one (the usual case), else None."""
    if col not in rows.columns or rows[col].null_count():
        return None
    first = rows[col][0]
    return first if rows.select(pl.col(col).n_unique()).item() == 1 else None


def _shapes(rows: pl.DataFrame) -> tuple[list[tuple[int, ...]], list[int]]:
    n = rows.height
    shape = _constant(rows, "input_shape")
    if shape is not None:
        shapes = [tuple(shape)] * n
    elif "input_shape" in rows.columns:
        shapes = [tuple(s) if s is not None else DEFAULT_SHAPE[0] for s in rows["input_shape"].to_list()]
    else:
        shapes = [DEFAULT_SHAPE[0]] * n
    n_classes = _constant(rows, "n_classes")
    if n_classes is not None:
        classes = [int(n_classes)] * n
    elif "n_classes" in rows.columns:
        classes = [int(c) if c is not None else DEFAULT_SHAPE[1] for c in rows["n_classes"].to_list()]
    else:
        classes = [DEFAULT_SHAPE[1]] * n
    return shapes, classes


def row_features(rows: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Feature matrix (rows x len(spec.names)) of corpus rows (cached by arch_id: it is the sha256 of the JSON)."""
    shapes, classes = _shapes(rows)
    depth = spec.max_depth
    keys = rows["arch_id"].to_list() if "arch_id" in rows.columns else rows["arch_json"].to_list()
    d = ARCH_CACHE._d
    out = [d.get((k, s, c, depth)) for k, s, c in zip(keys, shapes, classes, strict=True)]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        js = rows["arch_json"].gather(missing).to_list()
        for i, j in zip(missing, js, strict=True):
            out[i] = ARCH_CACHE.put((keys[i], shapes[i], classes[i], depth), Network.from_json(j))
    arch = np.array(out)
    cols = {d: rows[d].cast(pl.Float64).to_numpy() for d in DESCRIPTORS if d in rows.columns}
    sizes = np.asarray([math.prod(s) for s in shapes], dtype=np.float64)
    return _assemble(spec, arch, cols, sizes)


def network_features(nets: Sequence[Network], descriptors: Mapping[str, Any], spec: FeatureSpec) -> np.ndarray:
    """Feature matrix of Network objects sharing one task description (the controller's fast path).

    ``descriptors`` holds ``input_shape`` and ``n_classes`` plus any of DESCRIPTORS (missing ones take the
    training mean the spec recorded).
    """
    shape = tuple(int(x) for x in descriptors.get("input_shape", DEFAULT_SHAPE[0]))
    n_classes = int(descriptors.get("n_classes", DEFAULT_SHAPE[1]))
    get = ARCH_CACHE.get
    arch = np.array([get(net, shape, n_classes, spec.max_depth) for net in nets])
    n = len(nets)
    cols = {d: np.full(n, float(descriptors[d])) for d in DESCRIPTORS if descriptors.get(d) is not None}
    return _assemble(spec, arch, cols, np.full(n, float(math.prod(shape))))


def row_descriptors(row: Mapping[str, Any]) -> dict[str, Any]:
    """The task description of one corpus row, as network_features takes it."""
    out = {d: row[d] for d in DESCRIPTORS if row.get(d) is not None}
    if row.get("input_shape") is not None:
        out["input_shape"] = list(row["input_shape"])
    return out


def spec_json(spec: FeatureSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)
