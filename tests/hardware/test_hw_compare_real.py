"""End to end on a real (tiny) corpus from the builder: `narch build` then `narch hardware compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_build_then_compare(tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "report"
    res = runner.invoke(app, ["build", "--task", "mnist1d", "--archs", "12", "--epochs", "1", "--n-train", "256",
                              "--seed", "4", "--threads", "1", "--quiet", "--out", str(corpus)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["hardware", "compare", "--corpus", str(corpus), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "report.json").read_text())
    assert len(data["rows"]["arch_id"]) == 12
    for key in ("raw_test", "calibrated_test"):
        assert 0 <= data["metrics"][key]["median_ape_pct"] < 1000
    assert (out / "roofline.png").stat().st_size > 10_000
