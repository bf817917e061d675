"""Stage results round-trip through their markers: frames as Parquet, paths relative to the run folder, fields kept
out of the marker supplied by the stage's loader; the report renders the typed sections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from narch.pipeline.report import render_markdown
from narch.pipeline.sections import Figure, Section, Table, Text
from narch.pipeline.stages import SAVED, RunContext, Stage, StageError, load_output, loader, run_stages


@dataclass(frozen=True)
class Toy:
    folder: Path
    table: pl.DataFrame
    missing: pl.DataFrame | None
    plots: list[Path]
    figures: dict[str, int]
    rows: pl.DataFrame = field(repr=False, metadata={SAVED: False})

    def section(self) -> Section:
        return Section("Toy", [Text(f"{self.figures['n']} things."), Table(self.table), *map(Figure, self.plots)])


def _toy(root: Path) -> Toy:
    (root / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return Toy(root / "sub", pl.DataFrame({"a": [1.5, float("nan")], "b": ["x", None]}), None, [root / "plot.png"],
               {"n": 3}, pl.DataFrame({"big": [1, 2, 3]}))


def test_results_round_trip_and_resume_loads_them(tmp_path: Path) -> None:
    calls: list[int] = []

    def run(ctx: RunContext) -> Toy:
        calls.append(1)
        return _toy(ctx.out)

    def load(saved: dict, folder: Path, ctx: RunContext) -> Toy:
        return load_output(Toy, saved, folder, ctx.out, rows=pl.DataFrame({"big": [9]}))

    stages = [Stage("toy", run, load, {"k": 1})]
    first = run_stages(stages, RunContext(tmp_path, Console(quiet=True)))[0].output
    marker = json.loads((tmp_path / "stages" / "00-toy.json").read_text())
    assert marker["output"]["folder"] == "sub" and marker["output"]["plots"] == ["plot.png"]
    assert "rows" not in marker["output"] and marker["output"]["missing"] is None
    again = run_stages(stages, RunContext(tmp_path, Console(quiet=True)))[0].output
    assert calls == [1]  # the second run loaded the result instead of running the stage
    assert isinstance(again, Toy) and again.folder == first.folder and again.plots == first.plots
    assert again.table.equals(first.table) and again.missing is None and again.figures == {"n": 3}
    assert again.rows["big"].to_list() == [9]
    stages = [Stage("toy", run, loader(Toy), {"k": 2})]  # another config invalidates the marker
    run_stages(stages, RunContext(tmp_path, Console(quiet=True)))
    assert calls == [1, 1]


def test_markdown_renders_sections_with_relative_figures(tmp_path: Path) -> None:
    stages = [Stage("toy", lambda ctx: _toy(ctx.out), loader(Toy), {})]
    records = run_stages(stages, RunContext(tmp_path, Console(quiet=True)))
    md = render_markdown(records, title="T", prov={"git_rev": "abc", "extra_key": 1}, root=tmp_path)
    assert "## Toy" in md and "3 things." in md and "| A | B |" in md and "![plot](plot.png)" in md
    assert "- git_rev: `abc`" in md and "- extra_key: `1`" in md


def test_an_unreadable_marker_is_refused_naming_it(tmp_path: Path) -> None:
    stages = [Stage("toy", lambda ctx: _toy(ctx.out), loader(Toy), {"k": 1})]
    marker = tmp_path / "stages" / "00-toy.json"
    marker.parent.mkdir()
    for text, why in (("{", "malformed JSON"), ("[" * 200_000, "nested too deeply"), ("[1]", "not a stage marker")):
        marker.write_text(text)
        with pytest.raises(StageError, match=why) as e:
            run_stages(stages, RunContext(tmp_path, Console(quiet=True)))
        assert str(e.value).startswith(str(marker))
    marker.write_text(json.dumps({"config_hash": stages[0].config_hash}))  # an older format: the stage runs again
    assert isinstance(run_stages(stages, RunContext(tmp_path, Console(quiet=True)))[0].output, Toy)
