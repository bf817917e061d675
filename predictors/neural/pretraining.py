"""Pretraining a graph encoder on unlabeled architectures, then fine-tuning it on the labeled ones (issue 12, item 2).

Only labels cost: a corpus (or a benchmark's whole cell space) holds many more architectures than a predictor is
given labels for. A family that declares ``uses_unlabeled`` receives, besides its training rows, the corpus's
architectures as ``unlabeled`` rows cut to ``ARCH_COLUMNS`` (what an architecture is and what it costs, computed from
the architecture alone; never an accuracy or a measured time), so no label can leak through them. The encoder is
pretrained to regress label-free properties of the architecture (standardised log of ``params`` and ``flops_fwd``,
where the rows carry them), which shapes its embedding around the network's size and compute before the few labels
arrive; fine-tuning then starts from that encoder with a fresh head.

Pretraining depends on the unlabeled set, the encoder's shape and the seed, not on the labels, so its result is
cached in-process: a leaderboard fitting the family at every size pretrains once per split seed.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from narch.predictors.neural.training import TrainConfig, train_model

ARCH_COLUMNS = ("arch_id", "arch_json", "bench_cell", "params", "flops_fwd")
PROPERTIES = ("params", "flops_fwd")
_CACHE: OrderedDict[str, dict[str, dict[str, torch.Tensor]]] = OrderedDict()
_CACHE_SIZE = 8


def unlabeled_view(rows: pl.DataFrame) -> pl.DataFrame:
    """The architecture-only columns of ``rows``, one row per architecture: what a family may pretrain on."""
    cols = [c for c in ARCH_COLUMNS if c in rows.columns]
    return rows.select(cols).unique(subset=["arch_id"], keep="first", maintain_order=True)


def property_targets(rows: pl.DataFrame) -> np.ndarray:
    """(R, K) standardised log properties of the rows (the label-free pretraining targets); K = 0 without any."""
    cols = []
    for name in PROPERTIES:
        if name not in rows.columns:
            continue
        v = rows[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        z = np.log1p(np.maximum(v, 0.0))
        ok = np.isfinite(z)
        if ok.sum() < 2 or z[ok].std() < 1e-9:
            continue
        cols.append(np.where(ok, (z - z[ok].mean()) / z[ok].std(), np.nan))
    return np.column_stack(cols) if cols else np.zeros((rows.height, 0))


def pretrain_body(build: Callable[[int], nn.Module], encode: Callable[[pl.DataFrame], Any], unlabeled: pl.DataFrame,
                  *, parts: Sequence[str], key: Sequence[Any], rows: int, epochs: int, params: dict[str, Any],
                  seed: int) -> dict[str, dict[str, torch.Tensor]] | None:
    """The state dicts of ``parts`` (module attribute names, e.g. the embedding and the graph layers) of a model
    ``build(k)`` with k outputs, fitted to the unlabeled rows' properties; None when the rows have no property.

    ``rows`` architectures at most are drawn (seeded) from ``unlabeled``; ``params`` are the family's optimiser
    settings (epochs replaced by ``epochs``); ``key`` names everything else the result depends on (cache key)."""
    pool = unlabeled_view(unlabeled)
    if pool.height > rows:
        pool = pool.sample(rows, seed=seed, shuffle=True)
    pool = pool.sort("arch_id")
    y = property_targets(pool)
    if y.shape[1] == 0 or pool.height < 8:
        return None
    digest = hashlib.sha256("\n".join(pool["arch_id"].to_list()).encode()).hexdigest()
    cache_key = json.dumps([digest, list(key), rows, epochs, seed, sorted(params.items())], sort_keys=True,
                           default=str)
    if cache_key in _CACHE:
        _CACHE.move_to_end(cache_key)
        return _CACHE[cache_key]
    cfg = TrainConfig.from_params({**params, "epochs": epochs, "min_steps": 0, "loss": "l1", "aux_weight": 1.0})
    model, _ = train_model(lambda: build(y.shape[1]), encode(pool), y, pool["arch_id"].to_numpy(), cfg, seed=seed)
    body = {p: {k: v.detach().clone() for k, v in getattr(model, p).state_dict().items()} for p in parts}
    _CACHE[cache_key] = body
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return body


def load_body(model: nn.Module, body: dict[str, dict[str, torch.Tensor]] | None) -> nn.Module:
    """Copy a pretrained body into a freshly built model (its head stays as initialised)."""
    for part, state in (body or {}).items():
        getattr(model, part).load_state_dict(state)
    return model


__all__ = ["ARCH_COLUMNS", "load_body", "pretrain_body", "property_targets", "unlabeled_view"]
