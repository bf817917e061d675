"""Plot helpers shared by every report: log axes whose tick labels do not overlap, and uncertainty bands that stay in
a metric's range (an exact bootstrap of the mean for few seeds, a t-interval for more; clipped to the bounds).

matplotlib is imported inside the functions that need it, so the numeric helpers work without it."""

from __future__ import annotations

import functools
import itertools
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axis import Axis

FEW_SEEDS = 5  # below this many values, the interval of the mean is the exact bootstrap, not a t-interval
ACCURACY = (0.0, 1.0)  # bounds of accuracies and other fractions
KENDALL_TAU = (-1.0, 1.0)  # bounds of rank correlations

Bounds = tuple[float | None, float | None]


def interval_method(n: int) -> str:
    """How ``mean_interval`` bounds the mean of ``n`` values: "none", "bootstrap" or "t"."""
    return "none" if n < 2 else "bootstrap" if n < FEW_SEEDS else "t"


@functools.cache
def _resamples(n: int) -> np.ndarray:
    """Every one of the n**n resamples with replacement of n indices, as rows."""
    return np.array(list(itertools.product(range(n), repeat=n)))


def _exact_bootstrap_means(x: np.ndarray) -> np.ndarray:
    """The mean of every resample of ``x`` (n < FEW_SEEDS: at most 256 of them), each equally likely."""
    return x[_resamples(len(x))].mean(axis=1)


def clip(lo: Any, hi: Any, bounds: Bounds | None) -> tuple[Any, Any]:
    """``lo`` and ``hi`` (numbers or arrays) clipped to ``bounds`` (None on a side: unbounded there)."""
    if bounds is None:
        return lo, hi
    a, b = bounds
    return (np.clip(lo, a, b), np.clip(hi, a, b)) if a is not None or b is not None else (lo, hi)


def mean_interval(values: Any, *, level: float = 0.95, bounds: Bounds | None = None) -> tuple[float, float]:
    """A ``level`` interval of the mean of ``values`` (NaNs dropped), inside ``bounds``.

    Two to four values: the exact bootstrap percentile interval (every resample enumerated, so no random seed),
    which never leaves [min, max] of the values; five or more: the t-interval. Fewer than two: (nan, nan), there is
    no spread to show."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    method = interval_method(len(x))
    if method == "none":
        return math.nan, math.nan
    tail = (1 - level) / 2
    if method == "bootstrap":
        lo, hi = np.quantile(_exact_bootstrap_means(x), [tail, 1 - tail], method="inverted_cdf")
    else:
        from scipy import stats

        half = stats.t.ppf(1 - tail, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
        lo, hi = x.mean() - half, x.mean() + half
    lo, hi = clip(float(lo), float(hi), bounds)
    return float(lo), float(hi)


def band(mean: Any, half: Any, bounds: Bounds | None) -> tuple[np.ndarray, np.ndarray]:
    """``mean ± half`` (a standard error, a CI half-width; NaN counts as 0) clipped to ``bounds``."""
    m = np.asarray(mean, dtype=np.float64)
    h = np.nan_to_num(np.abs(np.asarray(half, dtype=np.float64)))
    lo, hi = clip(m - h, m + h, bounds)
    return np.asarray(lo), np.asarray(hi)


def errorbar_yerr(mean: Any, half: Any, bounds: Bounds | None) -> np.ndarray:
    """matplotlib's asymmetric ``yerr`` (2 x n) for ``mean ± half`` clipped to ``bounds``."""
    m = np.asarray(mean, dtype=np.float64)
    lo, hi = band(m, half, bounds)
    return np.vstack([np.maximum(m - lo, 0.0), np.maximum(hi - m, 0.0)])


def compact_number(v: float) -> str:
    """A short tick label: 0.05, 20, 300, 5k, 1.5M, 2G; powers of ten beyond that as 10^n in mathtext."""
    if not math.isfinite(v) or v <= 0:
        return ""
    e = math.floor(math.log10(v) + 1e-9)
    if -3 <= e < 3:
        return f"{v:.3g}"
    for suffix, p in (("k", 3), ("M", 6), ("G", 9), ("T", 12)):
        if p <= e < p + 3:
            return f"{v / 10**p:.3g}{suffix}"
    m = v / 10**e
    return f"$10^{{{e}}}$" if math.isclose(m, 1.0, rel_tol=1e-6) else f"${m:.3g}\\times10^{{{e}}}$"


_SUBS = ((1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0, 7.0))


def _label_em(label: str) -> float:
    """Rough width of a tick label in font sizes (mathtext markup dropped, an exponent counted smaller)."""
    text = label.replace("\\times", "x")
    exp = "".join(re.findall(r"\^\{([^}]*)\}", text))
    plain = re.sub(r"\^\{[^}]*\}|[${}]", "", text)
    return 0.6 * len(plain) + 0.45 * len(exp)


def log_ticks(vmin: float, vmax: float, max_ticks: int, *, length_em: float = math.inf,
              horizontal: bool = True) -> list[float]:
    """Readable tick positions on a log axis from ``vmin`` to ``vmax``: at most ``max_ticks``, and (for an axis
    ``length_em`` font sizes long) no more than fit side by side with a gap (``horizontal``) or stacked.

    Decades (every k-th when there are many); within a decade or two, 1-3, 1-2-5 or 1-2-3-5-7 steps; under a
    factor of about two, evenly spaced ticks."""
    lo, hi = sorted((vmin, vmax))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0:
        return []
    lo = max(lo, hi * 1e-30)
    max_ticks = max(2, max_ticks)

    def fits(ts: list[float]) -> bool:
        need = sum(_label_em(compact_number(t)) + 1.0 for t in ts) if horizontal else 1.8 * len(ts)
        return len(ts) <= max_ticks and need <= length_em

    def inside(ts: list[float]) -> list[float]:
        return [t for t in ts if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]

    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = inside([10.0**d for d in range(d0, d1 + 1)])
    best: list[float] = decades[:1]
    for stride in range(1, len(decades) + 1):  # the most decades that fit
        ts = decades[::stride]
        if fits(ts):
            if len(ts) >= 3:
                return ts
            best = ts
            break
    for subs in _SUBS:  # finer steps within a decade or two, while they fit
        ts = inside([s * 10.0**d for d in range(d0 - 1, d1 + 1) for s in subs])
        if fits(ts) and len(ts) > len(best):
            best = ts
            if len(ts) >= 3:
                return ts
    if len(best) >= 2:
        return best
    from matplotlib.ticker import MaxNLocator  # under a factor of about two: evenly spaced ticks

    for nbins in range(max_ticks - 1, 0, -1):
        ts = [float(t) for t in MaxNLocator(nbins=nbins).tick_values(lo, hi) if lo <= t <= hi]
        if len(ts) >= 2 and fits(ts):
            return ts
    return best


def _locator(max_ticks: int) -> Any:
    from matplotlib.ticker import Locator

    class LegibleLogLocator(Locator):
        """Decides at draw time, from the axis's view limits and length, which ticks fit."""

        def __call__(self) -> list[float]:
            vmin, vmax = self.axis.get_view_interval()
            return self.tick_values(vmin, vmax)

        def tick_values(self, vmin: float, vmax: float) -> list[float]:
            if self.axis is None:
                return log_ticks(vmin, vmax, max_ticks)
            horizontal = self.axis.axis_name == "x"
            # get_tick_space: the axis length over 3 (x) or 2 (y) tick-label font sizes
            length_em = self.axis.get_tick_space() * (3 if horizontal else 2)
            return log_ticks(vmin, vmax, max_ticks, length_em=length_em, horizontal=horizontal)

    return LegibleLogLocator()


def legible_log(axis: Axis, *, max_ticks: int = 6) -> None:
    """Major ticks at decades (or 1-2-5 within a decade or two) with short labels, unlabelled minor ticks, on a log
    ``axis`` (``ax.xaxis``, ``ax.yaxis``, ``colorbar.ax.yaxis``): tick labels that do not run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(_locator(max_ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact_number(v)))
    axis.set_minor_locator(LogLocator(base=10.0, subs="auto"))
    axis.set_minor_formatter(NullFormatter())


def log_scale(ax: Any, *which: str, max_ticks: int = 6) -> None:
    """Put the named axes ("x", "y") of ``ax`` on a log scale with ``legible_log`` ticks."""
    for w in which or ("x",):
        getattr(ax, f"set_{w}scale")("log")
        legible_log(getattr(ax, f"{w}axis"), max_ticks=max_ticks)
