"""A stage's part of the report as typed blocks (text, tables as frames, figures); ``pipeline.report`` renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class Text:
    """A paragraph (inline markdown: emphasis, code) written from a result's figures."""

    text: str


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Table:
    """A frame shown as a table; floats to ``floats`` significant digits."""

    frame: pl.DataFrame
    floats: int = 4


@dataclass(frozen=True)
class Figure:
    """A plot file (absolute, or relative to the run folder)."""

    path: Path


Block = Text | Heading | Table | Figure


@dataclass(frozen=True)
class Section:
    """A titled part of the report. ``summary``: its key findings, one sentence each (inline markdown, written from
    the stage's numbers), which the report lists at its top."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    @property
    def figures(self) -> list[Path]:
        return [b.path for b in self.blocks if isinstance(b, Figure)]


def pct(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage in the report's style ("45.5 %"); "–" when missing."""
    if fraction is None or fraction != fraction:
        return "–"
    return f"{fraction * 100:.{digits}f} %"
