"""The wheel installs one top-level package of ours (`narch`) plus the console script, whatever the folders are."""

from __future__ import annotations

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
