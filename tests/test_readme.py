"""The README's search-space example runs; its --archs-from example file, and the one in `narch build --help`, are
what build and predict read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from narch.cli import app
from narch.search_space import SEEDS, Network, load_networks
from tests.conftest import readme_blocks


def test_the_search_space_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = readme_blocks("### The search space (`search_space/`, no torch)")
    scope: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, "README.md (The search space)", "exec"), scope)
    child, net = scope["child"], SEEDS["resnet_tiny"]
    assert child.layers[5].channels == 128 and child.arch_id != net.arch_id  # type: ignore[attr-defined]
    assert "scale layer 4" in capsys.readouterr().out  # the refused move prints its reason
    assert scope["moves"] and len(scope["plan"]) == 100  # type: ignore[arg-type]


def test_the_archs_from_example_is_one_network_a_line(tmp_path: Path) -> None:
    (block,) = readme_blocks("## A short tour", lang="jsonl")
    lines = block.strip().splitlines()
    assert all(json.loads(line) for line in lines)  # strict JSON, one document a line
    f = tmp_path / "my_nets.jsonl"
    f.write_text(block)
    nets = load_networks(f)
    assert len(nets) == len(lines) == 2 and nets[0].arch_id != nets[1].arch_id
    assert nets[1].layers[2].inputs == (0, 1)


def test_build_help_shows_the_file_shape_with_a_network_that_parses() -> None:
    build = typer.main.get_command(app).commands["build"]  # type: ignore[attr-defined]
    (help_text,) = [p.help for p in build.params if p.name == "archs_from"]
    assert ".jsonl, one network a line" in help_text and ".json, one network or a list" in help_text
    example = help_text.split("e.g. ", 1)[1].split(" (fields", 1)[0]
    assert len(Network.from_json(example)) == 2
