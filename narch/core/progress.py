"""Progress of long work: a rich bar in a terminal, plain lines at a steady pace everywhere else.

Without a terminal (job arrays, CI, ``nohup``, a pipe) a redrawn bar shows nothing until the end and then one
truncated line, so ``track`` prints whole lines instead: the first state, one line every ``every`` completed items
or every ``interval_s`` seconds (a timer prints even while no item finishes), whichever comes first, and the last
state. Rate and ETA come from ``Pace``: the mean time per item finished by this run (items already done when it
resumed do not count), so one item longer than rich's 30 s speed window still gives an ETA, and the ETA counts down
between completions instead of freezing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

Clock = Callable[[], float]
INTERVAL_S = 30.0  # the longest a log goes without a progress line
LINES = 20  # without a terminal, about this many lines from item counts alone (one every 5 %)


def clock_text(seconds: float | None) -> str:
    """H:MM:SS, or ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = round(max(0.0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def rate_text(per_s: float, unit: str) -> str:
    """A rate in the largest time unit that keeps it readable (``12 nets/h``, ``3.5 cells/min``, ``40 cells/s``)."""
    value, suffix = next(((per_s * k, name) for k, name in ((3600, "h"), (60, "min")) if per_s * k < 100),
                         (per_s, "s"))
    return f"{value:.{1 if value < 10 else 0}f} {unit}/{suffix}"


@dataclass
class Pace:
    """Rate and ETA from the mean time per item this run finished."""

    total: int
    clock: Clock = time.monotonic
    t0: float = field(init=False)
    finished: int = 0  # items finished by this run (not those found done when it resumed)
    t_last: float = field(init=False)  # when the latest of them finished

    def __post_init__(self) -> None:
        self.t0 = self.t_last = self.clock()

    def finish(self, finished: int) -> None:
        """Record that this run has finished ``finished`` items so far."""
        if finished != self.finished:
            self.finished, self.t_last = finished, self.clock()

    def elapsed_s(self) -> float:
        return self.clock() - self.t0

    def rate_per_s(self) -> float:
        elapsed = self.elapsed_s()
        return self.finished / elapsed if elapsed > 0 else 0.0

    def eta_s(self, remaining: int) -> float | None:
        """Seconds left for ``remaining`` items: the mean time per finished item times the items left, less the
        time since the last one finished (never below 0); None before any item finished."""
        if remaining <= 0:
            return 0.0
        if self.finished == 0:
            return None
        mean_s = (self.t_last - self.t0) / self.finished
        return max(0.0, mean_s * remaining - (self.clock() - self.t_last))


@dataclass
class Tracker:
    """The state one ``track`` shows: completed of total, failures, the latest item's note."""

    label: str
    total: int
    unit: str = "items"
    count_failures: bool = False
    clock: Clock = time.monotonic
    completed: int = 0  # items done in all, those found done when the run resumed included
    failed: int = 0
    note: str = ""
    pace: Pace = field(init=False)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pace = Pace(self.total, clock=self.clock)

    def update(self, *, completed: int, finished: int | None = None, failed: int | None = None,
               note: str | None = None) -> None:
        """Set the counts: ``completed`` in all, ``finished`` by this run (default: every completed item)."""
        self.completed = completed
        self.pace.finish(completed if finished is None else finished)
        self.failed = self.failed if failed is None else failed
        self.note = self.note if note is None else note
        for listener in self.listeners:
            listener()

    def advance(self, k: int = 1, *, note: str | None = None) -> None:
        """``k`` more items finished by this run."""
        self.update(completed=self.completed + k, finished=self.pace.finished + k, note=note)

    def rate(self) -> str:
        return rate_text(self.pace.rate_per_s(), self.unit)

    def eta(self) -> str:
        return clock_text(self.pace.eta_s(self.total - self.completed))

    def line(self) -> str:
        """One plain line: ``label: done/total (pct), rate, elapsed, ETA[, failed][; note]``."""
        pct = f" ({100 * self.completed / self.total:.0f} %)" if self.total else ""
        text = (f"{self.label}: {self.completed}/{self.total}{pct}, {self.rate()}, elapsed "
                f"{clock_text(self.pace.elapsed_s())}, ETA {self.eta()}")
        text += f", {self.failed} failed" if self.count_failures else ""
        return text + (f"; {self.note}" if self.note else "")


class _Column(ProgressColumn):
    """A column drawn from the tracker at every refresh (so the ETA moves between completions)."""

    def __init__(self, render: Callable[[], str], style: str = "") -> None:
        super().__init__()
        self._render, self._style = render, style

    def render(self, task: Task) -> Text:
        return Text(self._render(), style=self._style)


@contextmanager
def _bar(console: Console, tracker: Tracker) -> Iterator[None]:
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     _Column(tracker.rate), TimeElapsedColumn(),
                                     _Column(lambda: f"ETA {tracker.eta()}")]
    if tracker.count_failures:
        columns.append(_Column(lambda: f"{tracker.failed} failed", "red"))
    columns.append(_Column(lambda: tracker.note))
    with Progress(*columns, console=console, transient=False) as progress:
        tid = progress.add_task(tracker.label, total=tracker.total)
        tracker.listeners.append(lambda: progress.update(tid, completed=tracker.completed))
        yield


class _Lines:
    """Plain progress lines: on the first update, every ``every`` items, every ``interval_s`` seconds, and the last
    state at the end."""

    def __init__(self, console: Console, tracker: Tracker, *, every: int, interval_s: float) -> None:
        self.console, self.tracker, self.every, self.interval_s = console, tracker, every, interval_s
        self.lock = threading.Lock()
        self.printed_at: float | None = None  # clock time of the latest line
        self.printed_completed = 0

    def emit(self) -> None:
        with self.lock:
            self.printed_at, self.printed_completed = self.tracker.clock(), self.tracker.completed
            self.console.print(self.tracker.line(), markup=False, highlight=False, soft_wrap=True)

    def on_update(self) -> None:
        if self.printed_at is None or self.tracker.completed - self.printed_completed >= self.every:
            self.emit()

    def tick(self) -> None:
        """The timer's check: a line when the latest is ``interval_s`` old."""
        if self.printed_at is not None and self.tracker.clock() - self.printed_at >= self.interval_s:
            self.emit()


@contextmanager
def _lines(console: Console, tracker: Tracker, *, every: int | None, interval_s: float) -> Iterator[None]:
    lines = _Lines(console, tracker, every=every or max(1, tracker.total // LINES), interval_s=interval_s)
    tracker.listeners.append(lines.on_update)
    stop = threading.Event()

    def timer() -> None:
        while not stop.wait(min(interval_s, 1.0)):
            lines.tick()

    thread = threading.Thread(target=timer, name=f"progress {tracker.label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if lines.printed_at is None or lines.printed_completed != tracker.completed:
            lines.emit()  # the last state, unless the latest line shows it already


@contextmanager
def track(console: Console, label: str, total: int, *, unit: str = "items", count_failures: bool = False,
          terminal: bool | None = None, every: int | None = None, interval_s: float = INTERVAL_S,
          clock: Clock = time.monotonic) -> Iterator[Tracker]:
    """Show the progress of ``total`` items on ``console``: a rich bar when it is a terminal (or ``terminal``),
    else plain lines (``every`` items, default about 5 % of them, or ``interval_s`` seconds, whichever first)."""
    tracker = Tracker(label, total, unit=unit, count_failures=count_failures, clock=clock)
    if console.is_terminal if terminal is None else terminal:
        with _bar(console, tracker):
            yield tracker
    else:
        with _lines(console, tracker, every=every, interval_s=interval_s):
            yield tracker
