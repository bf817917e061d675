"""Inputs of the neural predictors: encoded networks (tokens, node counts, input nodes) and a normalised side vector.

The side vector holds the data descriptors (the paper's "description of the training data set") taken from the
shared flat featurisation (predictors/features.py, depth 0), so every family reads descriptors identically; with
``arch_scalars`` it also carries the global architecture and whole-run cost terms (log params, log FLOPs, ...).
Off by default: on the reference MNIST-1D corpus (3,000 architectures) both the LSTM and the GIN ranked better
from the embedding alone (LSTM val_acc τ 0.85 vs 0.80, log-time MAE 0.073 vs 0.093 on the same split).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from narch.predictors.features import DEFAULT_SHAPE, DESCRIPTORS, FeatureSpec, network_features, row_features
from narch.search_space import Network
from narch.search_space.encoding import DEFAULT_ENCODER, EncodedBatch


@dataclass(frozen=True)
class NetInputs:
    """A batch for the torch models; ``sources`` (B, N, 2), each node's input nodes or -1, only for graph models."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    side: torch.Tensor
    sources: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def take(self, idx: torch.Tensor) -> NetInputs:
        """Rows ``idx``, trimmed to the longest network among them."""
        lengths = self.lengths[idx]
        n = int(lengths.max())
        src = None if self.sources is None else self.sources[idx, :n]
        return NetInputs(self.tokens[idx, :n], lengths, self.side[idx], src)


def to_inputs(batch: EncodedBatch, side: np.ndarray, *, graph: bool) -> NetInputs:
    return NetInputs(
        torch.from_numpy(batch.tokens),
        torch.from_numpy(batch.lengths),
        torch.from_numpy(np.ascontiguousarray(side, dtype=np.float32)),
        torch.from_numpy(batch.sources()) if graph else None,
    )


def _in_channels(rows: pl.DataFrame) -> list[int]:
    if "input_shape" not in rows.columns:
        return [DEFAULT_SHAPE[0][0]] * rows.height
    return [int(s[0]) if s is not None else DEFAULT_SHAPE[0][0] for s in rows["input_shape"].to_list()]


@dataclass(frozen=True)
class SideFeatures:
    """Which columns of the depth-0 flat features feed the model, and their training mean and scale."""

    spec: FeatureSpec
    columns: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.columns)

    @staticmethod
    def fit(rows: pl.DataFrame, *, arch_scalars: bool) -> SideFeatures:
        spec = FeatureSpec.from_rows(rows, max_depth=0)
        names = spec.names
        cols = tuple(
            i for i, n in enumerate(names) if arch_scalars or n.startswith("d_") or n == "log_input_size"
        )
        x = row_features(rows, spec)[:, cols]
        std = x.std(axis=0)
        std = np.where(std > 1e-9, std, 1.0)
        return SideFeatures(spec, cols, tuple(map(float, x.mean(axis=0))), tuple(map(float, std)))

    def _norm(self, x: np.ndarray) -> np.ndarray:
        return ((x[:, list(self.columns)] - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def of_rows(self, rows: pl.DataFrame) -> np.ndarray:
        cols = [c for c in (*DESCRIPTORS, "input_shape") if c in rows.columns]
        if self.descriptors_only and cols and rows.height > 1:  # featurise each distinct task description once
            keys = rows.select(cols).hash_rows().to_numpy()
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            return self._norm(row_features(rows[first.tolist()], self.spec))[inverse.reshape(-1)]
        return self._norm(row_features(rows, self.spec))

    @property
    def descriptors_only(self) -> bool:
        names = self.spec.names
        return all(names[i].startswith("d_") or names[i] == "log_input_size" for i in self.columns)

    def of_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> np.ndarray:
        if self.descriptors_only and nets:  # one task description: every row is the same vector
            return np.repeat(self._norm(network_features(nets[:1], descriptors, self.spec)), len(nets), axis=0)
        return self._norm(network_features(nets, descriptors, self.spec))

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "columns": list(self.columns), "mean": list(self.mean),
                "std": list(self.std)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SideFeatures:
        return SideFeatures(FeatureSpec.from_dict(d["spec"]), tuple(d["columns"]), tuple(d["mean"]), tuple(d["std"]))


def rows_inputs(rows: pl.DataFrame, side: SideFeatures, *, graph: bool) -> NetInputs:
    """Model inputs of corpus rows (encodings cached per arch JSON)."""
    batch = DEFAULT_ENCODER.arch_jsons(rows["arch_json"].to_list(), in_channels=_in_channels(rows))
    return to_inputs(batch, side.of_rows(rows), graph=graph)


def networks_inputs(
    nets: Sequence[Network], descriptors: Mapping[str, Any], side: SideFeatures, *, graph: bool
) -> NetInputs:
    """Model inputs of Network objects sharing one task description (the controller's fast path)."""
    shape = descriptors.get("input_shape", DEFAULT_SHAPE[0])
    batch = DEFAULT_ENCODER.networks(nets, in_channels=int(shape[0]))
    return to_inputs(batch, side.of_networks(nets, descriptors), graph=graph)
