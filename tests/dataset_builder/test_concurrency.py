"""Several trainings at once in local processes: the same networks and statuses, the concurrency in every row."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataset_builder.corpus import read_corpus
from narch.cli import app
from tests.conftest import build_tiny


@pytest.mark.slow
def test_two_processes_build_what_one_builds(tmp_path: Path) -> None:
    one = read_corpus(build_tiny(tmp_path / "one", archs=4, n_train=256))
    two = read_corpus(build_tiny(tmp_path / "two", archs=4, n_train=256, concurrency=2))
    assert two.height == 4 and two["arch_id"].n_unique() == 4
    assert dict(two.select("arch_id", "status").iter_rows()) == dict(one.select("arch_id", "status").iter_rows())
    assert set(one["concurrency"]) == {1} and set(two["concurrency"]) == {2}
    assert set(two["threads"]) == {1}


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--shard", "4/4"], "shard 4/4"),
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--backend", "spark"], "--backend 'spark'"),
        (["--address", "10.0.0.1:6379"], "need --backend ray"),
    ],
)
def test_bad_scale_options_are_one_line_errors(tmp_path: Path, args: list[str], expect: str) -> None:
    out = tmp_path / "c"
    res = CliRunner().invoke(app, ["build", "--archs", "2", "--out", str(out), "--quiet", *args])
    msg = res.output.strip()
    assert res.exit_code == 2 and msg.startswith("narch: error:") and len(msg.splitlines()) == 1, msg
    assert expect in msg
    assert not out.exists(), "nothing is written before the options are checked"
