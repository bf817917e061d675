"""The query API: look networks up in a corpus and predict many at once with a frozen predictor.

```python
from narch.query import open_corpus, predict
corpus = open_corpus("results/corpus/mnist1d_ref")
rec = corpus.lookup(next(iter(corpus)))            # an arch_id, a Network, its JSON text or its dict
rec.settings[0]["val_acc"]                         # Metric(unit, mean, std, count over training seeds)
predict("results/leaderboards/mnist1d_ref/val_acc/frozen", corpus.networks()[:100])   # a polars frame
```
Corpus lookups live in ``dataset_builder/query.py``; predictions reuse the artefact loader
(``predictors.artefacts``) and the controller's per-target loop (``controller.scorers.artefact_predictions``, which
adds ``<target>_std`` where the family has an uncertainty). In imported corpora a lookup also takes the benchmark's
own index or name (``bench_index``, ``bench_arch``: NB-201's index or arch string, NB-101's module hash).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.checks import check_int
from narch.core.errors import SettingError
from narch.dataset_builder.query import (
    METRICS,
    Arch,
    Corpus,
    Metric,
    NotInCorpus,
    Record,
    Setting,
    as_network,
    open_corpus,
)
from narch.predictors.artefacts import Artefact, load_artefact
from narch.search_space import Network


class TaskMismatchWarning(UserWarning):
    """Predictions asked for a task other than the one the predictor was fitted on."""


def task_mismatch(manifest: Mapping[str, Any], task: str | None) -> str | None:
    """One line naming both tasks when ``task`` is not the task of the predictor's corpus (its manifest's
    ``descriptors``); None when it is, when no task is asked for, or when the manifest does not record one."""
    fitted = (manifest.get("descriptors") or {}).get("task")
    if task is None or fitted is None or task == fitted:
        return None
    corpus = f" (corpus {manifest['corpus']})" if manifest.get("corpus") else ""
    return (f"this predictor was fitted on task {fitted!r}{corpus}, not {task!r}: only the input shape, classes and "
            f"n_train change; predictions for {task!r} are extrapolations it was never checked on")


def task_descriptors(manifest: Mapping[str, Any], task: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The task description to predict under: the artefact's, a named task's shape, then explicit values."""
    d = dict(manifest.get("descriptors") or {})
    if task is not None:
        from narch.dataset_builder.tasks import TASK_SHAPES
        from narch.hardware_cli import TASK_N_TRAIN

        if task not in TASK_SHAPES:
            raise SettingError(f"task {task!r} is unknown (known: {', '.join(TASK_SHAPES)})")
        shape, n_classes = TASK_SHAPES[task]
        d |= {"task": task, "input_shape": list(shape), "n_classes": n_classes, "n_train": TASK_N_TRAIN.get(task, 1000)}
    return d | {k: v for k, v in overrides.items() if v is not None}


def prediction_frame(artefact: Artefact, nets: list[Network], descriptors: Mapping[str, Any]) -> pl.DataFrame:
    """``arch_id`` and one column per target (``<target>_std`` after it where the family has one), a row a network."""
    from narch.controller.scorers import artefact_predictions

    if not nets:
        raise SettingError("no networks to predict")
    preds = artefact_predictions(artefact, nets, descriptors)
    return pl.DataFrame({"arch_id": [n.arch_id for n in nets],
                         **{k: np.asarray(v, dtype=np.float64) for k, v in preds.items()}})


def predict(predictor: str | Path | Artefact, archs: Iterable[Network | str | Mapping[str, Any]], *,
            task: str | None = None, n_train: int | None = None, epochs: int | None = None,
            batch_size: int | None = None, expect_sha256: str | None = None) -> pl.DataFrame:
    """Every target of a frozen predictor (a folder, or an artefact already loaded) for many networks at once,
    under the artefact's task description, a named ``task``'s shape, then the explicit values; a ``task`` other than
    the artefact's warns (``TaskMismatchWarning``)."""
    overrides = {"n_train": n_train, "epochs": epochs, "batch_size": batch_size}
    for k, v in overrides.items():
        if v is not None:
            check_int(k, v, low=1)
    nets = [as_network(a) for a in archs]
    art = predictor if isinstance(predictor, Artefact) else load_artefact(predictor, expect_sha256=expect_sha256)
    if (mismatch := task_mismatch(art.manifest, task)) is not None:
        warnings.warn(mismatch, TaskMismatchWarning, stacklevel=2)
    return prediction_frame(art, nets, task_descriptors(art.manifest, task, overrides))


__all__ = ["METRICS", "Arch", "Corpus", "Metric", "NotInCorpus", "Record", "Setting", "TaskMismatchWarning",
           "as_network", "open_corpus", "predict", "prediction_frame", "task_descriptors", "task_mismatch"]
