"""Fast fixed-length features of corpus rows and of Network objects: a flat architecture encoding plus data descriptors.

The architecture part is read off the search space's trace (shapes, parameters and multiply-accumulates) and cached
per (architecture, input shape, classes), so rows parsed from JSON and ``Network`` objects from the controller give
identical features and a repeated network costs a dict look-up. New networks are featurised together: one batched
trace (``trace_table``) and numpy columns for the per-layer block and the global counts; only the path encoding and a
few logarithms per network stay in Python (the logarithms through ``math``, so values equal the one-network form).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from narch.core.lru import LRU
from narch.search_space import Layer, Network, Op, deepest
from narch.search_space.trace import C_ADD, C_CONV, C_DROPOUT, TraceTable, batch_trace, trace_table

FEATURES_VERSION = 2
OPS = tuple(Op)  # = trace.OPS: a table's op codes index it
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


_LG = np.zeros(0)


def _lg_of(x: np.ndarray) -> np.ndarray:
    """``_lg`` of non-negative integers by a table of ``math.log2`` values (equal to the scalar form, vectorised)."""
    global _LG
    top = int(x.max(initial=0))
    if top >= len(_LG):
        _LG = np.asarray([_lg(i) for i in range(max(top + 1, 4097))])
    return _LG[x]


def _token_of(op: Op, kernel: int, stride: int, groups: int, dilation: int) -> str:
    """A layer's label on a path."""
    if op is Op.CONV:
        # grouped and dilated convs get labels of their own; a plain conv's label (and its bucket) is unchanged
        g = "g" if groups != 1 else ""
        d = f"d{dilation}" if dilation != 1 else ""
        return f"c{kernel}s{stride}{g}{d}"
    if op is Op.MAXPOOL or op is Op.AVGPOOL:
        return f"{op.value[0]}p{kernel}s{stride}"
    if op is Op.DENSE:
        return "d"
    return ""  # dropout and add leave a path's label unchanged


def _token(layer: Layer) -> str:
    return _token_of(layer.op, layer.kernel, layer.stride, layer.groups, layer.dilation)


@lru_cache(maxsize=1 << 16)
def _label_info(label: tuple[str, ...]) -> tuple[int, int, int]:
    """(bucket, convs on the path, length) of a path label."""
    return zlib.crc32("/".join(label).encode()) % PATH_BUCKETS, sum(t[0] == "c" for t in label), len(label)


_INPUT_PATHS: dict[tuple[str, ...], int] = {(): 1}


def _paths(tokens: Sequence[str], firsts: Sequence[int], seconds: Sequence[int]) -> dict[tuple[str, ...], int]:
    """Input-to-output paths of a network by op-sequence label, with their counts: per layer its label token, its
    first source and its second one (an add's; -2: none), -1 being the network input.

    A layer with one source has its source's labels, extended by its token: it is kept as (the labels of the last
    merge, the tokens since), and labels are spelled out only where two sources merge and at the output.
    """
    inp: tuple[dict[tuple[str, ...], int], tuple[str, ...]] = (_INPUT_PATHS, ())
    paths: list[tuple[dict[tuple[str, ...], int], tuple[str, ...]]] = []
    for tok, j, b in zip(tokens, firsts, seconds, strict=True):
        base, suffix = paths[j] if j >= 0 else inp
        if tok:
            suffix = (*suffix, tok)
        if b == -2:  # one source: the labels extend (or stay: dropout) and cannot collide
            paths.append((base, suffix))
            continue
        merged = dict(_spelled(base, suffix))
        base_b, suffix_b = paths[b] if b >= 0 else inp
        for label, c in _spelled(base_b, (*suffix_b, tok) if tok else suffix_b).items():
            merged[label] = merged.get(label, 0) + c
        if len(merged) > MAX_LABELS:  # keep the most frequent labels; counts beyond are rare in this space
            merged = dict(sorted(merged.items(), key=lambda kv: -kv[1])[:MAX_LABELS])
        paths.append((merged, ()))
    return _spelled(*paths[-1])


def _spelled(base: dict[tuple[str, ...], int], suffix: tuple[str, ...]) -> dict[tuple[str, ...], int]:
    return {(*label, *suffix): c for label, c in base.items()} if suffix else base


def _path_rows(paths: Sequence[dict[tuple[str, ...], int]]) -> np.ndarray:
    """Path encodings (rows as ``path_vector``) of networks' output paths: the path statistics (PATHS before the
    buckets) and the counts per hashed bucket, for every network at once (sums of integer counts: exact)."""
    n_head = len(PATHS) - PATH_BUCKETS
    b = len(paths)
    net: list[int] = []
    counts: list[int] = []
    info: list[tuple[int, int, int]] = []
    for r, p in enumerate(paths):
        net += [r] * len(p)
        counts += p.values()
        info += map(_label_info, p)
    net_a = np.asarray(net, dtype=np.int64)
    c = np.asarray(counts, dtype=np.float64)
    bucket, conv, length = np.asarray(info, dtype=np.int64).reshape(-1, 3).T
    firsts = np.searchsorted(net_a, np.arange(b))  # a network's labels are contiguous
    total = np.bincount(net_a, weights=c, minlength=b)
    out = np.zeros((b, len(PATHS)))
    out[:, 0] = [math.log(t) for t in total.tolist()]
    out[:, 1] = np.bincount(net_a, minlength=b)
    out[:, 2] = np.minimum.reduceat(conv, firsts)
    out[:, 3] = np.bincount(net_a, weights=c * conv, minlength=b) / total
    out[:, 4] = np.maximum.reduceat(conv, firsts)
    out[:, 5] = np.bincount(net_a, weights=np.where(conv == 0, c, 0.0), minlength=b) / total
    out[:, 6] = np.minimum.reduceat(length, firsts)
    out[:, 7] = np.maximum.reduceat(length, firsts)
    assert n_head == 8
    np.add.at(out, (net_a, n_head + bucket), c)
    return out


def _table_tokens(t: TraceTable) -> list[str]:
    """Every layer's path token, computed once per distinct (op, kernel, stride, grouped, dilation) of the batch."""
    c = t.cols
    key = (((c["op"] * 16 + c["kernel"]) * 16 + c["stride"]) * 2 + (c["groups"] != 1)) * 16 + c["dilation"]
    uniq, inv = np.unique(key, return_inverse=True)
    rows = [int(np.flatnonzero(key == k)[0]) for k in uniq.tolist()]
    toks = [_token_of(OPS[c["op"][r]], int(c["kernel"][r]), int(c["stride"][r]), int(c["groups"][r]),
                      int(c["dilation"][r])) for r in rows]
    return [toks[k] for k in inv.reshape(-1).tolist()]


def _path_matrix(t: TraceTable) -> np.ndarray:
    """Path encodings of a traced batch."""
    toks = _table_tokens(t)
    c = t.cols
    firsts = c["src"].tolist()
    seconds = np.where(c["dist_b"] > 0, t.pos - c["dist_b"], -2).tolist()
    bounds = t.start.tolist()
    return _path_rows([_paths(toks[lo:hi], firsts[lo:hi], seconds[lo:hi])
                       for lo, hi in pairwise(bounds)])


def path_vector(net: Network) -> np.ndarray:
    """Path encoding (after BANANAS): input-to-output paths labelled by their op sequence, counted into hashed
    buckets, plus path statistics. Position-free, so cells mapped onto layer DAGs encode by structure."""
    firsts = [x.inputs[0] if x.inputs else i - 1 for i, x in enumerate(net.layers)]
    seconds = [x.inputs[1] if len(x.inputs) > 1 else -2 for x in net.layers]
    return _path_rows([_paths([_token(x) for x in net.layers], firsts, seconds)])[0]


_NO_ACT_CODES = (C_DROPOUT, C_ADD)  # their outputs are not counted as activations


def arch_matrix(t: TraceTable, nets: Sequence[Network], max_depth: int) -> np.ndarray:
    """GLOBAL + per-layer + path features of a traced batch (RUN and descriptors are added per row), one row per
    network; ``nets`` are the networks ``t`` traced, in order."""
    b = len(t)
    c = t.cols
    op, kernel, stride = c["op"], c["kernel"], c["stride"]
    n_ops = len(OPS)
    net_of, pos = t.net, t.pos
    firsts = t.start[:-1]
    depth = t.depth
    out_ch = c["out_channels"]
    down = c["downsample"]
    # global block
    counts = np.bincount(net_of * n_ops + op, minlength=b * n_ops).reshape(b, n_ops)
    n_stride2 = np.bincount(net_of, weights=(op == C_CONV) & (stride == 2), minlength=b)
    act = np.where((op == _NO_ACT_CODES[0]) | (op == _NO_ACT_CODES[1]), 0, t.out_elems)
    acts = np.add.reduceat(act, firsts) + math.prod(t.input_shape[1:])
    max_down = np.maximum.reduceat(down, firsts)
    max_ch = np.maximum.reduceat(out_ch, firsts)
    sum_ch = np.add.reduceat(out_ch, firsts)
    last = t.last
    g = np.empty((b, len(GLOBAL)))
    g[:, 0] = depth
    g[:, 1:1 + n_ops] = counts
    k = 1 + n_ops
    g[:, k] = n_stride2
    g[:, k + 1] = [math.log(p) for p in t.total_params.tolist()]
    g[:, k + 2] = [math.log(2.0 * m + 1) for m in t.total_macs.tolist()]
    g[:, k + 3] = [math.log(a) for a in acts.tolist()]
    g[:, k + 4] = [math.log2(d) for d in max_down.tolist()]
    g[:, k + 5] = _lg_of(max_ch)
    g[:, k + 6] = [_lg(s / n) for s, n in zip(sum_ch.tolist(), depth.tolist(), strict=True)]
    g[:, k + 7] = np.maximum.reduceat(kernel, firsts)
    g[:, k + 8] = _lg_of(out_ch[last])
    g[:, k + 9] = c["flat"][last]
    # per-layer block: the first max_depth layers of each network
    keep = pos < max_depth
    rows = np.zeros((int(keep.sum()), len(PER_LAYER)))
    kept = np.flatnonzero(keep)
    rows[np.arange(len(kept)), op[kept]] = 1.0
    down_kept = down[kept]
    uniq, inv = np.unique(down_kept, return_inverse=True)
    rows[:, n_ops:] = np.column_stack([
        _lg_of(c["channels"][kept]), kernel[kept], stride[kept], _lg_of(c["units"][kept]), c["dropout_pct"][kept] / 100,
        c["dist_a"][kept], c["dist_b"][kept], _lg_of(out_ch[kept]),
        np.asarray([math.log2(d) for d in uniq.tolist()])[inv.reshape(-1)],
    ])
    per = np.zeros((b, max_depth, len(PER_LAYER)))
    per[net_of[kept], pos[kept]] = rows
    return np.concatenate([g, per.reshape(b, -1), _path_matrix(t)], axis=1)


def arch_vector(net: Network, input_shape: tuple[int, ...], n_classes: int, max_depth: int) -> np.ndarray:
    """GLOBAL + per-layer features of one network (RUN and descriptors are added per row), read off its trace."""
    return arch_matrix(trace_table([net], input_shape, n_classes), [net], max_depth)[0]


class _ArchCache:
    """Arch vectors keyed by (arch_id or Network, input shape, classes, depth): a bounded LRU; misses are computed
    together (one batched trace)."""

    def __init__(self, max_entries: int = _CACHE_MAX) -> None:
        self._lru: LRU[np.ndarray] = LRU(max_entries)

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self) -> None:
        self._lru.clear()

    def many(self, keys: Sequence[Hashable], nets: Callable[[list[int]], Sequence[Network]],
             shape: tuple[int, ...], n_classes: int, depth: int) -> list[np.ndarray]:
        """Vectors of ``keys`` (all of one task); ``nets(missing)``: the networks of the positions not cached."""
        get = self._lru.get
        out = [get((k, shape, n_classes, depth)) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            todo: dict[Hashable, int] = {}  # a batch may repeat a network: compute it once
            for i in missing:
                todo.setdefault(keys[i], i)
            firsts = list(todo.values())
            new = nets(firsts)
            mat = arch_matrix(batch_trace(new, shape, n_classes), new, depth)
            put = self._lru.put
            by_key = {keys[i]: put((keys[i], shape, n_classes, depth), row.copy())
                      for i, row in zip(firsts, mat, strict=True)}
            for i in missing:
                out[i] = by_key[keys[i]]
        return out  # type: ignore[return-value]

    def get(self, net: Network, shape: tuple[int, ...], n_classes: int, depth: int) -> np.ndarray:
        return self.many([net], lambda _: [net], shape, n_classes, depth)[0]


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
    groups: dict[tuple[tuple[int, ...], int], list[int]] = {}  # one task per group (usually one group)
    for i, task in enumerate(zip(shapes, classes, strict=True)):
        groups.setdefault(task, []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * rows.height
    js = rows["arch_json"]
    for (shape, n_classes), idx in groups.items():
        def parse(missing: list[int], idx: list[int] = idx) -> list[Network]:
            return [Network.from_json(j) for j in js.gather([idx[m] for m in missing]).to_list()]

        for i, v in zip(idx, ARCH_CACHE.many([keys[i] for i in idx], parse, shape, n_classes, depth), strict=True):
            out[i] = v
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
    arch = np.array(ARCH_CACHE.many(nets, lambda missing: [nets[i] for i in missing], shape, n_classes,
                                    spec.max_depth))
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
