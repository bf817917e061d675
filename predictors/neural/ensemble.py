"""A deep ensemble: K members (one family or a mix) that differ by seed; mean and spread of their predictions.

The controller rewards mean − λ·std, so ``predict_with_std`` returns both from one pass over the members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import registered_family
from narch.predictors.neural.data import NetInputs
from narch.predictors.neural.regressor import NeuralPredictor
from narch.search_space import Network


@PREDICTORS.register("ensemble")
class DeepEnsemble:
    """Members of ``family`` (one name, or several joined by "+", used in turn) with seeds seed·1000 + k.

    The default mixes GIN and LSTM members (3 + 2): on the reference corpus the mix matched five GINs on accuracy
    and beat them on training time. Mean and standard deviation are over members, in column units.
    ``member_params`` maps a family name to its parameters (e.g. {"gin": {"epochs": 50}}).
    """

    name: ClassVar[str]
    slow: ClassVar[bool] = True
    quick_skip: ClassVar[bool] = True  # --quick leaves it out unless named (5 neural members per fit)
    DEFAULTS: ClassVar[dict[str, Any]] = {"members": 5, "family": "gin+lstm_embedding", "member_params": {}}

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            raise TypeError(f"predictor 'ensemble': unknown parameter(s) {unknown} (known: {sorted(self.DEFAULTS)})")
        self.seed = seed
        self.params = {**self.DEFAULTS, **params}
        if int(self.params["members"]) < 2:
            raise ValueError("predictor 'ensemble': needs at least 2 members")
        for fam in self.families:
            if fam == "ensemble":
                raise ValueError("predictor 'ensemble': members cannot be ensembles")
            PREDICTORS.get(fam)  # unknown names fail here, listing the known ones
        self.target: Target | None = None
        self.members: list[Any] = []

    test_params: ClassVar[dict[str, Any]] = {
        "members": 2,
        "family": "gin+lstm_embedding",
        "member_params": {"gin": {"epochs": 2, "min_steps": 4, "hidden": 16, "head_hidden": 16},
                          "lstm_embedding": {"epochs": 2, "min_steps": 4, "net_dim": 16, "layer_dim": 8, "hidden": 16}},
    }

    @property
    def families(self) -> list[str]:
        fams = str(self.params["family"]).split("+")
        return [fams[k % len(fams)] for k in range(int(self.params["members"]))]

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"members": trial.suggest_int("members", 3, 8)}

    @classmethod
    def supports(cls, target: Target) -> bool:
        return True

    def _member(self, k: int, family: str) -> Any:
        params = dict(self.params["member_params"].get(family, {}))
        return PREDICTORS.get(family)(seed=self.seed * 1000 + k, **params)

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        self.target = target
        self.members = [self._member(k, fam).fit(rows, target) for k, fam in enumerate(self.families)]
        return self

    def _fitted(self) -> list[Any]:
        if not self.members:
            raise RuntimeError("predictor 'ensemble' is not fitted")
        return self.members

    @staticmethod
    def _stats(preds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = np.stack(preds)
        return p.mean(axis=0), p.std(axis=0)

    def _member_predictions(self, inputs: Callable[[NeuralPredictor], NetInputs],
                            fallback: Callable[[Any], np.ndarray]) -> list[np.ndarray]:
        """Each member's predictions; neural members with equal inputs share one encoding of the batch."""
        shared: dict[str, NetInputs] = {}
        out = []
        for m in self._fitted():
            if isinstance(m, NeuralPredictor):
                key = m.inputs_key()
                if key not in shared:
                    shared[key] = inputs(m)
                out.append(m.predict_inputs(shared[key]))
            else:
                out.append(fallback(m))
        return out

    def predict_with_std(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over members."""
        if rows.height == 0:
            return np.zeros(0), np.zeros(0)
        return self._stats(self._member_predictions(lambda m: m.rows_inputs(rows), lambda m: m.predict(rows)))

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self.predict_with_std(rows)[0]

    def predict_std(self, rows: pl.DataFrame) -> np.ndarray:
        return self.predict_with_std(rows)[1]

    def predict_networks_with_std(
        self, nets: Sequence[Network], descriptors: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        if not nets:
            return np.zeros(0), np.zeros(0)
        return self._stats(self._member_predictions(lambda m: m.networks_inputs(nets, descriptors),
                                                    lambda m: m.predict_networks(nets, descriptors)))

    def predict_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> np.ndarray:
        return self.predict_networks_with_std(nets, descriptors)[0]

    def predict_members(self, rows: pl.DataFrame) -> np.ndarray:
        """(members, rows) predictions."""
        return np.stack(self._member_predictions(lambda m: m.rows_inputs(rows), lambda m: m.predict(rows)))

    def config(self) -> dict[str, Any]:
        members = self._fitted()
        assert self.target is not None
        return {
            "seed": self.seed,
            "params": dict(self.params),
            "target": self.target.name,
            "state": {"members": [{"family": f, "module": PREDICTORS.module_of(f), "config": m.config()}
                                  for f, m in zip(self.families, members, strict=True)]},
        }

    def save(self, folder: Path) -> list[str]:
        names = []
        for k, m in enumerate(self._fitted()):
            sub = f"member{k}"
            (folder / sub).mkdir(parents=True, exist_ok=True)
            names += [f"{sub}/{n}" for n in m.save(folder / sub)]
        return names

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        # Members' families first: one from a missing plugin is named with its module, as a top-level family is.
        families = [registered_family(str(m["family"]), m.get("module"), where=folder / f"member{k}")
                    for k, m in enumerate(config["state"]["members"])]
        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        obj.target = Target.of(config["target"])
        obj.members = [fam.load(folder / f"member{k}", m["config"])
                       for k, (fam, m) in enumerate(zip(families, config["state"]["members"], strict=True))]
        return obj
