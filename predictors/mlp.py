"""A multilayer perceptron on the flat features (torch, L1 loss as in the paper); payload a state dict + .npy.

It reports its validation L1 after every epoch block when the tuner passes ``val_rows`` and ``report``, so a
MedianPruner can stop poor trials early (the protocol the neural families follow too, see predictors/base.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import polars as pl

from narch.core.files import atomic_write_bytes
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.payloads import load_torch_state
from narch.predictors.tabular import TabularPredictor, load_array, save_arrays
from narch.predictors.transforms import transform_choice

REPORT_EVERY = 10  # epochs between intermediate reports


def _net(n_in: int, hidden: int, layers: int, dropout: float) -> Any:
    import torch.nn as nn

    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        if dropout > 0:
            mods.append(nn.Dropout(dropout))
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


@PREDICTORS.register("mlp")
class MLPPredictor(TabularPredictor):
    """Fully connected network on standardised features and a standardised target."""

    reports_progress = True

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_int("hidden", 32, 256, log=True),
            "layers": trial.suggest_int("layers", 1, 3),
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "epochs": trial.suggest_int("epochs", 40, 200, step=20),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "loss": trial.suggest_categorical("loss", ["l1", "pairwise"]),
            **transform_choice(trial),
        }

    def _hp(self) -> dict[str, Any]:
        return {"hidden": 128, "layers": 2, "lr": 2e-3, "weight_decay": 1e-4, "epochs": 100, "dropout": 0.0,
                "batch_size": 64, "loss": "l1"} | self.params

    def fit(self, rows: pl.DataFrame, target: Target, *, val_rows: pl.DataFrame | None = None,
            report: Callable[[int, float], None] | None = None) -> Self:
        y = self._begin(rows, target)
        val = None
        if val_rows is not None and report is not None and val_rows.height:
            val = (self.features(val_rows), self.model_space(val_rows))
        self._train(self.features(rows), y, val, report)
        return self

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self._train(x, y, None, None)

    def _train(self, x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None,
               report: Callable[[int, float], None] | None) -> None:
        import torch

        hp = self._hp()
        self.mu_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd_ = np.where(sd > 1e-12, sd, 1.0)
        self.ystat_ = np.array([y.mean(), max(float(y.std()), 1e-6)])
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.model_ = _net(x.shape[1], int(hp["hidden"]), int(hp["layers"]), float(hp["dropout"]))
        xt = torch.as_tensor((x - self.mu_) / self.sd_, dtype=torch.float32)
        yt = torch.as_tensor((y - self.ystat_[0]) / self.ystat_[1], dtype=torch.float32)
        opt = torch.optim.AdamW(self.model_.parameters(), lr=float(hp["lr"]), weight_decay=float(hp["weight_decay"]))
        bs = max(1, min(int(hp["batch_size"]), len(yt)))
        epochs = int(hp["epochs"])
        from narch.predictors.losses import LOSSES  # torch-bound: imported when a fit runs

        if hp["loss"] not in LOSSES:
            raise ValueError(f"loss {hp['loss']!r} is unknown (known: {', '.join(LOSSES)})")
        loss_fn = LOSSES[hp["loss"]]
        for epoch in range(epochs):
            self.model_.train()
            for idx in torch.randperm(len(yt), generator=gen).split(bs):
                loss = loss_fn(self.model_(xt[idx]).squeeze(1), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if val is not None and report is not None and ((epoch + 1) % REPORT_EVERY == 0 or epoch + 1 == epochs):
                report(epoch + 1, float(np.mean(np.abs(self._predict(val[0]) - val[1]))))
        self.model_.eval()

    def _predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.model_.eval()
        with torch.inference_mode():
            z = self.model_(torch.as_tensor((x - self.mu_) / self.sd_, dtype=torch.float32)).squeeze(1).numpy()
        return z.astype(np.float64) * self.ystat_[1] + self.ystat_[0]

    def _save(self, folder: Path) -> list[str]:
        import torch

        state = self.model_.state_dict()
        atomic_write_bytes(folder / "mlp.pt", lambda f: torch.save(state, f))
        return ["mlp.pt", *save_arrays(folder, {"mu": self.mu_, "sd": self.sd_, "ystat": self.ystat_})]

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:

        self.mu_, self.sd_ = load_array(folder, "mu"), load_array(folder, "sd")
        self.ystat_ = load_array(folder, "ystat")
        hp = self._hp()
        self.model_ = _net(self.mu_.size, int(hp["hidden"]), int(hp["layers"]), float(hp["dropout"]))
        self.model_.load_state_dict(load_torch_state(folder / "mlp.pt"))
        self.model_.eval()
