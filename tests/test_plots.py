"""narch.core.plots: uncertainty bands inside a metric's range, and log axes whose tick labels do not overlap."""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from narch.core.plots import (
    ACCURACY,
    KENDALL_TAU,
    band,
    compact_number,
    errorbar_yerr,
    interval_method,
    log_scale,
    log_ticks,
    mean_interval,
)


def test_few_seeds_get_the_exact_bootstrap_which_stays_within_the_values() -> None:
    lo, hi = mean_interval([0.2, 0.9])
    assert (lo, hi) == pytest.approx((0.2, 0.9))  # the t-interval of two values is mean ± 12.7 standard errors
    lo, hi = mean_interval([0.97, 0.99, 1.0])
    assert 0.97 <= lo <= hi <= 1.0
    assert interval_method(1) == "none" and math.isnan(mean_interval([0.5])[0])
    assert all(math.isnan(v) for v in mean_interval([0.5, float("nan")]))  # one finite value: no interval
    assert interval_method(4) == "bootstrap" and interval_method(5) == "t"


def test_many_seeds_get_a_t_interval_clipped_to_the_bounds() -> None:
    x = np.array([0.9, 1.0, 1.0, 0.8, 1.0, 1.0])
    from scipy import stats

    half = stats.t.ppf(0.975, 5) * x.std(ddof=1) / math.sqrt(6)
    lo, hi = mean_interval(x)
    assert (lo, hi) == pytest.approx((x.mean() - half, x.mean() + half))
    assert hi > 1.0  # unclipped it runs past an accuracy's range
    lo, hi = mean_interval(x, bounds=ACCURACY)
    assert lo == pytest.approx(x.mean() - half) and hi == 1.0


def test_bands_and_error_bars_respect_the_metrics_range() -> None:
    lo, hi = band([0.95, 0.5], [0.2, float("nan")], ACCURACY)
    assert lo.tolist() == pytest.approx([0.75, 0.5]) and hi.tolist() == pytest.approx([1.0, 0.5])
    lo, hi = band([-0.9, 0.95], [0.3, 0.3], KENDALL_TAU)
    assert lo.tolist() == pytest.approx([-1.0, 0.65]) and hi.tolist() == pytest.approx([-0.6, 1.0])
    yerr = errorbar_yerr([-0.9, 0.95], [0.3, 0.3], KENDALL_TAU)
    assert yerr == pytest.approx(np.array([[0.1, 0.3], [0.3, 0.05]]))
    assert band([2.0], [1.0], None)[0].tolist() == [1.0]  # no bounds: unclipped


def test_compact_tick_labels() -> None:
    assert [compact_number(v) for v in (0.05, 1, 20, 300, 5e3, 1.5e6, 2e9, 1e-5, 2e-5, 1e15)] == [
        "0.05", "1", "20", "300", "5k", "1.5M", "2G", "$10^{-5}$", "$2\\times10^{-5}$", "$10^{15}$"]


def test_log_ticks_pick_decades_or_steps_within_a_decade() -> None:
    assert log_ticks(1, 1e15, 6) == [1.0, 1e3, 1e6, 1e9, 1e12, 1e15]
    assert log_ticks(3e3, 2e4, 6) == [5e3, 1e4, 2e4]
    assert log_ticks(0.2, 0.9, 6) == pytest.approx([0.2, 0.3, 0.5, 0.7])
    ts = log_ticks(2.1e-5, 2.4e-5, 6)
    assert len(ts) >= 2 and all(2.1e-5 <= t <= 2.4e-5 for t in ts)
    assert len(log_ticks(2.1e-5, 2.4e-5, 6, length_em=15)) < len(ts)  # a shorter axis gets fewer ticks


def _labels(fig: plt.Figure, axis: matplotlib.axis.Axis) -> tuple[list[str], list[tuple[str, str]]]:
    """The visible tick labels of ``axis`` (major and minor) and the pairs of them that overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    lo, hi = sorted(axis.get_view_interval())
    shown = []
    for locs, labels in ((axis.get_majorticklocs(), axis.get_majorticklabels()),
                         (axis.get_minorticklocs(), axis.get_minorticklabels())):
        shown += [(t.get_text(), t.get_window_extent(renderer)) for loc, t in zip(locs, labels, strict=False)
                  if t.get_text() and lo <= loc <= hi]
    bad = [(a[0], b[0]) for a, b in itertools.combinations(shown, 2) if a[1].overlaps(b[1])]
    return [t for t, _ in shown], bad


RANGES = [(1, 1e15), (1e-6, 3e-5), (3e3, 2e4), (0.2, 0.9), (1e-4, 1e2), (11, 17), (2.1e-5, 2.4e-5), (0.05, 0.3)]


@pytest.mark.parametrize("width", [4.2, 7.0])
def test_log_axes_have_legible_labels_that_do_not_overlap(width: float) -> None:
    for lo, hi in RANGES:
        fig, ax = plt.subplots(figsize=(width, 4))
        ax.plot([lo, hi], [lo, hi])
        log_scale(ax, "x", "y")
        for axis in (ax.xaxis, ax.yaxis):
            labels, bad = _labels(fig, axis)
            assert len(labels) >= 2 and not bad, (lo, hi, labels, bad)
        plt.close(fig)


def test_the_overlap_check_catches_matplotlibs_default_labels() -> None:
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0.2, 0.9], [0.2, 0.9])
    ax.set_xscale("log")
    assert _labels(fig, ax.xaxis)[1], "the default labels the minor ticks of a narrow range, and they overlap"
    plt.close(fig)
