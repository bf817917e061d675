"""Tampered predictor artefacts: each attack of issue 14 through `narch predict` gives one error line, exit 2 and no
traceback; the artefact's digest can be pinned."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.core.files import sha256_file
from narch.predictors.artefacts import artefact_digest, load_artefact, save_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families

Tamper = Callable[[Path, dict[str, Any]], None]


class Reduce:
    """An object whose unpickling would call a function (here a harmless one)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("unpickled: the weights-only loader was bypassed",))


@pytest.fixture(scope="module")
def saved(pred_rows: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ridge artefact (.npy payloads) for val_acc and an MLP (a torch zip) for train_time_s."""
    load_families()
    ridge = PREDICTORS.get("ridge")(seed=0).fit(pred_rows, Target.of("val_acc"))
    mlp = PREDICTORS.get("mlp")(seed=0, epochs=2, hidden=8, layers=1).fit(pred_rows, Target.of("train_time_s"))
    return save_artefact(tmp_path_factory.mktemp("faults") / "frozen", {"val_acc": ridge, "train_time_s": mlp},
                         fingerprint="test")


def _predict(folder: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["predict", "--predictor", str(folder), "--arch", "lenet", "--task", "mnist1d",
                                    *extra])


def _refused(folder: Path, match: str, *extra: str) -> str:
    r = _predict(folder, *extra)
    err = r.stderr
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in err and "Traceback" not in r.stdout
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("narch: error: "), err
    assert match in lines[0], lines[0]
    return lines[0]


def _rehash(folder: Path, m: dict[str, Any], rel: str) -> None:
    """Update a listed file's sha256 so only the rule under test can refuse it."""
    target = rel.split("/")[0]
    m["entries"][target]["files"][rel] = sha256_file(folder / rel)


def _listed(m: dict[str, Any], target: str, suffix: str) -> str:
    return next(rel for rel in sorted(m["entries"][target]["files"]) if rel.endswith(suffix))


def _passwd_sha256() -> str:
    return hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()  # what a hash oracle would confirm


def traversal(folder: Path, m: dict[str, Any]) -> None:
    m["entries"]["val_acc"]["files"]["../../../../etc/passwd"] = _passwd_sha256()


def traversal_inside(folder: Path, m: dict[str, Any]) -> None:
    m["entries"]["val_acc"]["files"]["val_acc/../../../etc/passwd"] = _passwd_sha256()


def absolute(folder: Path, m: dict[str, Any]) -> None:
    m["entries"]["val_acc"]["files"]["/etc/passwd"] = "0" * 64


def target_key(folder: Path, m: dict[str, Any]) -> None:
    entry = m["entries"].pop("val_acc")
    m["entries"]["../outside"] = entry | {"target": "../outside"}
    m["targets"] = sorted(m["entries"])


def empty_files(folder: Path, m: dict[str, Any]) -> None:
    m["entries"]["val_acc"]["files"] = {}
    shutil.rmtree(folder / "val_acc")


def unlisted(folder: Path, m: dict[str, Any]) -> None:
    (folder / "val_acc" / "notes.txt").write_text("not listed")


def symlink_file(folder: Path, m: dict[str, Any]) -> None:
    rel = _listed(m, "val_acc", "mu.npy")
    outside = folder.parent / "outside_mu.npy"
    shutil.copyfile(folder / rel, outside)  # same bytes: only the link rule can refuse it
    (folder / rel).unlink()
    (folder / rel).symlink_to(outside)


def symlink_folder(folder: Path, m: dict[str, Any]) -> None:
    outside = folder.parent / "outside_val_acc"
    shutil.copytree(folder / "val_acc", outside)
    shutil.rmtree(folder / "val_acc")
    (folder / "val_acc").symlink_to(outside, target_is_directory=True)


def pickle_protocol(protocol: int) -> Tamper:
    def tamper(folder: Path, m: dict[str, Any]) -> None:
        rel = _listed(m, "val_acc", "w.npy")
        (folder / rel).write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=protocol))
        _rehash(folder, m, rel)
    tamper.__name__ = f"pickle_protocol_{protocol}"
    return tamper


def torch_reduce(folder: Path, m: dict[str, Any]) -> None:
    import torch

    rel = _listed(m, "train_time_s", "mlp.pt")
    state = torch.load(folder / rel, weights_only=True)
    torch.save({**state, "evil": Reduce()}, folder / rel)
    _rehash(folder, m, rel)


def huge_npy(folder: Path, m: dict[str, Any]) -> None:
    rel = _listed(m, "val_acc", "w.npy")
    with (folder / rel).open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (100_000_000_000,)})
        f.write(b"\0" * 64)
    _rehash(folder, m, rel)


ATTACKS: list[tuple[Tamper, str]] = [
    (traversal, "is not a file inside the 'val_acc' folder"),
    (traversal_inside, "'..' is not a plain name"),
    (absolute, "is not a file inside the 'val_acc' folder"),
    (target_key, "'../outside' is not a plain name"),
    (empty_files, "lists no payload files"),
    (unlisted, "notes.txt: not listed in the manifest"),
    (symlink_file, "is a symbolic link"),
    (symlink_folder, "is a symbolic link"),
    *[(pickle_protocol(p), "pickle payloads are refused") for p in range(pickle.HIGHEST_PROTOCOL + 1)],
    (torch_reduce, "refused by torch's weights-only loader"),
    (huge_npy, "refused before allocating"),
]


@pytest.mark.parametrize(("tamper", "match"), ATTACKS, ids=[a.__name__ for a, _ in ATTACKS])
def test_tampered_artefact_is_refused_in_one_line(saved: Path, tmp_path: Path, tamper: Tamper, match: str,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "frozen"
    shutil.copytree(saved, folder)
    m = json.loads((folder / "manifest.json").read_text())
    tamper(folder, m)
    (folder / "manifest.json").write_text(json.dumps(m))
    _refused(folder, match)
    assert "unpickled" not in capfd.readouterr().out  # nothing was run


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def edit(m: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        obj = m
        for key in parents:
            obj = obj[key]
        obj[last] = value
        return m
    return edit


MANIFESTS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("a_list", lambda m: [m], "manifest (a list, not an object)"),
    ("version_a_string", _set("format_version", "1"), "not a narch-predictor-artefact v1 manifest"),
    ("entries_a_list", _set("entries", []), "entries: must be an object, not a list"),
    ("targets_differ", _set("targets", ["val_acc"]), "differ from the entries"),
    ("family_a_list", _set("entries.val_acc.predictor", ["ridge"]), "predictor: must be a string, not a list"),
    ("family_a_path", _set("entries.val_acc.predictor", "../ridge"), "'../ridge' is not a plain name"),
    ("family_unknown", _set("entries.val_acc.predictor", "no_such_family"), "'no_such_family' is not registered"),
    ("module_not_a_name", _set("entries.val_acc.module", "os; rm"), "is not a module name"),
    ("config_a_string", _set("entries.val_acc.config", "x"), "config: must be an object, not a string"),
    ("params_a_list", _set("entries.val_acc.config.params", [1]), "params: must be an object, not a list"),
    ("param_name", _set("entries.val_acc.config.params", {"__class__": 1}), "'__class__' is not a parameter name"),
    ("seed_a_bool", _set("entries.val_acc.config.seed", True), "seed: must be an integer, not a boolean"),
    ("sha_not_hex", lambda m: _set("entries.val_acc.files", dict.fromkeys(m["entries"]["val_acc"]["files"], "x"))(m),
     "64 lowercase hex"),
    ("spec_missing", lambda m: m["entries"]["val_acc"]["config"].pop("feature_spec") and m,
     "cannot load 'ridge': KeyError"),
    ("descriptors_a_list", _set("descriptors", [1]), "descriptors: must be an object, not a list"),
]


@pytest.mark.parametrize(("edit", "match"), [(e, m) for _, e, m in MANIFESTS], ids=[n for n, _, _ in MANIFESTS])
def test_malformed_manifest_is_refused_in_one_line(saved: Path, tmp_path: Path, edit: Callable[[Any], Any],
                                                   match: str) -> None:
    folder = tmp_path / "frozen"
    shutil.copytree(saved, folder)
    m = edit(json.loads((folder / "manifest.json").read_text()))
    (folder / "manifest.json").write_text(json.dumps(m))
    _refused(folder, match)


@pytest.mark.parametrize(("name", "data", "match"), [
    ("deep", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    ("utf8", b'{"format": "\xff"}', "cannot be read as UTF-8"),
    ("truncated", b'{"format": ', "malformed JSON"),
])
def test_unreadable_manifest_is_refused_in_one_line(saved: Path, tmp_path: Path, name: str, data: bytes,
                                                    match: str) -> None:
    folder = tmp_path / "frozen"
    shutil.copytree(saved, folder)
    (folder / "manifest.json").write_bytes(data)
    _refused(folder, match)


def test_the_digest_can_be_pinned(saved: Path, tmp_path: Path) -> None:
    digest = artefact_digest(saved)
    assert digest == hashlib.sha256((saved / "manifest.json").read_bytes()).hexdigest()
    r = _predict(saved, "--expect-sha256", digest.upper())
    assert r.exit_code == 0, r.output
    assert "val_acc:" in r.stdout and "train_time_s:" in r.stdout
    _refused(saved, f"artefact sha256 {digest} differs from the expected", "--expect-sha256", "0" * 64)
    # a consistent rewrite (new payload, matching sums) passes the per-file checks, but not the pin
    folder = tmp_path / "frozen"
    shutil.copytree(saved, folder)
    m = json.loads((folder / "manifest.json").read_text())
    rel = _listed(m, "val_acc", "b.npy")
    np.save(folder / rel, np.array([123.0]), allow_pickle=False)
    _rehash(folder, m, rel)
    (folder / "manifest.json").write_text(json.dumps(m))
    assert load_artefact(folder).digest != digest
    _refused(folder, "differs from the expected", "--expect-sha256", digest)


def test_save_refuses_a_pickle_payload_and_keeps_the_old_artefact(saved: Path, tmp_path: Path,
                                                                  pred_rows: pl.DataFrame) -> None:
    folder = tmp_path / "frozen"
    shutil.copytree(saved, folder)
    before = artefact_digest(folder)

    class Pickling:
        name = "ridge"

        def save(self, sub: Path) -> list[str]:
            sub.mkdir(parents=True)
            (sub / "model.bin").write_bytes(pickle.dumps([1], protocol=0))
            return ["model.bin"]

        def config(self) -> dict[str, Any]:
            return {}

    from narch.predictors.payloads import ArtefactError

    with pytest.raises(ArtefactError, match="pickle"):
        save_artefact(folder, {"val_acc": Pickling()}, fingerprint="test")  # type: ignore[dict-item]
    assert artefact_digest(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["frozen"]  # the temporary sibling and the lock are gone
