"""Command-line conventions: `narch --version`, and `-h` as `--help` on every group and command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from narch.cli import app
from narch.core.provenance import builder_version

runner = CliRunner()


def _paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The app, every group and every command, by path."""
    out = [prefix]
    for name, cmd in group.commands.items():
        out += _paths(cmd, (*prefix, name)) if hasattr(cmd, "commands") else [(*prefix, name)]
    return out


PATHS = _paths(typer.main.get_command(app))


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"narch {builder_version()}\n"


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "narch" for p in PATHS])
def test_short_help_is_help(path: tuple[str, ...]) -> None:
    short, long = runner.invoke(app, [*path, "-h"]), runner.invoke(app, [*path, "--help"])
    assert short.exit_code == long.exit_code == 0, short.output
    assert "Usage:" in short.output and short.output == long.output
    assert "-h" in short.output  # listed as an alias of --help


def test_no_default_output_lies_in_the_checkout_s_results() -> None:
    """Defaults write under runs/ (ignored by git) or a per-user cache, never into committed results/."""
    root = typer.main.get_command(app)
    defaults = {}
    for path in PATHS:
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        defaults |= {(*path, p.name): str(p.default) for p in cmd.params if isinstance(p.default, Path)}
    assert defaults[("hardware", "bench", "out")] == "runs/hardware"
    assert defaults[("hardware", "compare", "out")].startswith("runs/")
    assert defaults[("corpus", "datacard", "out")].startswith("runs/")
    assert not [k for k, v in defaults.items() if Path(v).parts[:1] == ("results",)], defaults
