"""narch.core.files: a figure is written whole or not at all, in the path's format; JSON is strict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from narch.core.files import atomic_savefig, atomic_write_json


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


def _strict(text: str) -> object:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in strict JSON"))


def test_json_is_strict_and_numpy_scalars_are_numbers(tmp_path: Path) -> None:
    obj = {"nan": float("nan"), "inf": [float("-inf")], "f32": np.float32(0.5), "i64": np.int64(3),
           "np_nan": np.float64("nan"), "f32_nan": np.float32("nan"), "zero_d": np.array(2.0)}
    atomic_write_json(tmp_path / "a.json", obj)
    assert _strict((tmp_path / "a.json").read_text()) == {
        "nan": None, "inf": [None], "f32": 0.5, "i64": 3, "np_nan": None, "f32_nan": None, "zero_d": 2.0}


def test_json_separators(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "c.json", {"b": [1, 2], "a": None}, indent=None, separators=(",", ":"))
    assert (tmp_path / "c.json").read_text() == '{"a":null,"b":[1,2]}\n'
