"""The wheel installs one top-level package of ours (`narch`) plus the console script, whatever the folders are, and
ships the public per-architecture files that `narch import` reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("pyproject.toml", "README.md", "narch", "search_space", "hardware", "dataset_builder", "predictors",
          "controller", "pipeline")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the source (the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCE:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("neural_architect-*.whl")
    return whl


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"narch"}
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["narch"]


def test_wheel_holds_every_module_under_narch(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in SOURCE[2:]:  # a subpackage left out of pyproject's package list fails here
        for f in (ROOT / folder).rglob("*.py"):
            rel = str(f.relative_to(ROOT))
            assert (rel if folder == "narch" else f"narch/{rel}") in names, f"{rel} is missing from the wheel"
    assert "narch/core/registry.py" in names
    ep = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "narch = narch.cli:main" in zipfile.ZipFile(wheel).read(ep).decode()


def test_wheel_ships_the_public_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = ROOT / "narch" / "data" / "external"
    files = [f for f in data.rglob("*") if f.is_file()]
    assert "narch/data/external/nb201/nb201_test_accuracy_200ep.csv" in names and len(files) > 10
    for f in files:
        assert str(f.relative_to(ROOT)) in names, f"{f.relative_to(ROOT)} is missing from the wheel"


def test_installed_wheel_finds_its_data(wheel: Path, tmp_path: Path) -> None:
    """A non-editable install reads the files from its own package folder, not from a checkout."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = "from narch.dataset_builder.importers.sources import SOURCES; print(SOURCES['nb101'].locate())"
    env = {k: v for k, v in os.environ.items() if k != "NARCH_EXTERNAL_DIR"} | {"PYTHONPATH": str(target)}
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert Path(res.stdout.strip()) == (target / "narch/data/external/nb101/nb101_1k_with_train_time.json").resolve()
