"""A build killed with SIGKILL part-way, then rerun, ends with exactly the planned rows (a real subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from narch.dataset_builder.corpus import check_part, part_files, read_corpus

ARGS = [
    "build",
    "--task",
    "mnist1d",
    "--archs",
    "10",
    "--epochs",
    "2",
    "--n-train",
    "1024",
    "--seed",
    "3",
    "--threads",
    "1",
    "--quiet",
]


def _narch(out: Path) -> list[str]:
    return [sys.executable, "-m", "narch.cli", *ARGS, "--out", str(out)]


def test_sigkill_then_rerun_gives_exactly_the_planned_rows(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    proc = subprocess.Popen(_narch(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(part_files(out) if out.exists() else []) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed; give it more work"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = len(part_files(out))
    assert 3 <= survived < 10
    for p in part_files(out):
        check_part(p)  # every part on disk is complete
    done = subprocess.run(_narch(out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    df = read_corpus(out)
    assert df.height == 10 and df["arch_id"].n_unique() == 10
    assert f"{10 - survived} trained" in done.stdout


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    proc = subprocess.Popen(_narch(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(part_files(out) if out.exists() else []) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    for p in part_files(out):
        check_part(p)


TINY = ["build", "--task", "mnist1d", "--archs", "6", "--epochs", "1", "--n-train", "256", "--seed", "5",
        "--threads", "1", "--quiet"]


def test_sigterm_stops_like_ctrl_c_and_a_rerun_finishes(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    cmd = [sys.executable, "-m", "narch.cli", *TINY, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and part_files(out)):
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be stopped; give it more work"
    proc.send_signal(signal.SIGTERM)  # what a scheduler sends
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: finished runs are saved; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    survived = len(part_files(out))
    assert 1 <= survived < 6
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    df = read_corpus(out)
    assert df.height == 6 and df["arch_id"].n_unique() == 6
    assert f"{6 - survived} trained" in done.stdout


def test_sigterm_to_a_pool_build_s_process_group_stops_like_ctrl_c(tmp_path: Path) -> None:
    """A scheduler signals the whole group: the pool's workers must not die mid-run, losing the runs in flight;
    they finish them and write their parts, as on Ctrl-C."""
    out = tmp_path / "pool"
    cmd = [*_narch(out), "--concurrency", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and part_files(out)):
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be stopped; give it more work"
    before = len(part_files(out))
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr and "died" not in stderr
    assert len(part_files(out)) >= before + 1, "the runs in flight were finished and written, not killed"
    for p in part_files(out):
        check_part(p)  # every part written is whole
