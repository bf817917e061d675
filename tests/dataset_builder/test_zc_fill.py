"""`narch zc` on a corpus built before the zero-cost columns existed: fills only them, resumes after an
interruption, changes no measured value, and leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder import zc_fill
from narch.dataset_builder.corpus import part_files, read_corpus
from narch.dataset_builder.schema import ZC_COLUMNS


def _old_corpus(src: Path, dst: Path) -> Path:
    """A copy of the tiny corpus whose parts end before the zc_* columns (as parts written before they existed,
    when no later column existed either)."""
    shutil.copytree(src, dst)
    for p in part_files(dst):
        t = pq.read_table(p)
        pq.write_table(t.select(t.column_names[:t.column_names.index(ZC_COLUMNS[0])]), p)
    return dst


def test_zc_fills_old_rows_resumably_and_changes_nothing_else(
        tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _old_corpus(tiny_corpus, tmp_path / "old")
    before = read_corpus(d)
    assert before[ZC_COLUMNS[0]].null_count() == before.height
    real, calls = zc_fill.zero_cost_scores, []

    def flaky(*a: object, **kw: object) -> dict[str, float | None]:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(zc_fill, "CHUNK", 1)
    monkeypatch.setattr(zc_fill, "zero_cost_scores", flaky)
    with pytest.raises(KeyboardInterrupt):
        zc_fill.fill_zero_cost(d)
    assert len(list((d / zc_fill.SIDE).glob("part-*.parquet"))) == 2, "two networks' scores were saved"
    assert read_corpus(d)[ZC_COLUMNS[0]].null_count() == before.height, "rows untouched until all are scored"
    monkeypatch.setattr(zc_fill, "zero_cost_scores", real)
    s = zc_fill.fill_zero_cost(d)
    assert (s.needed, s.reused, s.computed, s.filled) == (before.height, 2, before.height - 2, before.height)
    after = read_corpus(d)
    assert not (d / zc_fill.SIDE).exists() and len(part_files(d)) == 1
    keys = ["arch_id", "seed", "n_train"]
    measured = [c for c in before.columns if c not in ZC_COLUMNS]
    assert after.select(measured).sort(keys).equals(before.select(measured).sort(keys)), "no measured value changed"
    ref = read_corpus(tiny_corpus).select(*keys, *ZC_COLUMNS).sort(keys)
    assert after.select(*keys, *ZC_COLUMNS).sort(keys).equals(ref), "the same scores a build writes"


def test_cli_zc_is_a_no_op_on_a_scored_corpus_and_refuses_imported_benchmarks(tiny_corpus: Path,
                                                                               tmp_path: Path) -> None:
    d = tmp_path / "c"
    shutil.copytree(tiny_corpus, d)
    runner = CliRunner()
    res = runner.invoke(app, ["zc", "--corpus", str(d)])
    assert res.exit_code == 0, res.output
    assert "0 rows lacked zero-cost scores" in res.output
    nb = Path(__file__).parents[2] / "results" / "corpus" / "ecnas_4v_titanxp"
    bad = runner.invoke(app, ["zc", "--corpus", str(nb)])
    assert bad.exit_code != 0 and "has no local data" in bad.output and len(bad.output.strip().splitlines()) == 1
