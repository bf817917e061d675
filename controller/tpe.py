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

from controller.strategies import StrategyContext, register
from search_space import Layer, MoveVocab, Network, Op, SpecError
from search_space.validate import infer_shapes

optuna.logging.set_verbosity(logging.WARNING)


def network_from_trial(trial: optuna.Trial, vocab: MoveVocab) -> Network:
    """A network spelled by a trial's parameters; options that would break the vocabulary's depth or downsampling
    limits are not offered (so nearly every trial is a valid network)."""
    layers: list[Layer] = []
    factor = 1
    n_dense = trial.suggest_int("dense", 0, 2)
    room = vocab.max_layers - n_dense  # layers left for the conv blocks

    def fits(k: int) -> bool:
        return len(layers) + k <= room

    for i in range(trial.suggest_int("blocks", 1, 5)):
        if not fits(1):
            break
        c = trial.suggest_categorical(f"b{i}_channels", list(vocab.conv_channels))
        k = trial.suggest_categorical(f"b{i}_kernel", list(vocab.conv_kernels))
        strides = [s for s in vocab.conv_strides if factor * s <= vocab.max_downsample]
        s = trial.suggest_categorical(f"b{i}_stride", strides) if len(strides) > 1 else strides[0]
        factor *= s
        layers.append(Layer(Op.CONV, channels=c, kernel=k, stride=s))
        if fits(2) and trial.suggest_categorical(f"b{i}_residual", [False, True]):
            start = len(layers) - 1
            layers.append(Layer(Op.CONV, channels=c, kernel=k))
            layers.append(Layer(Op.ADD, inputs=(start, start + 1)))
        pks = [pk for pk in vocab.pool_kernels if factor * pk <= vocab.max_downsample]
        if fits(1) and pks:
            pool = trial.suggest_categorical(f"b{i}_pool", ["none", "max", "avg"])
            if pool != "none":
                pk = trial.suggest_categorical(f"b{i}_pool_kernel", pks) if len(pks) > 1 else pks[0]
                factor *= pk
                layers.append(Layer(Op.MAXPOOL if pool == "max" else Op.AVGPOOL, kernel=pk, stride=pk))
        if fits(1):
            d = trial.suggest_categorical(f"b{i}_dropout", [0, *vocab.dropout_pcts])
            if d:
                layers.append(Layer(Op.DROPOUT, dropout_pct=d))
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


@register("tpe")
class TPE(_OptunaStrategy):
    """Optuna's TPE sampler maximising the reward."""

    def _study(self, seed: int) -> optuna.Study:
        return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))


@register("nsga2")
class NSGA2(_OptunaStrategy):
    """Optuna's NSGA-II on (accuracy up, size down, time down): the multi-objective view."""

    multi_objective = True

    def _study(self, seed: int) -> optuna.Study:
        pop = int(self.ctx.params.get("population", 50))
        return optuna.create_study(directions=["maximize", "minimize", "minimize"],
                                   sampler=optuna.samplers.NSGAIISampler(population_size=pop, seed=seed))
