"""Several trainings at once in local processes: the same networks and statuses, the concurrency in every row."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import part_files, read_corpus
from narch.dataset_builder.runners import local_pool
from tests.conftest import build_tiny


@pytest.mark.slow
def test_two_processes_build_what_one_builds(tmp_path: Path) -> None:
    one = read_corpus(build_tiny(tmp_path / "one", archs=4, n_train=256))
    two = read_corpus(build_tiny(tmp_path / "two", archs=4, n_train=256, concurrency=2))
    assert two.height == 4 and two["arch_id"].n_unique() == 4
    assert dict(two.select("arch_id", "status").iter_rows()) == dict(one.select("arch_id", "status").iter_rows())
    assert set(one["concurrency"]) == {1} and set(two["concurrency"]) == {2}
    assert set(two["threads"]) == {1}


@pytest.mark.parametrize(("concurrency", "threads"), [(1, 16), (4, 4), (8, 2), (32, 1)])
def test_pool_processes_split_the_cores_between_them(monkeypatch: pytest.MonkeyPatch, concurrency: int,
                                                     threads: int) -> None:
    """On a 16-core GPU host, N trainings sharing one GPU take 16 // N torch threads each (at least one), so their
    CPU-side work never oversubscribes the cores the scripts/gpu_check levels run on."""
    monkeypatch.setattr(local_pool.os, "sched_getaffinity", lambda _pid: set(range(16)))
    assert local_pool.default_threads(concurrency) == threads


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--shard", "4/4"], "shard 4/4"),
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--backend", "spark"], "--backend 'spark'"),
        (["--address", "10.0.0.1:6379"], "need --backend ray"),
        pytest.param(
            ["--backend", "ray", "--concurrency", "2"],
            "shares a GPU",
            marks=pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed"),
        ),
    ],
)
def test_bad_scale_options_are_one_line_errors(tmp_path: Path, args: list[str], expect: str) -> None:
    out = tmp_path / "c"
    res = CliRunner().invoke(app, ["build", "--archs", "2", "--out", str(out), "--quiet", *args])
    msg = res.output.strip()
    assert res.exit_code == 2 and msg.startswith("narch: error:") and len(msg.splitlines()) == 1, msg
    assert expect in msg
    assert not out.exists(), "nothing is written before the options are checked"


@pytest.mark.slow
def test_ctrl_c_lets_only_the_runs_in_flight_finish(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["build", "--archs", "10", "--epochs", "3", "--n-train", "2048", "--threads", "1", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "narch.cli", *args, "--concurrency", "2", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and len(part_files(out) if out.exists() else []) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be interrupted; give it more work"
    seen = len(part_files(out))
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
    parts = len(part_files(out))
    assert parts <= seen + 3, "beyond the two runs in flight (and one racing the signal), nothing more ran"
    assert f"{parts} trained" in stdout and read_corpus(out).height == parts
