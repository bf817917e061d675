"""The paper's network embedding: a lookup table per layer feature, a layer LSTM, a network LSTM.

Shared by the performance simulation network (predictors) and the controller's policy and value networks. Input is
an ``EncodedBatch`` from ``search_space.encoding`` as tensors: tokens (B, N, F) and node counts (B,); node 0 is the
network input, node i + 1 is layer i, so ``layer_states[:, j + 1]`` describes layer j for the controller's heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from narch.search_space.encoding import FEATURE_VOCABS, N_FEATURES, EncodedBatch

_RADIX = torch.as_tensor(np.cumprod((1, *FEATURE_VOCABS[:-1])), dtype=torch.int64)


def batch_tensors(batch: EncodedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, lengths) of an encoded batch as int64 tensors (no copy)."""
    return torch.from_numpy(batch.tokens), torch.from_numpy(batch.lengths)


def node_mask(lengths: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """(B, N) bool, True on real nodes."""
    return torch.arange(n_nodes, device=lengths.device)[None, :] < lengths[:, None]


class FeatureTables(nn.Module):
    """One trainable lookup table per layer feature: tokens (..., F) -> vectors (..., F, dim).

    The F tables are stored as row blocks of one matrix (feature f's token t is row offset[f] + t), so a lookup is
    one gather instead of F: the same model, cheaper on the controller's hot path.
    """

    def __init__(self, dim: int, vocabs: tuple[int, ...] = FEATURE_VOCABS) -> None:
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(sum(vocabs), dim)
        self.register_buffer("offsets", torch.as_tensor(np.cumsum((0, *vocabs[:-1])), dtype=torch.int64),
                             persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table(tokens + self.offsets)


@dataclass(frozen=True)
class Embedded:
    """Output of NetworkEmbedding.

    network: (B, out_dim) network embedding; layers: (B, N, layer_dim) layer embeddings; states: (B, N, net_dim)
    network-LSTM state after each node; mask: (B, N) real nodes.
    """

    network: torch.Tensor
    layers: torch.Tensor
    states: torch.Tensor
    mask: torch.Tensor


class NetworkEmbedding(nn.Module):
    """Lookup tables -> layer LSTM over a layer's F feature vectors -> network LSTM over the layer embeddings.

    The layer LSTM depends only on a node's tokens, so it runs once per distinct token row in the batch (layers
    repeat heavily across networks) and the result is gathered back: same values, a fraction of the work.
    The network embedding is the last network-LSTM state concatenated with the mean state over real nodes.
    """

    def __init__(self, *, feature_dim: int = 16, layer_dim: int = 32, net_dim: int = 64) -> None:
        super().__init__()
        self.feature_dim, self.layer_dim, self.net_dim = feature_dim, layer_dim, net_dim
        self.tables = FeatureTables(feature_dim)
        self.layer_lstm = nn.LSTM(feature_dim, layer_dim, batch_first=True)
        self.net_lstm = nn.LSTM(layer_dim, net_dim, batch_first=True)
        self.register_buffer("radix", _RADIX.clone(), persistent=False)

    @property
    def out_dim(self) -> int:
        return 2 * self.net_dim

    def embed_layers(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, F) tokens -> (B, N, layer_dim) layer embeddings."""
        b, n, f = tokens.shape
        if f != N_FEATURES:
            raise ValueError(f"expected {N_FEATURES} token features per node, got {f}")
        flat = tokens.reshape(-1, f)
        keys = flat @ self.radix
        uniq, inverse = torch.unique(keys, return_inverse=True)
        rows = flat.new_zeros((uniq.shape[0], f))
        rows[inverse] = flat  # every writer of a slot holds the same tokens
        _, (h, _) = self.layer_lstm(self.tables(rows))
        return h[-1][inverse].reshape(b, n, self.layer_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> Embedded:
        n = tokens.shape[1]
        layers = self.embed_layers(tokens)
        packed = nn.utils.rnn.pack_padded_sequence(layers, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.net_lstm(packed)  # packed: no work on padding
        states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=n)
        mask = node_mask(lengths, n)
        last = h[-1]
        m = mask.unsqueeze(-1).to(states.dtype)
        mean = (states * m).sum(1) / m.sum(1).clamp_min(1.0)
        return Embedded(torch.cat([last, mean], dim=-1), layers, states, mask)
