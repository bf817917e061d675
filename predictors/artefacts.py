"""One artefact format for fitted predictors: a folder with ``manifest.json`` and payloads that load without pickle.

```
frozen/
  manifest.json          # format, versions, corpus fingerprint, per target: family, the module that registered
                         # it (named when that plugin is missing, never imported), config, metrics, sha256s
  val_acc/ ...payloads   # one sub-folder per target
  train_time_s/ ...
```
On load every listed payload's sha256 is checked first (a changed byte names the file), and anything that would
need pickle is refused: a pickle-like suffix, a file that starts with a pickle opcode, an ``.npy`` of objects.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.errors import NarchError
from narch.core.files import atomic_write_json, read_json, sha256_file
from narch.core.provenance import now_iso
from narch.dataset_builder.schema import CORPUS_SCHEMA_VERSION
from narch.predictors.base import PREDICTORS, Predictor
from narch.predictors.families import load_families, registered_family
from narch.predictors.features import FEATURES_VERSION
from narch.search_space import Network

FORMAT = "narch-predictor-artefact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".dill", ".pck"})
FINGERPRINT_COLUMNS = ("arch_id", "task", "n_train", "protocol_hash", "seed", "device_kind")


class ArtefactError(NarchError, ValueError):
    """An artefact that cannot be trusted or read; the message names the file."""


def corpus_fingerprint(rows: pl.DataFrame) -> str:
    """sha256 of the sorted row keys the predictor saw (which runs, not their values' bytes)."""
    cols = [c for c in FINGERPRINT_COLUMNS if c in rows.columns]
    keys = sorted(json.dumps(list(r), default=str) for r in rows.select(cols).iter_rows())
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def check_no_pickle(path: Path) -> None:
    """Refuse a file that would need pickle to load."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ArtefactError(f"{path}: pickle payloads are refused (suffix {path.suffix})")
    with path.open("rb") as f:
        head = f.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise ArtefactError(f"{path}: pickle payloads are refused (starts with a pickle protocol {head[1]} header)")
    if path.suffix == ".npy":
        with path.open("rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                _, _, dtype = read(f)
            except ValueError as e:
                raise ArtefactError(f"{path}: not a valid .npy file ({e})") from None
        if dtype.hasobject:
            raise ArtefactError(f"{path}: an .npy of Python objects needs pickle; refused")


def save_artefact(
    folder: Path, predictors: Mapping[str, Predictor], *, fingerprint: str, metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write each target's fitted predictor into ``folder/<target>/`` and one manifest hashing every payload."""
    from narch.search_space import SEARCH_SPACE_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for target, pred in predictors.items():
        sub = folder / target
        names = pred.save(sub)
        files = {}
        for name in names:
            check_no_pickle(sub / name)
            files[f"{target}/{name}"] = sha256_file(sub / name)
        entries[target] = {"predictor": pred.name, "module": PREDICTORS.module_of(pred.name), "target": target,
                           "config": pred.config(), "files": files, "metrics": dict((metrics or {}).get(target, {}))}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": now_iso(),
        "search_space_version": SEARCH_SPACE_VERSION, "corpus_schema_version": CORPUS_SCHEMA_VERSION,
        "features_version": FEATURES_VERSION, "corpus_fingerprint": fingerprint, "python": platform.python_version(),
        "targets": sorted(predictors), "entries": entries, **dict(extra or {}),
    }
    atomic_write_json(folder / MANIFEST, manifest)
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    m = read_json(path, error=ArtefactError, missing=f"no manifest (is {folder} a predictor artefact?)")
    if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    return m


def verify_artefact(folder: Path) -> dict[str, Any]:
    """Manifest after checking every payload's sha256 and refusing pickles anywhere in the folder."""
    folder = Path(folder)
    m = read_manifest(folder)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            check_no_pickle(path)
    for entry in m["entries"].values():
        for rel, digest in entry["files"].items():
            path = folder / rel
            if not path.is_file():
                raise ArtefactError(f"{path}: payload listed in the manifest is missing")
            if sha256_file(path) != digest:
                raise ArtefactError(f"{path}: sha256 differs from the manifest (payload changed or corrupt)")
    return m


@dataclass
class Artefact:
    """A verified, loaded artefact: one fitted predictor per target."""

    folder: Path
    manifest: dict[str, Any]
    predictors: dict[str, Predictor]

    @property
    def targets(self) -> list[str]:
        return list(self.predictors)

    def predict(self, rows: pl.DataFrame) -> dict[str, np.ndarray]:
        return {t: p.predict(rows) for t, p in self.predictors.items()}

    def predict_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Every target for Network objects (the controller's path); families without the fast path use rows."""
        out = {}
        for t, p in self.predictors.items():
            fast = getattr(p, "predict_networks", None)
            out[t] = fast(nets, descriptors) if fast is not None else p.predict(network_rows(nets, descriptors))
        return out


def network_rows(nets: Sequence[Network], descriptors: Mapping[str, Any]) -> pl.DataFrame:
    """Corpus-shaped rows for Network objects under one task description."""
    base = {k: v for k, v in descriptors.items()}
    return pl.DataFrame([{"arch_id": n.arch_id, "arch_json": n.to_json(), **base} for n in nets])


def load_artefact(folder: str | Path) -> Artefact:
    """Verify, then rebuild each target's predictor with its family's ``load``."""
    folder = Path(folder)
    m = verify_artefact(folder)
    load_families()
    preds: dict[str, Predictor] = {}
    for target, entry in m["entries"].items():
        cls = registered_family(str(entry["predictor"]), entry.get("module"), where=folder)
        try:
            preds[target] = cls.load(folder / target, entry["config"])
        except (OSError, ValueError, KeyError) as e:
            raise ArtefactError(f"{folder / target}: cannot load {entry['predictor']!r}: {e}") from None
    return Artefact(folder, m, preds)
