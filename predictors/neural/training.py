"""The fitting loop shared by the neural families: seeded, early-stopped on the validation L1 of an inner split by
architecture (or of rows the caller holds out), reporting each round's value to a callback (the tuner's pruner)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narch.predictors.losses import LOSSES
from narch.predictors.neural.data import NetInputs


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. ``epochs`` are stretched so that a tiny training set still gets ``min_steps``."""

    epochs: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 25
    val_frac: float = 0.15
    loss: str = "l1"
    min_steps: int = 400
    clip_norm: float = 5.0
    aux_weight: float = 0.5

    @staticmethod
    def from_params(params: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in params.items() if k in names})
        if cfg.loss not in LOSSES:
            raise ValueError(f"loss {cfg.loss!r} is unknown (known: {', '.join(LOSSES)})")
        return cfg


@dataclass(frozen=True)
class TrainReport:
    rounds: int
    best_round: int
    best_val_loss: float
    steps: int


def inner_split(groups: np.ndarray, *, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, val); whole architectures go to one side. No validation below 8 architectures."""
    uniq, inv = np.unique(groups, return_inverse=True)
    n_val = round(val_frac * len(uniq)) if len(uniq) >= 8 else 0
    perm = np.random.default_rng(seed).permutation(len(uniq))
    is_val = np.zeros(len(uniq), dtype=bool)
    is_val[perm[:n_val]] = True
    rows = np.arange(len(groups))
    return rows[~is_val[inv]], rows[is_val[inv]]


def _l1_on(model: nn.Module, inputs: NetInputs, y: torch.Tensor, idx: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        out = model(inputs.take(torch.from_numpy(idx)))[:, 0]
        value = float(F.l1_loss(out, y[idx, 0]))
    model.train()
    return value


def train_model(
    build: Callable[[], nn.Module],
    inputs: NetInputs,
    y: np.ndarray,
    groups: np.ndarray,
    cfg: TrainConfig,
    *,
    seed: int,
    val_idx: np.ndarray | None = None,
    report: Callable[[int, float], None] | None = None,
    report_scale: float = 1.0,
) -> tuple[nn.Module, TrainReport]:
    """Build and fit a model on standardised targets ``y`` (R, T); returns it at its best validation round.

    Column 0 is the target; further columns are auxiliary heads (NaN where a row lacks the value), weighted by
    ``cfg.aux_weight``. Early stopping and reports use column 0 only.

    ``val_idx`` (rows held out by the caller) replaces the inner split; ``report(round, value)`` gets the
    validation L1 times ``report_scale`` (the fitting-space L1) and may raise to prune. The global torch RNG is
    forked, so fitting never disturbs the caller's random state.
    """
    loss_fn = LOSSES[cfg.loss]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
        if val_idx is None:
            tr, va = inner_split(groups, val_frac=cfg.val_frac, seed=seed)
        else:
            va = np.asarray(val_idx, dtype=np.int64)
            tr = np.setdiff1d(np.arange(len(groups)), va)
        gen = torch.Generator().manual_seed(seed)
        yt = torch.as_tensor(y, dtype=torch.float32).reshape(len(groups), -1)
        steps_per_round = max(1, math.ceil(len(tr) / cfg.batch_size))
        stretch = max(1.0, cfg.min_steps / (cfg.epochs * steps_per_round))
        rounds = math.ceil(cfg.epochs * stretch)
        patience = math.ceil(cfg.patience * stretch)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=rounds, eta_min=cfg.lr * 0.05)
        best, best_round, best_state, steps = math.inf, 0, None, 0
        tr_t = torch.from_numpy(tr)
        model.train()
        for r in range(rounds):
            perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
            total = 0.0
            for k in range(0, len(perm), cfg.batch_size):
                idx = perm[k : k + cfg.batch_size]
                out, yb = model(inputs.take(idx)), yt[idx]
                loss = loss_fn(out[:, 0], yb[:, 0])
                if yb.shape[1] > 1:
                    known = torch.isfinite(yb[:, 1:])
                    if known.any():
                        aux = loss_fn(out[:, 1:][known], yb[:, 1:][known])
                        loss = loss + cfg.aux_weight * aux
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                opt.step()
                total += float(loss.detach()) * len(idx)
                steps += 1
            sched.step()
            value = _l1_on(model, inputs, yt, va) if len(va) else total / len(tr)
            if report is not None:
                report(r, value * report_scale)
            if value < best - 1e-6:
                best, best_round = value, r
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif len(va) and r - best_round >= patience:
                break
        if best_state is not None and len(va):
            model.load_state_dict(best_state)
        model.eval()
    return model, TrainReport(r + 1, best_round, best, steps)
