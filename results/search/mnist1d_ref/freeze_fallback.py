"""Freeze a fallback predictor for the search when the leaderboard's frozen predictor is not there yet.

GBDT (the predictors registry's "gbdt", default hyperparameters, no tuning) for val_acc and train_time_s, fitted
on every ok row of the corpus, written in the predictors' artefact format (manifest with sha256s, no pickle).

    python results/search/mnist1d_ref/freeze_fallback.py results/corpus/mnist1d_ref OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from narch.dataset_builder.corpus import read_corpus
from narch.predictors.artefacts import corpus_fingerprint, save_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families

corpus, out = Path(sys.argv[1]), Path(sys.argv[2])
load_families()
rows = read_corpus(corpus).filter(pl.col("status") == "ok")
fitted = {t: PREDICTORS.get("gbdt")(seed=0).fit(rows, Target.of(t)) for t in ("val_acc", "train_time_s")}
save_artefact(out, fitted, fingerprint=corpus_fingerprint(rows),
              extra={"corpus": str(corpus), "command": "python " + " ".join(sys.argv), "fallback": True,
                     "rows": rows.height})
print(f"{out}: gbdt on {rows.height} rows")
