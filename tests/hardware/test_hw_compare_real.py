"""End to end on a real (tiny) corpus from the builder: `narch build` then `narch hardware compare`."""

from __future__ import annotations

import json
import math
import statistics
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import read_corpus

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
    rows, metrics = data["rows"], data["metrics"]
    assert len(rows["arch_id"]) == 12
    # every measured time is the corpus's own time label (6 significant digits in the report)
    assert data["time_col"] == "train_time_robust_s", "auto: the CPU time label every ok row carries"
    measured = dict(read_corpus(corpus).select("arch_id", data["time_col"]).iter_rows())
    assert rows["measured_s"] == pytest.approx([measured[a] for a in rows["arch_id"]], rel=1e-5)
    # the 50/50 split of architectures, and each error row judged on its own side of it
    assert sum(rows["train"]) == 6
    assert (metrics["calibrated_train"]["n"], metrics["calibrated_test"]["n"], metrics["raw_all"]["n"]) == (6, 6, 12)
    assert all(r > 0 and math.isfinite(c) for r, c in zip(rows["raw_s"], rows["calibrated_s"], strict=True))
    for key, col, train in (("raw_test", "raw_s", False), ("calibrated_test", "calibrated_s", False),
                            ("calibrated_train", "calibrated_s", True)):
        ape = [abs(p - m) / m * 100 for p, m, t in zip(rows[col], rows["measured_s"], rows["train"], strict=True)
               if t == train]
        assert metrics[key]["median_ape_pct"] == pytest.approx(statistics.median(ape), rel=1e-3, abs=1e-3), key
    png = (out / "roofline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 400 and height >= 200, (width, height)


@pytest.mark.slow
def test_compare_where_keeps_one_device(tmp_path: Path) -> None:
    """A corpus timed on two devices is compared one device at a time (--where); a filter that keeps nothing is a
    one-line error that writes nothing."""
    corpus = tmp_path / "corpus"
    for seed in (4, 5):
        res = runner.invoke(app, ["build", "--task", "mnist1d", "--archs", "6", "--epochs", "1", "--n-train", "256",
                                  "--seed", str(seed), "--threads", "1", "--quiet", "--out", str(corpus)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["hardware", "compare", "--corpus", str(corpus), "--where", "seed=5",
                              "--out", str(tmp_path / "five")])
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "five" / "report.json").read_text())["rows"]["arch_id"]) == 6
    res = runner.invoke(app, ["hardware", "compare", "--corpus", str(corpus), "--where", "device_name=nope",
                              "--out", str(tmp_path / "none")])
    assert res.exit_code == 2 and "no ok rows where" in res.output and not (tmp_path / "none").exists()
