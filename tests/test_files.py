"""narch.core.files.atomic_savefig: a figure is written whole or not at all, in the path's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narch.core.files import atomic_savefig


class _Fig:
    """Records what ``savefig`` was given; writes the format name as the file's bytes."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.kw: dict[str, Any] = {}

    def savefig(self, fname: Any, **kw: Any) -> None:
        self.kw = kw
        fname.write(str(kw["format"]).encode())
        if self.fail:
            raise RuntimeError("renderer failed")


def test_format_from_the_suffix_and_the_other_options_passed_on(tmp_path: Path) -> None:
    fig = _Fig()
    atomic_savefig(fig, tmp_path / "curves.svg", dpi=120)
    assert fig.kw == {"format": "svg", "dpi": 120}
    assert (tmp_path / "curves.svg").read_bytes() == b"svg"
    atomic_savefig(fig, tmp_path / "plot", format="pdf")
    assert (tmp_path / "plot").read_bytes() == b"pdf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.svg", "plot"]


def test_a_failed_savefig_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="renderer failed"):
        atomic_savefig(_Fig(fail=True), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_a_real_matplotlib_figure(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_savefig(fig, tmp_path / "line.png", dpi=50)
    plt.close(fig)
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
