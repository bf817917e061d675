"""The example plugin installed for real (offline, into a temp folder) works through every command as subprocesses:
its family is ranked and frozen by the leaderboard, the frozen artefact answers `narch predict`, its strategy runs
in `narch search`; without it the artefact fails in one line naming the plugin module; its own suites pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "narch-example-plugin"
MODULE = "narch_example_plugin.knn"


def _env(path: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env | ({"PYTHONPATH": str(path)} if path is not None else {})


def _narch(*args: str, path: Path | None, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "narch.cli", *args], env=_env(path), cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    if ok:
        assert r.returncode == 0, f"narch {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example (the build writes build/ and egg-info next to the sources, not in the checkout)."""
    src = tmp_path_factory.mktemp("plugin") / "narch-example-plugin"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return src


@pytest.fixture(scope="module")
def site(source: Path) -> Path:
    """The plugin installed with pip into its own folder, offline (no index, no build isolation, no deps)."""
    out = source.parent / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(out), str(source)], check=True, capture_output=True, timeout=300)
    assert (out / "narch_example_plugin" / "knn.py").is_file()
    return out


@pytest.fixture(scope="module")
def board(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real corpus from `narch build`, then `narch leaderboard` restricted to the plugin family."""
    work = tmp_path_factory.mktemp("work")
    _narch("build", "--task", "mnist1d", "--archs", "12", "--epochs", "1", "--n-train", "256", "--threads", "1",
           "--out", str(work / "corpus"), "--quiet", path=site, cwd=work)
    _narch("leaderboard", "--corpus", str(work / "corpus"), "--out", str(work / "lb"), "--predictors", "knn",
           "--seeds", "1", "--trials", "2", "--sizes", "4", path=site, cwd=work)
    return work / "lb"


def test_installed_family_is_enumerated_with_the_built_in_ones(site: Path, tmp_path: Path) -> None:
    code = "from narch.predictors.families import load_families; print(','.join(load_families()))"
    r = subprocess.run([sys.executable, "-c", code], env=_env(site), cwd=tmp_path, capture_output=True, text=True,
                       check=True, timeout=120)
    assert {"knn", "ridge", "gbdt"} <= set(r.stdout.strip().split(","))


def test_leaderboard_ranks_and_freezes_the_plugin_family(board: Path) -> None:
    cells = pl.read_parquet(board / "leaderboard.parquet")
    assert set(cells["predictor"]) == {"knn"} and set(cells["target"]) == {"val_acc", "train_time_s"}
    manifest = json.loads((board / "frozen" / "manifest.json").read_text())
    for entry in manifest["entries"].values():
        assert (entry["predictor"], entry["module"]) == ("knn", MODULE)
        assert all(not f.endswith((".pkl", ".pickle")) for f in entry["files"])


def test_predict_answers_with_the_frozen_plugin_artefact(board: Path, site: Path) -> None:
    r = _narch("predict", "--predictor", str(board / "frozen"), "--arch", "lenet", "--task", "mnist1d", path=site,
               cwd=board)
    assert "val_acc:" in r.stdout and "train_time_s:" in r.stdout and r.stdout.count("(knn)") == 2


def test_search_runs_the_plugin_strategy(board: Path, site: Path) -> None:
    out = board.parent / "search"
    r = _narch("search", "--predictor", str(board / "frozen"), "--out", str(out), "--strategy", "annealing",
               "--budget", "30", "--seeds", "1", "--batch", "8", "--episode-len", "3", path=site, cwd=board)
    assert "annealing: final best reward" in r.stdout
    assert set(pl.read_parquet(out / "best_so_far.parquet")["strategy"]) == {"annealing"}


def test_without_the_plugin_predict_fails_in_one_line_naming_its_module(board: Path) -> None:
    r = _narch("predict", "--predictor", str(board / "frozen"), "--arch", "lenet", path=None, cwd=board, ok=False)
    lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
    assert r.returncode != 0 and len(lines) == 1, lines
    assert lines[0].startswith("narch: error:") and MODULE in lines[0] and "--plugin" in lines[0]


def test_plugin_option_loads_a_module_that_is_not_installed(board: Path, source: Path, tmp_path: Path) -> None:
    """On the path but not installed (no metadata, so no entry points): `--plugin MODULE` registers the family."""
    shutil.copytree(source / "narch_example_plugin", tmp_path / "narch_example_plugin")
    r = _narch("predict", "--plugin", MODULE, "--predictor", str(board / "frozen"), "--arch", "lenet", path=tmp_path,
               cwd=board)
    assert r.stdout.count("(knn)") == 2


def test_plugin_option_naming_no_module_is_a_one_line_error() -> None:
    r = CliRunner().invoke(app, ["predict", "--plugin", "no_such_plugin_module", "--predictor", ".", "--arch",
                                 "lenet"])
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "plugin module 'no_such_plugin_module'" in lines[0]


def test_the_plugin_passes_its_own_conformance_tests(site: Path, source: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env=_env(site),
                       cwd=source, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
