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
from tests.pipeline.test_report import assert_fits, layout


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
    assert "<table" in page and "git_rev" in page


def test_the_summary_is_written_from_the_stages_results(smoke_run: Path) -> None:
    md = (smoke_run / "report.md").read_text()
    summary = md.split("## Summary\n\n", 1)[1].split("\n\n## Contents", 1)[0].splitlines()
    df = read_corpus(smoke_run / "corpus")
    networks = json.loads((smoke_run / "stages" / "00-corpus.json").read_text())["output"]["networks"]
    assert summary[0].startswith(f"- **Corpus**: {networks} networks") and networks <= df["arch_id"].n_unique()
    assert [line.split("**")[1] for line in summary] == [
        "Corpus", "Roofline time model", "Best predictor of val_acc", "Best predictor of train_time_s",
        "Best search strategy", "Best searched network"]
    board = pl.read_parquet(smoke_run / "leaderboard" / "leaderboard.parquet")
    assert any(p in summary[2] for p in board["predictor"].unique().to_list())
    assert "measured validation accuracy" in summary[-1] and "predicted" in summary[-1]


def test_the_markdown_report_parses_and_its_contents_links_resolve(smoke_run: Path) -> None:
    from markdown_it import MarkdownIt

    from narch.pipeline.report import Anchors

    md = (smoke_run / "report.md").read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    assert sum(t.type == "table_open" for t in tokens) == md.count("\n|---") >= 8  # every table parses as one
    anchors = Anchors()
    heads = {anchors(tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag != "h1"}
    links = re.findall(r"\]\(#([^)]+)\)", md)
    assert len(links) >= 8 and set(links) <= heads


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
    # the page as Chromium laid it out: the summary and the contents at the top of the screenshot, every
    # contents link resolving, no table wider than the page; narrower than the tables, they scroll, not the page
    m = layout(smoke_run / "report.html", smoke_run, 1200)
    assert_fits(m, tables_fit=True)
    assert len(m["tables"]) >= 8
    assert 0 < m["summary"]["top"] < m["summary"]["bottom"] < m["contents"]["top"] < m["contents"]["bottom"] < 2600
    assert m["summary_items"] >= 5 and "Best predictor of val_acc" in m["summary"]["text"]
    titles = [link["text"] for link in m["toc_links"]]
    assert {"Corpus", "Predictor leaderboard", "Search on the frozen predictor", "Provenance"} <= set(titles)
    assert all(link["target"] for link in m["toc_links"]), m["toc_links"]
    assert_fits(layout(smoke_run / "report.html", smoke_run, 560), tables_fit=False)


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"bare {name} in a JSON output")


def test_every_json_output_is_strict(smoke_run: Path) -> None:
    files = sorted(smoke_run.rglob("*.json"))
    kinds = {p.relative_to(smoke_run).parts[0] for p in files}
    assert len(files) >= 10 and {"corpus", "leaderboard", "stages"} <= kinds, kinds  # the tiny corpus and board too
    for p in files:
        json.loads(p.read_text(), parse_constant=_refuse_constant)  # bare NaN, Infinity, -Infinity: refused
