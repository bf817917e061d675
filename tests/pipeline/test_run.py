"""`narch run`: stages resume after an interruption without redoing finished ones; the report embeds its plots."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from narch.dataset_builder.corpus import part_files, read_corpus
from narch.pipeline.run import run_pipeline
from narch.search_space import plan_networks


def _narch_run(out: Path) -> list[str]:
    return [sys.executable, "-m", "narch.cli", "run", "--preset", "smoke", "--out", str(out)]


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_finished_stages(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _narch_run(out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    corpus = out / "corpus"
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline and proc.poll() is None and len(part_files(corpus) if corpus.exists() else []) < 3
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert not (out / "stages" / "00-corpus.json").exists()
    parts_before = {p.name for p in part_files(corpus)}

    res = subprocess.run(_narch_run(out), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert parts_before <= {p.name for p in part_files(corpus)}, "finished runs were kept, not redone"
    marker = json.loads((out / "stages" / "00-corpus.json").read_text())
    df = read_corpus(corpus)
    planned = {p.net.arch_id for p in plan_networks(8, 0)}
    assert df.filter(pl.col("arch_id").is_in(planned)).height == 8  # each planned network once
    assert df.height in (8, 9)  # plus the network the search stage verified, unless it was already there

    res = subprocess.run(_narch_run(out), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "corpus: done before" in res.stderr and "hardware: done before" in res.stderr
    assert json.loads((out / "stages" / "00-corpus.json").read_text()) == marker


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "run"
    run_pipeline(out, preset="smoke")
    return out


def test_report_embeds_every_plot(smoke_run: Path) -> None:
    page = (smoke_run / "report.html").read_text()
    md = (smoke_run / "report.md").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[", md)) >= 2
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in page and "git_rev" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_its_plots(smoke_run: Path) -> None:
    import numpy as np
    from matplotlib.image import imread

    script = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report"
    shot = smoke_run / "shot.png"
    subprocess.run([str(script), str(smoke_run / "report.html"), str(shot), "2600"], check=True, timeout=180)
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (2600, 1200)
    colourful = (img.max(axis=2) - img.min(axis=2)) > 0.25  # plot markers and colour maps, not black-on-white text
    assert colourful.mean() > 0.002, "no coloured plot pixels: the embedded images did not render"
    assert np.unique(img.reshape(-1, 3), axis=0).shape[0] > 200


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"bare {name} in a JSON output")


def test_every_json_output_is_strict(smoke_run: Path) -> None:
    files = sorted(smoke_run.rglob("*.json"))
    kinds = {p.relative_to(smoke_run).parts[0] for p in files}
    assert len(files) >= 10 and {"corpus", "leaderboard", "stages"} <= kinds, kinds  # the tiny corpus and board too
    for p in files:
        json.loads(p.read_text(), parse_constant=_refuse_constant)  # bare NaN, Infinity, -Infinity: refused
