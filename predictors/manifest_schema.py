"""The schema of a predictor artefact's ``manifest.json``, checked before anything it names is opened.

Types of every known field; target keys, family names and each part of a listed file's path are plain names
(``NAME``: no ``/``, no leading dot, so no ``..``, hidden or absolute paths); every listed file is
``<target>/...`` with a 64-hex sha256; every entry lists at least one payload; parameter names are identifiers.
Each refusal is one ``ArtefactError`` line: the manifest's path, the field, the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from narch.predictors.payloads import ArtefactError

FORMAT = "narch-predictor-artefact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")  # a target key, a family name, one part of a file's path
MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
SHA256 = re.compile(r"[0-9a-f]{64}")
# Known top-level fields and their types (others, such as a fallback note, are kept as they are).
TOP_FIELDS: dict[str, tuple[type, ...]] = {
    "created_at": (str,), "search_space_version": (str, int), "corpus_schema_version": (int,),
    "features_version": (int,), "corpus_fingerprint": (str,), "python": (str,), "corpus": (str,),
    "command": (str,), "descriptors": (dict,),
}


def _bad(where: Path, field: str, problem: str) -> NoReturn:
    raise ArtefactError(f"{where}: {field}: {problem}")


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, where a bool is not an int."""
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _field(obj: Mapping[str, Any], key: str, types: tuple[type, ...], where: Path, at: str, *,
           required: bool = True) -> Any:
    if key not in obj:
        if required:
            _bad(where, f"{at}{key}", "missing")
        return None
    value = obj[key]
    if not _is(value, types):
        names = " or ".join(_kind(t()) for t in types)
        _bad(where, f"{at}{key}", f"must be {names}, not {_kind(value)}")
    return value


def check_name(name: str, where: Path, field: str) -> None:
    if not NAME.fullmatch(name) or name == MANIFEST:
        _bad(where, field, f"{name[:80]!r} is not a plain name (letters, digits, _ . + -; no leading dot, no /)")


def check_rel(rel: str, target: str, where: Path) -> None:
    """A listed file: ``<target>/<name>[/<name>...]``, each part a plain name (no ``..``, no absolute path)."""
    parts = rel.split("/")
    if len(parts) < 2 or parts[0] != target or len(parts) > 8:
        _bad(where, f"entries.{target}.files", f"{rel[:120]!r} is not a file inside the {target!r} folder")
    for part in parts:
        check_name(part, where, f"entries.{target}.files {rel[:120]!r}")


def _check_entry(target: str, entry: Any, where: Path) -> None:
    at = f"entries.{target}."
    if not isinstance(entry, dict):
        _bad(where, f"entries.{target}", f"must be an object, not {_kind(entry)}")
    family = _field(entry, "predictor", (str,), where, at)
    check_name(family, where, f"{at}predictor")
    module = _field(entry, "module", (str, type(None)), where, at, required=False)
    if module is not None and not MODULE.fullmatch(module):
        _bad(where, f"{at}module", f"{module[:80]!r} is not a module name")
    if _field(entry, "target", (str,), where, at) != target:
        _bad(where, f"{at}target", f"{entry['target'][:80]!r} differs from its key {target!r}")
    _field(entry, "metrics", (dict,), where, at, required=False)
    config = _field(entry, "config", (dict,), where, at)
    _field(config, "seed", (int,), where, f"{at}config.", required=False)
    if _field(config, "target", (str,), where, f"{at}config.", required=False) not in (None, target):
        _bad(where, f"{at}config.target", f"{config['target'][:80]!r} differs from {target!r}")
    for name in _field(config, "params", (dict,), where, f"{at}config.", required=False) or {}:
        if not name.isidentifier() or name.startswith("_"):
            _bad(where, f"{at}config.params", f"{name[:80]!r} is not a parameter name")
    files = _field(entry, "files", (dict,), where, at)
    if not files:
        _bad(where, f"{at}files", f"lists no payload files; family {family!r} cannot be loaded from nothing")
    for rel, digest in files.items():
        check_rel(rel, target, where)
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            _bad(where, f"{at}files {rel!r}", "the sha256 must be 64 lowercase hex digits")


def check_manifest(m: Any, where: Path) -> dict[str, Any]:
    """The manifest ``m`` read from ``where`` if its schema holds; ArtefactError naming the first bad field."""
    if not isinstance(m, dict):
        raise ArtefactError(f"{where}: not a {FORMAT} v{FORMAT_VERSION} manifest ({_kind(m)}, not an object)")
    if m.get("format") != FORMAT or not _is(m.get("format_version"), (int,)) or m["format_version"] != FORMAT_VERSION:
        raise ArtefactError(f"{where}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    for key, types in TOP_FIELDS.items():
        _field(m, key, types, where, "", required=False)
    targets = _field(m, "targets", (list,), where, "")
    entries = _field(m, "entries", (dict,), where, "")
    if not entries:
        _bad(where, "entries", "no targets")
    for t in targets:
        if not isinstance(t, str):
            _bad(where, "targets", f"must be a list of strings, holds {_kind(t)}")
    if sorted(targets) != sorted(entries):
        _bad(where, "targets", f"{sorted(targets)} differ from the entries {sorted(entries)}")
    for target, entry in entries.items():
        check_name(target, where, "entries")
        _check_entry(target, entry, where)
    return m
