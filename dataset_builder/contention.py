"""How much of the machine other work took while a run was timed, and a guard that waits for a quiet machine.

A timing is only as good as the machine was quiet: the 1-minute load average is smoothed over a minute and counts
waiting processes, so it cannot say what happened during a 2-second run. Instead, the host's busy CPU time
(``/proc/stat`` through psutil: user, nice, system, irq, softirq and steal, i.e. time the hypervisor gave to other
guests) is read before and after, this process's own CPU time is subtracted, and the rest divided by the wall time is
the number of cores other work kept busy (``other_cpu_cores``). Jiffy resolution (10 ms) is plenty for runs of
seconds.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

QUIET_OTHER_CORES = 0.25  # other work below a quarter of a core: the run is timed on a quiet machine
SAMPLE_S = 1.0  # how long the guard looks at the machine before it decides


@dataclass(frozen=True, slots=True)
class CpuClock:
    """One reading: wall clock, the host's busy CPU seconds (all cores) and this process's CPU seconds."""

    wall_s: float
    host_busy_s: float
    own_s: float

    @staticmethod
    def now() -> CpuClock:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + sum(getattr(t, k, 0.0) for k in ("irq", "softirq", "steal"))
        return CpuClock(time.perf_counter(), busy, time.process_time())

    def other_cores_since(self, start: CpuClock) -> float:
        """Mean cores busy with other work between ``start`` and this reading (0 when no time passed)."""
        wall = self.wall_s - start.wall_s
        if wall <= 0:
            return 0.0
        other = (self.host_busy_s - start.host_busy_s) - (self.own_s - start.own_s)
        return max(0.0, other / wall)


def other_cores_now(sample_s: float = SAMPLE_S) -> float:
    """Cores busy with other work over the next ``sample_s`` seconds (this process sleeps meanwhile)."""
    start = CpuClock.now()
    time.sleep(sample_s)
    return CpuClock.now().other_cores_since(start)


def wait_for_quiet(*, threshold_cores: float = QUIET_OTHER_CORES, max_wait_s: float = 3600.0,
                   log: Callable[[str], None] | None = None) -> float:
    """Sample until other work uses less than ``threshold_cores``; returns the last reading (may exceed the threshold
    when ``max_wait_s`` ran out, which the caller reports)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    seen = other_cores_now()
    while seen >= threshold_cores and time.perf_counter() - t0 < max_wait_s:
        log(f"waiting for a quiet machine: other work uses {seen:.2f} cores (threshold {threshold_cores:g}), "
            f"load {os.getloadavg()[0]:.2f}, waited {time.perf_counter() - t0:.0f} s")
        time.sleep(5.0)
        seen = other_cores_now()
    return seen


class TimingGuard:
    """Watches a build's timings: looks at the machine before the first run and reads each run's own contention
    figure after it (free: the run measured it); warns when other work competed, or, with ``wait``, holds the next
    run until the machine is quiet. Counts the runs timed under contention for the build's summary."""

    def __init__(self, *, wait: bool, threshold_cores: float = QUIET_OTHER_CORES,
                 log: Callable[[str], None] | None = None) -> None:
        self.wait = wait
        self.threshold = threshold_cores
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.contended = 0
        self.retimed = 0

    def _settle(self, seen: float, when: str) -> None:
        if seen < self.threshold:
            return
        if self.wait:
            seen = wait_for_quiet(threshold_cores=self.threshold, log=self.log)
            if seen >= self.threshold:
                self.log(f"warning: the machine did not become quiet ({seen:.2f} cores of other work); timing anyway")
        else:
            self.log(f"warning: other work uses {seen:.2f} cores {when}; training times will carry it "
                     f"(other_cpu_cores); wait for a quiet machine to time cleanly")

    def before_first(self) -> None:
        """Look at the machine for a second before anything is timed."""
        self._settle(other_cores_now(), "before timing")

    def retime(self, row: dict[str, object]) -> bool:
        """Whether to train the run again: with ``wait``, a run other work competed with is timed again once the
        machine is quiet (its row is not written yet)."""
        seen = row.get("other_cpu_cores")
        if not (self.wait and isinstance(seen, float) and seen >= self.threshold):
            return False
        self.retimed += 1
        self.log(f"the run of {row.get('arch_id')} saw {seen:.2f} cores of other work: timing it again when quiet")
        self._settle(other_cores_now(), "")
        return True

    def after(self, row: dict[str, object]) -> None:
        """Read the run's contention; warn or wait before the next run."""
        seen = row.get("other_cpu_cores")
        if isinstance(seen, float) and seen >= self.threshold:
            self.contended += 1
            self._settle(other_cores_now(), f"(the last run saw {seen:.2f})")
