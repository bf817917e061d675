"""The paper's performance simulation network: network embedding + data descriptors -> MLP head, L1 loss."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from narch.predictors.base import PREDICTORS
from narch.predictors.neural.data import NetInputs
from narch.predictors.neural.embedding import NetworkEmbedding
from narch.predictors.neural.regressor import NeuralPredictor


def mlp_head(in_dim: int, hidden: int, *, out_dim: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """Two hidden ReLU layers; the regression head of every neural family."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_dim),
    )


class SimulationNet(nn.Module):
    """Embedding of the network, concatenated with the side vector (descriptors), through the head."""

    def __init__(
        self, side_dim: int, *, feature_dim: int, layer_dim: int, net_dim: int, hidden: int, dropout: float,
        out_dim: int = 1,
    ) -> None:
        super().__init__()
        self.embedding = NetworkEmbedding(feature_dim=feature_dim, layer_dim=layer_dim, net_dim=net_dim)
        self.head = mlp_head(self.embedding.out_dim + side_dim, hidden, out_dim=out_dim, dropout=dropout)

    def forward(self, x: NetInputs) -> torch.Tensor:
        emb = self.embedding(x.tokens, x.lengths).network
        return self.head(torch.cat([emb, x.side], dim=-1))


@PREDICTORS.register("lstm_embedding")
class LSTMEmbeddingPredictor(NeuralPredictor):
    """Zhou & Diamos's performance simulation network (lookup tables, layer LSTM, network LSTM, descriptors)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "feature_dim": 16,
        "layer_dim": 32,
        "net_dim": 64,
        "hidden": 128,
        "dropout": 0.0,
        "arch_scalars": False,
        "epochs": 100,
        "batch_size": 128,
        "lr": 5e-3,
        "weight_decay": 1e-4,
        "patience": 20,
        "val_frac": 0.15,
        "loss": "l1",
        "min_steps": 400,
        "aux_targets": "",
        "aux_weight": 0.5,
    }

    test_params: ClassVar[dict[str, Any]] = {"epochs": 3, "min_steps": 6, "net_dim": 16, "layer_dim": 8, "hidden": 16}

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "feature_dim": trial.suggest_categorical("feature_dim", [8, 16, 32]),
            "layer_dim": trial.suggest_categorical("layer_dim", [16, 32, 64]),
            "net_dim": trial.suggest_categorical("net_dim", [32, 64, 128]),
            "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "arch_scalars": trial.suggest_categorical("arch_scalars", [False, True]),
            "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "loss": trial.suggest_categorical("loss", ["l1", "pairwise"]),
        }

    def _build(self, side_dim: int, out_dim: int) -> nn.Module:
        p = self.params
        return SimulationNet(
            side_dim, feature_dim=p["feature_dim"], layer_dim=p["layer_dim"], net_dim=p["net_dim"],
            hidden=p["hidden"], dropout=p["dropout"], out_dim=out_dim,
        )
