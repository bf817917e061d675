"""`narch run`: stages resume after an interruption without redoing finished ones; the report embeds its plots."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset_builder.corpus import part_files, read_corpus
from pipeline.run import run_pipeline


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
    assert read_corpus(corpus).height == 8

    res = subprocess.run(_narch_run(out), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "corpus: done before" in res.stderr and "hardware: done before" in res.stderr
    assert json.loads((out / "stages" / "00-corpus.json").read_text()) == marker


def test_report_embeds_every_plot(tmp_path: Path) -> None:
    run_pipeline(tmp_path / "run", preset="smoke")
    page = (tmp_path / "run" / "report.html").read_text()
    md = (tmp_path / "run" / "report.md").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[", md)) >= 2
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in page and "git revision" in page
