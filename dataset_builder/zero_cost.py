"""Zero-cost proxies: scores of a network at initialisation, from one fixed minibatch of its training data.

The definitions follow NASLib's implementations (automl/NASLib ``naslib/predictors/pruners/measures``, after
Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021), on the weights of every convolution and
linear layer (the classifier head included):

Each proxy's definition is the meaning of its ``zc_<name>`` column in ``schema.ZERO_COST`` (``narch corpus info``
prints it); PROXIES takes its names and order from there.

Data-dependent proxies read the minibatch's inputs and labels. Proxies that share a pass are computed together
(one forward pass with its backward passes gives all eight data-dependent ones); every pass sees the same initial
weights (see zero_cost_scores), and the global random streams are left untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narch.dataset_builder.model import build_model
from narch.dataset_builder.schema import ZC_PREFIX, ZERO_COST
from narch.search_space import Network
from narch.search_space.trace import trace_network

EPS = 1e-5
ZEN_MIXUP = 1e-2
BATCH = 64  # examples in the proxies' minibatch


@dataclass(frozen=True)
class Batch:
    """The fixed minibatch: inputs (N, C, *spatial) and labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor


def minibatch(x: torch.Tensor, y: torch.Tensor, *, size: int = BATCH, seed: int = 0) -> Batch:
    """``size`` training examples drawn by ``seed`` (the same ones for every network of a corpus)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(y), generator=gen)[: min(size, len(y))].to(x.device)
    return Batch(x[idx].float(), y[idx].long())


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)]


Scores = dict[str, float]
Group = Callable[[Network, tuple[int, ...], int, nn.Module, Batch], Scores]


def _static(net: Network, shape: tuple[int, ...], n_classes: int, model: nn.Module, b: Batch) -> Scores:
    """params, flops, l2_norm: no pass at all."""
    return {"params": float(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "flops": 2.0 * trace_network(net, shape, n_classes).macs,
            "l2_norm": float(sum(m.weight.detach().norm() for m in _weighted(model)))}


def _corr_score(jac: np.ndarray) -> float:
    corr = np.nan_to_num(np.corrcoef(jac))
    v = np.maximum(np.linalg.eigvalsh(corr), 0.0)
    return float(-np.sum(np.log(v + EPS) + 1.0 / (v + EPS)))


def _epe(jac: np.ndarray, labels: np.ndarray) -> float:
    score = 0.0
    for c in np.unique(labels):
        rows = jac[labels == c]
        if len(rows) >= 2:  # one example: its correlation is 1 and adds log(1 + eps) ~ 0
            score += abs(float(np.sum(np.log(np.abs(np.nan_to_num(np.corrcoef(rows))) + EPS))))
    return score


def _grad(y: torch.Tensor, xs: list[torch.Tensor], *, create_graph: bool = False) -> list[torch.Tensor]:
    """dy/dx for every x; zeros for the weights of a layer nothing reads (about 2 % of sampled networks have one)."""
    gs = torch.autograd.grad(y, xs, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, gs, strict=True)]


def _data_pass(net: Network, shape: tuple[int, ...], n_classes: int, model: nn.Module, b: Batch) -> Scores:
    """Every data-dependent proxy from one forward pass: plain, snip, grad_norm and fisher from the loss gradient
    (weights and ReLU outputs), grasp from its Hessian-vector product, jacov and epe_nas from the input Jacobian of
    the summed outputs, naswot from the ReLU codes."""
    n = len(b.y)
    weights = [m.weight for m in _weighted(model)]
    acts: list[torch.Tensor] = []
    k = torch.zeros(n, n, dtype=torch.float64)

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        acts.append(out)
        c = (out.detach().reshape(n, -1) > 0).double()
        k.add_(c @ c.T + (1 - c) @ (1 - c).T)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    x = b.x.clone().requires_grad_(True)
    try:
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    (jac_t,) = torch.autograd.grad(out, x, torch.ones_like(out), retain_graph=True)
    grads = _grad(F.cross_entropy(out, b.y), weights + acts, create_graph=True)
    gw, ga = grads[: len(weights)], grads[len(weights):]
    g = [t.detach() for t in gw]
    prod = [w.detach() * t for w, t in zip(weights, g, strict=True)]
    fisher = 0.0
    for a, t in zip(acts, ga, strict=True):
        per = a.detach() * t.detach()
        per = per.flatten(2).sum(2) if per.dim() > 2 else per  # (N, C): summed over positions
        fisher += float((0.5 * per.pow(2).mean(0)).sum())
    hg = torch.autograd.grad(sum((c * t).sum() for c, t in zip(g, gw, strict=True)), weights, allow_unused=True)
    grasp = sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg, strict=True) if h is not None)
    jac = jac_t.reshape(n, -1).double().cpu().numpy()
    return {"plain": float(sum(t.sum() for t in prod)), "snip": float(sum(t.abs().sum() for t in prod)),
            "grad_norm": float(sum(t.norm() for t in g)), "fisher": fisher, "grasp": grasp,
            "jacov": _corr_score(jac), "epe_nas": _epe(jac, b.y.cpu().numpy()),
            "naswot": float(torch.linalg.slogdet(k).logabsdet)}


def _synflow(net: Network, shape: tuple[int, ...], n_classes: int, model: nn.Module, b: Batch) -> Scores:
    model = model.double().eval()
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    out = model(torch.ones(1, *b.x.shape[1:], dtype=torch.float64, device=b.x.device))
    weights = [m.weight for m in _weighted(model)]
    grads = _grad(out.sum(), weights)
    return {"synflow": float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))}


def _zen(net: Network, shape: tuple[int, ...], n_classes: int, model: nn.Module, b: Batch) -> Scores:
    feats: list[torch.Tensor] = []
    hook = model.body[-1].register_forward_hook(lambda _m, _i, out: feats.append(out))  # type: ignore[index]
    gen = torch.Generator(device=b.x.device).manual_seed(0)
    x = torch.randn(b.x.shape, generator=gen, device=b.x.device)
    x2 = torch.randn(b.x.shape, generator=gen, device=b.x.device)
    try:
        with torch.no_grad():
            model(x)
            model(x + ZEN_MIXUP * x2)
    finally:
        hook.remove()
    diff = (feats[0] - feats[1]).abs().reshape(len(x), -1).sum(1).mean()
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    scale = sum(float(torch.log(torch.sqrt(m.running_var.mean()))) for m in bn)  # type: ignore[arg-type]
    return {"zen": float(torch.log(diff)) + scale}


@dataclass(frozen=True)
class Proxy:
    name: str
    group: Group  # the pass that computes it (with the other proxies of its group)


# Which pass computes each proxy; the names and their order are schema.ZERO_COST's (one list, documented there).
_GROUPS: dict[str, Group] = {"params": _static, "flops": _static, "l2_norm": _static, "synflow": _synflow,
                             "zen": _zen}
PROXIES: dict[str, Proxy] = {n: Proxy(n, _GROUPS.get(n, _data_pass)) for n, _, _ in ZERO_COST}


ORDER = (_static, _data_pass, _zen, _synflow)  # synflow last: it rewrites the weights (abs, float64)
PRISTINE = (_zen, _synflow)  # read the BN running statistics, which training-mode passes before them moved


def _prepare(net: Network, shape: tuple[int, ...], n_classes: int, device: torch.device
             ) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The network at its initialisation (under the caller's seed), in training mode, with out-of-place ReLUs
    (hooks read clean tensors), and a copy of its initial state to restore."""
    model = build_model(net, shape, n_classes)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    init = {k: v.clone() for k, v in model.state_dict().items()}
    return model.to(device).train(), init


def reseed(seed: int, device: torch.device) -> None:
    """Seed the generators dropout and initialisation draw from (``torch.manual_seed`` also walks every backend and
    records a stack trace, ~0.4 ms a call: too slow to call per pass)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def zero_cost_scores(net: Network, batch: Batch, input_shape: Sequence[int], n_classes: int, *, seed: int = 0,
                     names: Iterable[str] | None = None) -> dict[str, float | None]:
    """``zc_<name>`` for every proxy (or ``names``); a proxy that fails numerically (a singular kernel, NaN) is
    None, never an exception: the network's row must still be written.

    One model serves every pass, in ORDER: no pass changes the weights except synflow, which runs last; the passes
    that read BN's running statistics get the initial state back first. Dropout masks are reseeded per pass."""
    shape = tuple(int(s) for s in input_shape)
    chosen = list(PROXIES) if names is None else list(names)
    if unknown := [n for n in chosen if n not in PROXIES]:
        raise ValueError(f"unknown zero-cost proxies: {', '.join(unknown)} (known: {', '.join(PROXIES)})")
    needed = {PROXIES[n].group for n in chosen}
    got: Scores = {}
    cuda = [batch.x.device] if batch.x.is_cuda else []
    with torch.random.fork_rng(devices=cuda):
        reseed(seed, batch.x.device)
        model, init = _prepare(net, shape, n_classes, batch.x.device)
        for group in (g for g in ORDER if g in needed):
            if group in PRISTINE:
                model.load_state_dict(init)
                model.train()
            reseed(seed, batch.x.device)
            with contextlib.suppress(RuntimeError, np.linalg.LinAlgError, FloatingPointError):  # its proxies: None
                got.update(group(net, shape, n_classes, model, batch))
    return {ZC_PREFIX + n: (got[n] if n in got and np.isfinite(got[n]) else None) for n in chosen}
