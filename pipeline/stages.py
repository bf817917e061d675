"""A resumable sequence of stages, each returning a typed result that later stages read in memory.

A finished stage leaves a marker (``stages/NN-name.json``: config hash, timings, its result's fields; frames as
Parquet in ``stages/NN-name/``). A rerun skips a stage whose marker matches its config and loads the result with the
stage's typed loader instead.
"""

from __future__ import annotations

import hashlib
import json
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import polars as pl
from rich.console import Console

from narch.core.errors import NarchError
from narch.core.files import atomic_write_bytes, atomic_write_json, read_json
from narch.core.provenance import now_iso
from narch.pipeline.sections import Section

SAVED = "saved"  # field metadata key: ``field(metadata={SAVED: False})`` keeps a field out of the marker


class StageOutput(Protocol):
    """What a stage returns: a dataclass of figures, frames and plot paths that renders its part of the report."""

    def section(self) -> Section: ...


R = TypeVar("R", bound=StageOutput)


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def save_output(output: StageOutput, folder: Path, root: Path) -> dict[str, Any]:
    """The result's fields as JSON (paths relative to the run folder ``root``); frames written to ``folder``."""
    saved: dict[str, Any] = {}
    for f in fields(output):  # type: ignore[arg-type]
        if not f.metadata.get(SAVED, True):
            continue
        value = getattr(output, f.name)
        if isinstance(value, pl.DataFrame):
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / f"{f.name}.parquet", value.write_parquet)
            value = f"{f.name}.parquet"
        elif isinstance(value, Path):
            value = _rel(value, root)
        elif isinstance(value, list | tuple) and value and all(isinstance(v, Path) for v in value):
            value = [_rel(v, root) for v in value]
        saved[f.name] = value
    return saved


def _kinds(hint: Any) -> set[Any]:
    """The classes a field annotation allows (``X | None`` -> {X, NoneType}; ``list[Path]`` -> {list[Path]})."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else ()
    return set(args) if args else {hint}


def load_output(kind: type[R], saved: dict[str, Any], folder: Path, root: Path, **unsaved: Any) -> R:
    """The typed result back from its marker (``unsaved``: the fields kept out of it, supplied by the loader)."""
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = dict(unsaved)
    for name, value in saved.items():
        kinds = _kinds(hints[name])
        if value is None:
            values[name] = None
        elif pl.DataFrame in kinds:
            values[name] = pl.read_parquet(folder / value)
        elif Path in kinds:
            values[name] = root / value
        elif any(typing.get_args(k) == (Path,) for k in kinds):
            values[name] = [root / v for v in value]
        else:
            values[name] = value
    return kind(**values)


@dataclass(frozen=True)
class Stage(Generic[R]):
    """A named step: ``run(ctx)`` returns its typed result, ``load(saved, folder, ctx)`` rebuilds it from an earlier
    run's marker. ``config`` is what invalidates the marker."""

    name: str
    run: Callable[[RunContext], R]
    load: Callable[[dict[str, Any], Path, RunContext], R]
    config: Any

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def loader(kind: type[R]) -> Callable[[dict[str, Any], Path, RunContext], R]:
    """The loader of a result whose fields are all in its marker."""
    return lambda saved, folder, ctx: load_output(kind, saved, folder, ctx.out)


@dataclass
class StageRecord:
    """A finished stage: its result and when it ran."""

    name: str
    config_hash: str
    output: StageOutput
    started_at: str
    finished_at: str
    wall_s: float


@dataclass
class RunContext:
    """The run folder and what earlier stages produced."""

    out: Path
    console: Console
    records: dict[str, StageRecord] = field(default_factory=dict)

    def result(self, stage: str, kind: type[R]) -> R:
        """The typed result of an earlier stage."""
        out = self.records[stage].output
        if not isinstance(out, kind):
            raise TypeError(f"stage {stage!r} produced {type(out).__name__}, not {kind.__name__}")
        return out


class StageError(NarchError, ValueError):
    """A run folder whose stage marker cannot be read; the message names the marker."""


_MARKER_KEYS = {"config_hash", "output", "started_at", "finished_at", "wall_s"}


def _paths(out: Path, i: int, stage: Stage[Any]) -> tuple[Path, Path]:
    return out / "stages" / f"{i:02d}-{stage.name}.json", out / "stages" / f"{i:02d}-{stage.name}"


def _resume(stage: Stage[Any], marker: Path, folder: Path, ctx: RunContext) -> StageRecord | None:
    """The earlier run's record when its marker matches the stage's config (and is of this format)."""
    if not marker.exists():
        return None
    d = read_json(marker, error=StageError)
    if not isinstance(d, dict):
        raise StageError(f"{marker}: not a stage marker (a JSON object); delete it to run the stage again")
    if d.get("config_hash") != stage.config_hash or not set(d) >= _MARKER_KEYS:  # another config or format
        return None
    return StageRecord(stage.name, d["config_hash"], stage.load(d["output"], folder, ctx), d["started_at"],
                       d["finished_at"], d["wall_s"])


def run_stages(stages: list[Stage[Any]], ctx: RunContext) -> list[StageRecord]:
    """Run stages in order, loading those whose marker matches their config (resume after interruption)."""
    (ctx.out / "stages").mkdir(parents=True, exist_ok=True)
    for i, stage in enumerate(stages):
        marker, folder = _paths(ctx.out, i, stage)
        prev = _resume(stage, marker, folder, ctx)
        if prev is not None:
            ctx.records[stage.name] = prev
            ctx.console.print(f"[green]✓[/] {stage.name}: done before ({prev.finished_at}), skipped")
            continue
        ctx.console.rule(f"[bold]{i + 1}/{len(stages)} {stage.name}")
        started, t0 = now_iso(), time.perf_counter()
        output = stage.run(ctx)
        rec = StageRecord(stage.name, stage.config_hash, output, started, now_iso(), time.perf_counter() - t0)
        saved = save_output(output, folder, ctx.out)
        atomic_write_json(marker, {"name": rec.name, "config_hash": rec.config_hash, "started_at": rec.started_at,
                                   "finished_at": rec.finished_at, "wall_s": rec.wall_s, "output": saved},
                          sort_keys=False)
        ctx.records[stage.name] = rec
        ctx.console.print(f"[green]✓[/] {stage.name}: {rec.wall_s:.1f} s")
    return [ctx.records[s.name] for s in stages]
