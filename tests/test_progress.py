"""narch.core.progress: the mean-time ETA that counts down, plain lines at a steady pace without a terminal, the rich
bar in one, and a real build's lines."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from narch.core.progress import Pace, clock_text, rate_text, track
from narch.dataset_builder.build import BuildConfig, prepare_build
from narch.dataset_builder.progress import run_with_progress
from narch.dataset_builder.protocol import Protocol
from narch.search_space import SEEDS, write_jsonl


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _plain() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=40, force_terminal=False), buf


def test_eta_comes_from_the_mean_time_per_finished_item_and_counts_down() -> None:
    clock = FakeClock()
    pace = Pace(10, clock=clock)
    assert pace.eta_s(10) is None  # nothing finished yet: unknown, not a guess
    clock.now = 40.0  # one item that took longer than rich's 30 s speed window
    pace.finish(1)
    assert pace.eta_s(9) == pytest.approx(360.0)
    clock.now = 100.0  # no completion since: the ETA keeps moving instead of freezing
    assert pace.eta_s(9) == pytest.approx(300.0)
    clock.now = 1000.0
    assert pace.eta_s(9) == 0.0 and pace.eta_s(0) == 0.0
    assert pace.rate_per_s() == pytest.approx(1 / 1000)


def test_items_found_done_on_resume_do_not_speed_the_eta_up() -> None:
    clock = FakeClock()
    with track(_plain()[0], "build", 100, clock=clock) as t:
        t.update(completed=90, finished=0)  # resumed: 90 were there already
        clock.now = 60.0
        t.update(completed=91, finished=1)
        assert t.pace.eta_s(t.total - t.completed) == pytest.approx(9 * 60.0)
        assert t.eta() == "0:09:00"


def test_text_helpers() -> None:
    assert clock_text(None) == "?" and clock_text(3725.4) == "1:02:05" and clock_text(-3) == "0:00:00"
    assert rate_text(12 / 3600, "nets") == "12 nets/h"
    assert rate_text(3.5 / 60, "cells") == "3.5 cells/min"
    assert rate_text(40.0, "cells") == "40 cells/s"


def test_without_a_terminal_lines_come_every_n_items_whole_and_a_last_one() -> None:
    console, buf = _plain()
    clock = FakeClock()
    note = "a long note that a 40-column console would truncate in a redrawn bar"
    with track(console, "build mnist1d", 100, unit="nets", count_failures=True, clock=clock) as t:
        for k in range(1, 13):
            clock.now += 1.0
            t.update(completed=k, failed=k // 4, note=note)
    lines = buf.getvalue().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["build mnist1d"] * len(lines)
    assert [ln.split(": ", 1)[1].split(" ")[0] for ln in lines] == ["1/100", "6/100", "11/100", "12/100"]
    assert lines[-1] == f"build mnist1d: 12/100 (12 %), 60 nets/min, elapsed 0:00:12, ETA 0:01:28, 3 failed; {note}"


def test_without_a_terminal_the_timer_prints_while_nothing_finishes() -> None:
    console, buf = _plain()
    with track(console, "slow", 3, interval_s=0.01) as t:
        t.update(completed=0)
        deadline = time.monotonic() + 10
        while buf.getvalue().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = buf.getvalue().splitlines()
    assert len(lines) >= 3 and all(ln.startswith("slow: 0/3 (0 %)") for ln in lines)


def test_in_a_terminal_a_rich_bar_with_the_eta() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=160, force_terminal=True)
    clock = FakeClock()
    with track(console, "leaderboard", 4, unit="cells", clock=clock) as t:
        clock.now = 10.0
        t.advance(1, note="val_acc ridge n=16 seed 0")
        t.advance(1)
    out = buf.getvalue()
    assert "leaderboard" in out and "2/4" in out and "ETA 0:00:10" in out and "seed 0" in out
    assert "\x1b[" in out  # drawn as a bar, not as lines


def test_a_build_without_a_terminal_prints_plain_lines(tmp_path: Path) -> None:
    nets = tmp_path / "nets.jsonl"
    write_jsonl([SEEDS["tiny"], SEEDS["lenet"]], nets)
    cfg = BuildConfig(task="mnist1d", out=tmp_path / "c", archs_from=nets, protocol=Protocol(epochs=1), n_train=128,
                      threads=1)
    console, buf = _plain()
    summary = run_with_progress(prepare_build(cfg), console=console)
    lines = buf.getvalue().splitlines()
    assert summary.done == 2
    assert lines[0].startswith("build mnist1d: 0/2 (0 %)")
    assert lines[-1].startswith("build mnist1d: 2/2 (100 %)") and "ETA 0:00:00, 0 failed; " in lines[-1]
    assert SEEDS["lenet"].arch_id in buf.getvalue() or SEEDS["tiny"].arch_id in buf.getvalue()


def test_narch_build_in_a_pipe_logs_whole_lines(tmp_path: Path) -> None:
    """What a job array's log gets: stderr is a pipe, so plain lines, no bar redraws or colour codes."""
    nets = tmp_path / "nets.jsonl"
    write_jsonl([SEEDS["tiny"], SEEDS["lenet"]], nets)
    cmd = [sys.executable, "-m", "narch.cli", "build", "--task", "mnist1d", "--archs-from", str(nets), "--epochs",
           "1", "--n-train", "128", "--threads", "1", "--out", str(tmp_path / "c")]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("build mnist1d: ")]  # (and maybe a contention note)
    assert [ln.split(": ", 1)[1].split(" ")[0] for ln in lines] == ["0/2", "1/2", "2/2"], r.stderr
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
