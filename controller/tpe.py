"""Optuna samplers as strategies: TPE on the scalar reward, NSGA-II on (accuracy, size, time).

Optuna needs a fixed (conditional) parameter space rather than moves, so networks are spelled as blocks — what a
practitioner would hand to TPE: 1-5 conv blocks (channels, kernel, stride, optional residual pair, optional pool,
optional dropout) then 0-2 dense layers, every value from the same MoveVocab. Spellings that break the vocabulary's
limits are told to Optuna as failed and cost no query.
"""

from __future__ import annotations

import logging

import numpy as np
import optuna

from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.search_space import Layer, MoveVocab, Network, Op, SpecError
from narch.search_space.validate import infer_shapes

optuna.logging.set_verbosity(logging.WARNING)


def _choices(vocab: MoveVocab) -> tuple[list[str], list[str]]:
    convs = [f"c{c}k{k}s{s}" for c in vocab.conv_channels for k in vocab.conv_kernels for s in vocab.conv_strides]
    pools = ["none"] + [f"{p}{k}" for p in ("max", "avg") for k in vocab.pool_kernels]
    extras = [f"r{r}_{p}_d{d}" for r in (0, 1) for p in pools for d in (0, *vocab.dropout_pcts)]
    return convs, extras


def network_from_trial(trial: optuna.Trial, vocab: MoveVocab) -> Network:
    """A network spelled by a trial: per block one choice of conv (channels, kernel, stride) and one of extras
    (residual pair, pool, dropout); then dense layers. Few parameters per trial keep TPE's per-trial cost low.
    A stride or pool past the downsampling limit is dropped and blocks stop at the depth limit, so every trial
    spells a valid network (the spelling is deterministic, which is all a sampler needs)."""
    convs, extras = _choices(vocab)
    layers: list[Layer] = []
    factor = 1
    n_dense = trial.suggest_int("dense", 0, 2)
    room = vocab.max_layers - n_dense
    for i in range(trial.suggest_int("blocks", 1, 5)):
        if len(layers) + 1 > room:
            break
        c, rest = trial.suggest_categorical(f"b{i}_conv", convs)[1:].split("k")
        k, s = (int(x) for x in rest.split("s"))
        s = s if factor * s <= vocab.max_downsample else 1
        factor *= s
        layers.append(Layer(Op.CONV, channels=int(c), kernel=k, stride=s))
        r, pool, d = trial.suggest_categorical(f"b{i}_extras", extras).split("_")
        if r == "r1" and len(layers) + 2 <= room:
            start = len(layers) - 1
            layers.append(Layer(Op.CONV, channels=int(c), kernel=k))
            layers.append(Layer(Op.ADD, inputs=(start, start + 1)))
        if pool != "none" and len(layers) + 1 <= room:
            pk = int(pool[3:])
            if factor * pk <= vocab.max_downsample:
                factor *= pk
                layers.append(Layer(Op.MAXPOOL if pool.startswith("max") else Op.AVGPOOL, kernel=pk, stride=pk))
        if d != "d0" and len(layers) + 1 <= room:
            layers.append(Layer(Op.DROPOUT, dropout_pct=int(d[1:])))
    for j in range(n_dense):
        layers.append(Layer(Op.DENSE, units=trial.suggest_categorical(f"d{j}_units", list(vocab.dense_units))))
    net = Network(tuple(layers))
    infer_shapes(net, limits=vocab.limits())
    return net


class _OptunaStrategy:
    multi_objective = False

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.study = self._study(ctx.seed)
        self.pending: list[tuple[optuna.trial.Trial, Network]] = []

    def _study(self, seed: int) -> optuna.Study:
        raise NotImplementedError

    def ask(self, n: int) -> list[Network]:
        out: list[tuple[optuna.trial.Trial, Network]] = []
        fails = 0
        while len(out) < n and fails < 50 * n:
            trial = self.study.ask()
            try:
                net = network_from_trial(trial, self.ctx.moves.vocab)
                if self.ctx.moves.guard is not None and not self.ctx.moves.guard.allows(net):
                    raise SpecError("outside the predictor's training range")
            except SpecError:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                fails += 1
                continue
            out.append((trial, net))
        self.pending = out
        return [net for _, net in out]

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        for (trial, net), r in zip(self.pending, rewards, strict=False):
            if self.multi_objective:
                ev = self.ctx.evaluator.known(net)
                assert ev is not None
                self.study.tell(trial, [ev.acc, ev.size_bytes, ev.time_s])
            else:
                self.study.tell(trial, float(r))
        for trial, _ in self.pending[len(rewards):]:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.pending = []


@STRATEGIES.register("tpe")
class TPE(_OptunaStrategy):
    """Optuna's TPE sampler maximising the reward."""

    def _study(self, seed: int) -> optuna.Study:
        return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))


@STRATEGIES.register("nsga2")
class NSGA2(_OptunaStrategy):
    """Optuna's NSGA-II on (accuracy up, size down, time down): the multi-objective view."""

    multi_objective = True

    def _study(self, seed: int) -> optuna.Study:
        pop = int(self.ctx.params.get("population", 50))
        return optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                   sampler=optuna.samplers.NSGAIISampler(population_size=pop, seed=seed))
