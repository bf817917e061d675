"""The torch builder of a spec: 1D or 2D layers chosen from the task's input rank."""

from __future__ import annotations

import torch
from torch import nn

from narch.search_space import Layer, Network, Op, infer_shapes


class _ConvBlock(nn.Sequential):
    def __init__(self, rank: int, c_in: int, layer: Layer) -> None:
        k, d, c_out = layer.kernel, layer.dilation, layer.channels
        conv = (nn.Conv1d, nn.Conv2d)[rank - 1](c_in, c_out, k, stride=layer.stride, padding=d * (k - 1) // 2,
                                                 dilation=d, groups=layer.groups)  # 'same' padding (odd k)
        bn = (nn.BatchNorm1d, nn.BatchNorm2d)[rank - 1](c_out)
        super().__init__(conv, bn, nn.ReLU(inplace=True))


class _Dense(nn.Sequential):
    def __init__(self, c_in: int, units: int) -> None:
        super().__init__(nn.Linear(c_in, units), nn.ReLU(inplace=True))


def _pool_module(layer: Layer, rank: int) -> nn.Module:
    """Non-overlapping ceil-mode pooling (stride = kernel) or 'same' pooling (stride 1, padding k//2)."""
    k, s = layer.kernel, layer.stride
    if layer.op == Op.MAXPOOL:
        cls = (nn.MaxPool1d, nn.MaxPool2d)[rank - 1]
        return cls(k, s, ceil_mode=True) if s == k else cls(k, 1, padding=k // 2)
    cls = (nn.AvgPool1d, nn.AvgPool2d)[rank - 1]
    return cls(k, s, ceil_mode=True) if s == k else cls(k, 1, padding=k // 2, count_include_pad=False)


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class SpecModel(nn.Module):
    """A network built from a spec; ``sources[i]`` are the layer indices module i reads (-1: the input)."""

    def __init__(self, net: Network, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        rank = len(input_shape) - 1
        if rank not in (1, 2):
            raise ValueError(f"input shape {input_shape}: rank {rank} is not 1 or 2")
        shapes = infer_shapes(net, in_channels=input_shape[0])
        self.sources: list[tuple[int, ...]] = []
        self.flatten_before: list[bool] = []
        mods: list[nn.Module] = []
        for i, layer in enumerate(net.layers):
            srcs = layer.inputs if layer.inputs else (i - 1,)
            src = srcs[0]
            c_in = input_shape[0] if src == -1 else shapes[src].channels
            src_flat = src != -1 and shapes[src].flat
            self.sources.append(tuple(srcs))
            self.flatten_before.append(layer.op == Op.DENSE and not src_flat)
            match layer.op:
                case Op.CONV:
                    mods.append(_ConvBlock(rank, c_in, layer))
                case Op.MAXPOOL | Op.AVGPOOL:
                    mods.append(_pool_module(layer, rank))
                case Op.DENSE:
                    mods.append(_Dense(c_in, layer.units))
                case Op.DROPOUT:
                    mods.append(nn.Dropout(layer.dropout_pct / 100))
                case Op.ADD:
                    mods.append(_Add())
        self.body = nn.ModuleList(mods)
        self.head_pool = not shapes[-1].flat
        self.head = nn.Linear(shapes[-1].channels, n_classes)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for mod, srcs, flat in zip(self.body, self.sources, self.flatten_before, strict=True):
            args = [x if j == -1 else outs[j] for j in srcs]
            if flat:
                args = [self._pool(args[0])]
            outs.append(mod(*args))
        y = outs[-1]
        return self.head(self._pool(y) if self.head_pool else y)


def build_model(net: Network, input_shape: tuple[int, ...], n_classes: int) -> SpecModel:
    """The torch module of a spec for inputs of shape (C, *spatial)."""
    return SpecModel(net, input_shape, n_classes)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers, measured on the module (the spec's trace predicts it without torch)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
