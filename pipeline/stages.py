"""A resumable sequence of stages: each writes a marker with its outputs and report section when it finishes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from narch.dataset_builder.corpus import atomic_write_bytes, now_iso


@dataclass
class Section:
    """A stage's part of the report: markdown text, images (paths relative to the run folder) and tables."""

    title: str
    markdown: str = ""
    images: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # markdown tables


@dataclass
class StageResult:
    """What a finished stage leaves behind (stages/NN-name.json)."""

    name: str
    config_hash: str
    outputs: dict[str, Any]
    section: Section
    started_at: str
    finished_at: str
    wall_s: float

    @staticmethod
    def from_json(text: str) -> StageResult:
        d = json.loads(text)
        d["section"] = Section(**d["section"])
        return StageResult(**d)


@dataclass(frozen=True)
class Stage:
    """A named step; ``run(ctx)`` returns (outputs, section). ``config`` is what invalidates its marker."""

    name: str
    run: Callable[[RunContext], tuple[dict[str, Any], Section]]
    config: dict[str, Any]

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunContext:
    """The run folder and what earlier stages produced."""

    out: Path
    console: Console
    results: dict[str, StageResult] = field(default_factory=dict)

    def output(self, stage: str, key: str) -> Any:
        return self.results[stage].outputs[key]


def _marker(out: Path, i: int, stage: Stage) -> Path:
    return out / "stages" / f"{i:02d}-{stage.name}.json"


def run_stages(stages: list[Stage], ctx: RunContext) -> list[StageResult]:
    """Run stages in order, skipping those whose marker matches their config (resume after interruption)."""
    (ctx.out / "stages").mkdir(parents=True, exist_ok=True)
    for i, stage in enumerate(stages):
        marker = _marker(ctx.out, i, stage)
        if marker.exists():
            prev = StageResult.from_json(marker.read_text())
            if prev.config_hash == stage.config_hash:
                ctx.results[stage.name] = prev
                ctx.console.print(f"[green]✓[/] {stage.name}: done before ({prev.finished_at}), skipped")
                continue
        ctx.console.rule(f"[bold]{i + 1}/{len(stages)} {stage.name}")
        started, t0 = now_iso(), time.perf_counter()
        outputs, section = stage.run(ctx)
        res = StageResult(stage.name, stage.config_hash, outputs, section, started, now_iso(), time.perf_counter() - t0)
        text = json.dumps(asdict(res), indent=2, default=str) + "\n"
        atomic_write_bytes(marker, lambda f, t=text: f.write(t.encode()))
        ctx.results[stage.name] = res
        ctx.console.print(f"[green]✓[/] {stage.name}: {res.wall_s:.1f} s")
    return [ctx.results[s.name] for s in stages]
