"""The report: a summary of findings and a table of contents at the top, anchors that resolve, human headers with
units, sortable tables in wrappers that scroll, valid markdown; and how it lays out in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from markdown_it import MarkdownIt

from narch.pipeline.labels import header, headers
from narch.pipeline.report import NO_FINDINGS, Anchors, render_html, render_markdown, slug
from narch.pipeline.sections import Heading, Section, Table, Text
from narch.pipeline.stages import StageRecord

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report"
CHECK_JS = Path(__file__).with_name("layout_check.js")


@dataclass(frozen=True)
class _Out:
    sec: Section

    def section(self) -> Section:
        return self.sec


def _records(*sections: Section) -> list[StageRecord]:
    return [StageRecord(f"s{i}", "h", _Out(s), "t0", "t1", 1.0) for i, s in enumerate(sections)]


WIDE = pl.DataFrame({f"time_s_device_{k}": [1.0 + k, 2.5, None] for k in range(14)}
                    | {"arch_id": ["a" * 40, "b" * 40, "c" * 40], "val_acc": [0.5, 0.25, 0.75]})


def _toy() -> list[StageRecord]:
    return _records(
        Section("Corpus", [Text("Some *rows*."), Table(pl.DataFrame({"val_acc": [0.5, 0.9, 0.7],
                                                                     "train_time_s": [1.5, 0.2, 3.0],
                                                                     "params": [10, 3000, 200]}))],
                summary=["**Corpus**: 3 networks.", "Accuracy 50.0 % to 90.0 %."]),
        Section("Leaderboard", [Heading("val_acc (linear space)"), Text("x"), Heading("val_acc (linear space)"),
                                Table(WIDE)], summary=["**Best predictor**: gbdt."]),
        Section("Empty", [Text("nothing")]),
    )


def test_slugs_follow_githubs_anchors_and_repeats_get_a_suffix() -> None:
    assert slug("Predictor leaderboard") == "predictor-leaderboard"
    assert slug("val_acc (linear space)") == "val_acc-linear-space"
    assert slug("Measured vs roofline: ±10 %") == "measured-vs-roofline-10-"
    a = Anchors()
    assert [a("Corpus"), a("Corpus"), a("corpus-1"), a("Corpus"), a("!!")] == [
        "corpus", "corpus-1", "corpus-1-1", "corpus-2", "section"]


def test_headers_are_human_with_the_schemas_units() -> None:
    assert header("val_acc") == "Val. accuracy"
    assert header("train_time_s") == "Train time (s)"  # the unit is the corpus schema's
    assert header("params") == "Params" and header("flops_fwd") == "FLOPs"
    assert header("model_size_bytes") == "Model size (bytes)"
    assert header("latency_bs1_ms") == "Latency, batch 1 (ms)"
    assert header("val_acc_pred") == "Predicted val. accuracy"
    assert header("train_time_s_pred") == "Predicted train time (s)"
    assert header("time_s_t4") == "Time on t4 (s)" and header("reward_local") == "Reward on local"
    assert header("minus_random") == "Δ vs random"
    assert header("median_abs_pct_error") == "Median abs. error (%)"
    assert header("some_new_thing_s") == "Some new thing (s)"  # spelt out, the unit read off the suffix
    assert header("epoch_time_p50_s") == "Epoch time p50 (s)"  # a schema column without a short name
    for kept in ("τ", "±10 %", "Fit time (s)", "25"):
        assert header(kept) == kept
    assert headers(["a_s", "a_s_x", "a_s"]) == ["a_s", "A s x", "a_s"]  # clashing headers keep their names


def test_markdown_has_the_summary_and_a_toc_whose_links_resolve() -> None:
    md = render_markdown(_toy(), title="Run", prov={"git_rev": "abc"}, root=Path("/nonexistent"))
    lines = md.splitlines()
    assert lines.index("## Summary") < lines.index("## Contents") < lines.index("## Corpus")
    assert "- **Corpus**: 3 networks." in lines and "- **Best predictor**: gbdt." in lines
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    heads = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag != "h1"]
    anchors = Anchors()
    targets = {anchors(h) for h in heads}  # GitHub's anchors of the headings, in order
    links = re.findall(r"\]\(#([^)]+)\)", md)
    assert links == ["corpus", "leaderboard", "val_acc-linear-space", "val_acc-linear-space-1", "empty",
                     "provenance"]
    assert set(links) <= targets
    assert "| Val. accuracy | Train time (s) | Params |" in md
    assert sum(t.type == "table_open" for t in tokens) == 2  # both tables parse as tables
    assert "| – |" in md  # a missing value


def test_a_report_without_findings_says_so() -> None:
    md = render_markdown(_records(Section("A", [Text("x")])), title="R", prov={}, root=Path("/x"))
    assert f"## Summary\n\n- {NO_FINDINGS}" in md


def test_html_tables_are_sortable_wrapped_and_the_anchors_exist() -> None:
    page = render_html(_toy(), title="Run", prov={"git_rev": "abc"}, root=Path("/nonexistent"))
    ids = set(re.findall(r' id="([^"]+)"', page))
    hrefs = re.findall(r'<a href="#([^"]+)"', page)
    assert {"summary", "contents"} <= ids and len(hrefs) == 6 and set(hrefs) <= ids
    assert page.index('id="summary"') < page.index('id="contents"') < page.index('id="corpus"')
    assert page.count('<div class="table-wrap"') == page.count("<table") == page.count('class="sortable"') == 2
    assert "overflow-x:auto" in page and "<script>" in page and "http" not in page.split("<script>")[1]
    assert '<th scope="col">Train time (s)</th>' in page
    assert '<td data-v="0.5">0.5</td>' in page and "<td>–</td>" in page
    assert "<li><strong>Corpus</strong>: 3 networks.</li>" in page


def layout(page: Path, out: Path, width: int, height: int = 2600) -> dict:
    """What layout_check.js measured in a copy of ``page`` laid out by headless Chromium at ``width`` px."""
    copy = out / f"{page.stem}_layout_{width}.html"
    copy.write_text(page.read_text().replace("</body>", f"<script>{CHECK_JS.read_text()}</script></body>"))
    dom = subprocess.run([str(SCRIPT), "--dump-dom", str(copy), str(width), str(height)], capture_output=True,
                         text=True, timeout=180, check=True).stdout
    found = re.search(r'<pre id="layout-check">(\{.*?)</pre>', dom, re.S)
    assert found, f"the check script wrote nothing (DOM: {dom[:300]!r})"
    return json.loads(html.unescape(found.group(1)))


def assert_fits(m: dict, *, tables_fit: bool) -> None:
    """No horizontal scroll of the page, every table in a wrapper inside the page; with ``tables_fit``, every table
    as wide as its wrapper at most (none wider than the page)."""
    assert m["scroll_width"] <= m["page_width"], f"the page scrolls sideways: {m['scroll_width']} > {m['page_width']}"
    for t in m["tables"]:
        assert t["wrapped"] and t["sortable"], t["headers"]
        assert t["wrap_right"] <= m["page_width"] + 0.5, t["headers"]
        if tables_fit:
            assert t["width"] <= t["wrap_width"] + 0.5, f"a table wider than the page: {t['headers']}"


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="needs chromium (apt-get install chromium)")


@needs_chromium
def test_a_wide_table_scrolls_inside_its_wrapper_not_the_page(tmp_path: Path) -> None:
    page = tmp_path / "toy.html"
    page.write_text(render_html(_toy(), title="Run", prov={"git_rev": "abc"}, root=tmp_path))
    m = layout(page, tmp_path, 700)
    assert_fits(m, tables_fit=False)
    wide = m["tables"][1]
    assert wide["width"] > wide["wrap_width"]  # it is wider than the page: its wrapper scrolls
    assert m["summary"]["top"] < m["contents"]["top"] < 700 and m["summary_items"] == 3
    assert all(link["target"] for link in m["toc_links"]) and len(m["toc_links"]) == 6
    s = m["sort"]
    assert s["asc"] == sorted(s["asc"]) and s["desc"] == sorted(s["desc"], reverse=True)
    assert (s["asc_attr"], s["desc_attr"]) == ("ascending", "descending")
    # the check can fail: without the wrapper's rule the wide table widens the page
    bare = tmp_path / "bare.html"
    bare.write_text(page.read_text().replace("overflow-x:auto", "overflow-x:visible"))
    assert layout(bare, tmp_path, 700)["scroll_width"] > 700


def test_findings_are_written_from_the_results_numbers(tmp_path: Path) -> None:
    from narch.pipeline.corpus_stage import CorpusResult, spread
    from narch.pipeline.search_stage import verified_finding

    rows = pl.DataFrame({"arch_id": ["a", "b", "c"], "status": ["ok", "ok", "diverged"], "val_acc": [0.25, 0.5, None],
                         "train_time_s": [1.0, 2.0, None], "params": [1000, 20000, 5]})
    res = CorpusResult(tmp_path, 3, {"ok": 2, "diverged": 1}, 3, ["digits"], ["cpu"], spread(rows), 3, None, [], rows)
    assert res.finding() == ("**Corpus**: 3 networks (3 training runs, 2 finished) on digits; validation accuracy "
                             "25.0 % to 50.0 % (median 37.5 %), training time 1 to 2 s, 1,000 to 20,000 parameters.")
    old = res.spread.drop("min", "max")  # a marker written before min and max were kept
    assert "validation accuracy (p10 to p90)" in CorpusResult(*[getattr(res, f) for f in (
        "corpus", "n_rows", "statuses", "networks", "tasks", "devices")], old, 3, None, [], rows).finding()
    verify = pl.DataFrame({"strategy": ["a2c", "random"], "arch_id": ["x1", "x2"], "status": ["ok", "ok"],
                           "reward_pred": [0.9, 0.8], "val_acc_pred": [0.8, 0.7], "val_acc": [0.75, 0.72],
                           "train_time_s_pred": [2.0, 1.0], "train_time_s": [2.5, 1.0], "acc_error": [-0.05, 0.02]})
    assert verified_finding(verify) == (
        "**Best searched network** `x1` (a2c): measured validation accuracy 75.0 %, predicted 80.0 %; training time "
        "measured 2.5 s, predicted 2 s; over the 2 verified networks the accuracy prediction is off by 3.5 points on "
        "average.")
    failed = verify.with_columns(pl.lit("diverged").alias("status"), pl.lit(None, pl.Float64).alias("val_acc"))
    assert "its verification run ended diverged" in verified_finding(failed)
