"""Pareto fronts and exact hypervolume over (accuracy up, size down, time down)."""

from __future__ import annotations

import numpy as np


def to_min(acc: np.ndarray, size: np.ndarray, time: np.ndarray, *, size_ref: float, time_ref: float) -> np.ndarray:
    """Objectives as minimisation in [0, 1]-ish units: 1 - accuracy, size / size_ref, time / time_ref."""
    return np.column_stack([1.0 - np.asarray(acc), np.asarray(size) / size_ref, np.asarray(time) / time_ref])


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """True for non-dominated rows of a minimisation problem (duplicates: the first one is kept)."""
    n = len(points)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(points.T[::-1])
    pts = points[order]
    for a in range(n):
        if not keep[order[a]]:
            continue
        p = pts[a]
        dominated = np.all(pts[a + 1:] >= p, axis=1)
        keep[order[a + 1:][dominated]] = False
    return keep


def _hv2d(points: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by 2-D points (minimisation) up to ``ref``."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    area, best_y = 0.0, ref[1]
    for i in range(len(pts)):
        best_y = min(best_y, pts[i, 1])
        x_next = pts[i + 1, 0] if i + 1 < len(pts) else ref[0]
        area += (x_next - pts[i, 0]) * (ref[1] - best_y)
    return float(area)


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact 3-D hypervolume (minimisation) by slicing along the first objective."""
    pts = points[np.all(points < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask(pts)]
    pts = pts[np.argsort(pts[:, 0])]
    vol = 0.0
    for i in range(len(pts)):
        x_next = pts[i + 1, 0] if i + 1 < len(pts) else ref[0]
        if x_next > pts[i, 0]:
            vol += (x_next - pts[i, 0]) * _hv2d(pts[: i + 1, 1:], ref[1:])
    return float(vol)
