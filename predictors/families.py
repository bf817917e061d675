"""Import every predictor family so it registers (explicit: nothing is built, argv is not read).

Built-in families are imported by module name; plugin families come from the ``narch.predictors`` entry-point
group (``PREDICTORS.names()`` discovers them) or from ``load_plugin`` (the CLI's ``--plugin``), so the leaderboard,
the artefacts and the conformance tests enumerate both alike.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.errors import PluginError
from narch.predictors.base import PREDICTORS, Predictor, Target

FAMILY_MODULES = ("narch.predictors.linear", "narch.predictors.trees", "narch.predictors.mlp",
                  "narch.predictors.roofline_time", "narch.predictors.roofline_boost",
                  "narch.predictors.zero_cost_families")
OPTIONAL_MODULES = ("narch.predictors.neural",)  # the neural families, where present


def load_families() -> list[str]:
    """Register every built-in family and every installed plugin family; returns the registered names."""
    for mod in FAMILY_MODULES:
        importlib.import_module(mod)
    for mod in OPTIONAL_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return PREDICTORS.names()


def offered(cls: type[Predictor], rows: pl.DataFrame) -> bool:
    """Whether a family can fit these rows (families reading optional columns, such as the zero-cost proxies,
    declare ``supports_rows``); the leaderboard leaves the others out for that target."""
    fn = getattr(cls, "supports_rows", None)
    return True if fn is None else bool(fn(rows))


def row_only(cls: type[Predictor]) -> bool:
    """Whether a family reads columns only corpus rows carry (it cannot score a bare network, so it is never
    frozen for the controller)."""
    return bool(getattr(cls, "row_only", False))


def fit_extras(cls: type[Predictor], unlabeled: pl.DataFrame | None) -> dict[str, Any]:
    """Keyword arguments of ``fit`` beyond the training rows: the corpus's architectures, cut to their label-free
    columns (``predictors.neural.pretraining.unlabeled_view``), for a family that declares ``uses_unlabeled``."""
    if unlabeled is None or not getattr(cls, "uses_unlabeled", False):
        return {}
    from narch.predictors.neural.pretraining import unlabeled_view

    return {"unlabeled": unlabeled_view(unlabeled)}


def supports(cls: type[Predictor], target: Target) -> bool:
    """Whether a family models a target (families without ``supports`` model any numeric column)."""
    fn = getattr(cls, "supports", None)
    return True if fn is None else bool(fn(target))


def registered_family(name: str, module: str | None, *, where: Path) -> type[Predictor]:
    """The family a saved predictor at ``where`` names; PluginError naming ``module`` (the one that registered it
    when it was saved) if it is not registered now.

    The module is only named, never imported: an artefact is data and must not choose what code runs.
    """
    if name in PREDICTORS:
        return PREDICTORS.get(name)
    at = f"module {module!r}" if module else "a module this artefact does not record"
    raise PluginError(f"{where}: predictor family {name!r} is not registered; it was registered by {at}: install "
                      f"the plugin that provides it or pass --plugin {module or 'MODULE'}")
