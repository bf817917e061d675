"""One artefact format for fitted predictors: a folder with ``manifest.json`` and payloads that load without pickle.

```
frozen/
  manifest.json          # format, versions, corpus fingerprint, per target: family, the module that registered
                         # it (named when that plugin is missing, never imported), config, metrics, sha256s
  val_acc/ ...payloads   # one sub-folder per target
  train_time_s/ ...
```
Written as a unit (``narch.core.files.publish_dir``): a temporary sibling is written and loaded back before it
replaces the old folder, so a crash leaves the old artefact or the new one, never a mix or none.

Loading is strict, in this order, each refusal one ``ArtefactError`` line naming the file:
1. the manifest: a regular file under ``MAX_MANIFEST_BYTES``, JSON, then its schema
   (``predictors.manifest_schema``: field types; plain names for targets, families and path parts, so no ``..``
   or absolute paths; at least one payload per entry; identifier parameter names);
2. the folder: nothing but ``manifest.json``, the listed files and their folders (an unlisted file is refused, so
   whatever a family's ``load`` opens in its folder was listed); no symbolic link anywhere, only regular files;
3. each listed file: its sha256, then the content rules of ``predictors.payloads`` (no pickle of any protocol,
   ``.npy`` headers against the bytes they hold);
4. each family's ``load`` (families read payloads through ``predictors.payloads``; torch files with
   ``weights_only=True``); any failure there is one line naming the target folder.

Digest: an artefact's sha256 is the sha256 of its ``manifest.json`` bytes (``artefact_digest``; printed when a
predictor is frozen, pinned with ``narch predict --expect-sha256``). The per-file sha256s catch corruption, but
whoever can write the folder can rewrite the manifest with matching sums; a digest received from a trusted place
(a results README, a config under review) closes that, and it is enough: the manifest names every payload's
sha256 and unlisted files are refused, so the manifest's bytes pin every byte a load reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import polars as pl

from narch.core.errors import NarchError
from narch.core.files import atomic_write_json, parse_json, publish_dir, recover_dir, sha256_file
from narch.core.provenance import now_iso
from narch.dataset_builder.schema import CORPUS_SCHEMA_VERSION
from narch.predictors.base import PREDICTORS, Predictor
from narch.predictors.families import load_families, registered_family
from narch.predictors.features import FEATURES_VERSION
from narch.predictors.manifest_schema import FORMAT, FORMAT_VERSION, MANIFEST, check_manifest, check_name, check_rel
from narch.predictors.payloads import ArtefactError, check_payload, one_line, regular_file
from narch.search_space import Network

MAX_MANIFEST_BYTES = 16 << 20
FINGERPRINT_COLUMNS = ("arch_id", "task", "n_train", "protocol_hash", "seed", "device_kind")


def corpus_fingerprint(rows: pl.DataFrame) -> str:
    """sha256 of the sorted row keys the predictor saw (which runs, not their values' bytes)."""
    cols = [c for c in FINGERPRINT_COLUMNS if c in rows.columns]
    keys = sorted(json.dumps(list(r), default=str) for r in rows.select(cols).iter_rows())
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def save_artefact(
    folder: Path, predictors: Mapping[str, Predictor], *, fingerprint: str, metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write each target's fitted predictor into ``folder/<target>/`` and one manifest hashing every payload, as
    a unit: built beside ``folder``, loaded back strictly, then swapped in for the old one (``publish_dir``)."""
    with publish_dir(folder, verify=load_artefact) as tmp:
        _write(tmp, predictors, fingerprint=fingerprint, metrics=metrics, extra=extra)
    return folder


def _write(folder: Path, predictors: Mapping[str, Predictor], *, fingerprint: str,
           metrics: Mapping[str, Any] | None, extra: Mapping[str, Any] | None) -> None:
    from narch.search_space import SEARCH_SPACE_VERSION

    entries: dict[str, Any] = {}
    for target, pred in predictors.items():
        check_name(target, folder / MANIFEST, "target")
        sub = folder / target
        names = pred.save(sub)
        files = {}
        for name in names:
            rel = f"{target}/{name}"
            check_rel(rel, target, folder / MANIFEST)
            check_payload(folder / rel)
            files[rel] = sha256_file(folder / rel)
        entries[target] = {"predictor": pred.name, "module": PREDICTORS.module_of(pred.name), "target": target,
                           "config": pred.config(), "files": files, "metrics": dict((metrics or {}).get(target, {}))}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": now_iso(),
        "search_space_version": SEARCH_SPACE_VERSION, "corpus_schema_version": CORPUS_SCHEMA_VERSION,
        "features_version": FEATURES_VERSION, "corpus_fingerprint": fingerprint, "python": platform.python_version(),
        "targets": sorted(predictors), "entries": entries, **dict(extra or {}),
    }
    atomic_write_json(folder / MANIFEST, manifest)


def _read_manifest(folder: Path) -> tuple[dict[str, Any], str]:
    """The schema-checked manifest of ``folder`` and the sha256 of its bytes (read once: what is hashed is what
    is parsed). A missing folder whose publish a crash interrupted is recovered first."""
    path = folder / MANIFEST
    if not folder.exists():
        with contextlib.suppress(OSError):  # a read-only parent cannot be recovered: report what is missing
            recover_dir(folder)
    st = regular_file(path, missing=f"no manifest (is {folder} a predictor artefact?)")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ArtefactError(f"{path}: {st.st_size:,} bytes, more than a manifest may hold ({MAX_MANIFEST_BYTES:,})")
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{path}: cannot be read as UTF-8 ({one_line(e)})") from None
    try:
        m = parse_json(text, error=ArtefactError, what=str(path))
    except RecursionError:
        raise ArtefactError(f"{path}: JSON nested too deeply") from None
    return check_manifest(m, path), hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The schema-checked manifest of an artefact folder (payloads not verified: see ``verify_artefact``)."""
    return _read_manifest(Path(folder))[0]


def artefact_digest(folder: str | Path) -> str:
    """The artefact's sha256 a user can pin: the sha256 of its manifest's bytes (module docstring)."""
    return _read_manifest(Path(folder))[1]


def _tree(folder: Path) -> set[str]:
    """Every file under ``folder`` as a relative POSIX path; a link or anything not a file or folder is refused."""
    found: set[str] = set()

    def walk_error(e: OSError) -> NoReturn:
        raise ArtefactError(f"{e.filename}: cannot be listed ({one_line(e)})")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=walk_error):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise ArtefactError(f"{path}: is a symbolic link; an artefact holds only regular files and folders")
            if stat.S_ISREG(mode):
                found.add(path.relative_to(folder).as_posix())
            elif not stat.S_ISDIR(mode):
                raise ArtefactError(f"{path}: is not a regular file or folder")
    return found


def _verified(folder: Path) -> tuple[dict[str, Any], str]:
    m, digest = _read_manifest(folder)
    listed = {rel: digest for entry in m["entries"].values() for rel, digest in entry["files"].items()}
    present = _tree(folder)
    for rel in sorted(present - set(listed) - {MANIFEST}):
        raise ArtefactError(f"{folder / rel}: not listed in the manifest; an artefact holds only listed payloads")
    for rel in sorted(set(listed) - present):
        raise ArtefactError(f"{folder / rel}: payload listed in the manifest is missing")
    for rel, want in sorted(listed.items()):
        path = folder / rel
        if sha256_file(path) != want:
            raise ArtefactError(f"{path}: sha256 differs from the manifest (payload changed or corrupt)")
        check_payload(path)
    return m, digest


def verify_artefact(folder: Path) -> dict[str, Any]:
    """The manifest after the manifest, folder and payload checks of the module docstring (steps 1-3)."""
    return _verified(Path(folder))[0]


@dataclass
class Artefact:
    """A verified, loaded artefact: one fitted predictor per target; ``digest``: see ``artefact_digest``."""

    folder: Path
    manifest: dict[str, Any]
    predictors: dict[str, Predictor]
    digest: str

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


def load_artefact(folder: str | Path, *, expect_sha256: str | None = None) -> Artefact:
    """Verify (and, with ``expect_sha256``, match the digest), then rebuild each target's predictor with its
    family's ``load``."""
    folder = Path(folder)
    m, digest = _verified(folder)
    if expect_sha256 is not None and digest != expect_sha256.strip().lower():
        raise ArtefactError(f"{folder / MANIFEST}: artefact sha256 {digest} differs from the expected "
                            f"{expect_sha256.strip()[:64]}")
    load_families()
    preds: dict[str, Predictor] = {}
    for target, entry in m["entries"].items():
        cls = registered_family(entry["predictor"], entry.get("module"), where=folder)
        try:
            preds[target] = cls.load(folder / target, entry["config"])
        except NarchError:
            raise
        except Exception as e:  # a verified payload the family cannot rebuild from: bad data, one line
            raise ArtefactError(f"{folder / target}: cannot load {entry['predictor']!r}: {type(e).__name__}: "
                                f"{one_line(e)}") from None
    return Artefact(folder, m, preds, digest)
