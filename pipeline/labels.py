"""Human column headers for the report's tables: "val_acc" reads "Val. accuracy", "train_time_s" "Train time (s)".

A header is a short name and, where it has one worth printing, a unit. The units of corpus columns come from the
corpus schema (``dataset_builder.schema.UNITS``, the one table of units and meanings); ``NAMES`` adds only the short
names, and ``UNITS`` the units of the report's own derived columns. Derived names are read by pattern
(``<column>_pred``, ``time_s_<device>``, ``reward_<device>``, ``minus_<baseline>``); anything else that is
snake_case is spelt out, and a header that is not snake_case (``τ``, ``±10 %``) is left as it is.
"""

from __future__ import annotations

import re

from narch.dataset_builder.schema import UNITS as SCHEMA_UNITS

# Short names. Corpus columns take their unit from the schema; the rest from UNITS below.
NAMES: dict[str, str] = {
    # corpus columns
    "arch_id": "Architecture",
    "task": "Task",
    "n_train": "Training examples",
    "epochs": "Epochs",
    "seed": "Seed",
    "val_acc": "Val. accuracy",
    "test_acc": "Test accuracy",
    "train_loss": "Train loss",
    "params": "Params",
    "model_size_bytes": "Model size",
    "flops_fwd": "FLOPs",
    "flops_train_step": "FLOPs per train step",
    "bytes_train_step": "Bytes per train step",
    "arithmetic_intensity": "Arithmetic intensity",
    "roofline_train_time_s": "Roofline train time",
    "peak_mem_bytes": "Peak memory",
    "train_time_s": "Train time",
    "train_time_robust_s": "Train time (robust)",
    "train_cpu_s": "Train CPU time",
    "latency_bs1_ms": "Latency, batch 1",
    "latency_bsN_ms": "Latency, batch N",
    "energy_j": "Energy",
    "device_name": "Device",
    "status": "Status",
    "wall_time_s": "Wall time",
    # the report's own columns
    "column": "Column",
    "p10": "p10",
    "median": "Median",
    "p90": "p90",
    "rows": "Rows",
    "n": "n",
    "median_abs_pct_error": "Median abs. error",
    "within_10pct": "Within ±10 %",
    "within_20pct": "Within ±20 %",
    "spearman": "Spearman ρ",
    "kendall_tau": "Kendall τ",
    "term": "Term",
    "coefficient": "Coefficient",
    "efficiency": "Efficiency",
    "predictor": "Predictor",
    "strategy": "Strategy",
    "final_best_mean": "Final best reward (mean)",
    "ci95": "95 % CI ±",
    "min": "Min",
    "max": "Max",
    "seeds": "Seeds",
    "welch_p": "Welch p",
    "queries_mean": "Queries (mean)",
    "env_steps_mean": "Env. steps (mean)",
    "wall_s_mean": "Wall time, mean",
    "env_steps_per_s": "Env. steps/s",
    "hypervolume_mean": "Hypervolume (mean)",
    "hypervolume_pooled": "Hypervolume (pooled)",
    "front_size": "Front size",
    "found_for": "Found for",
    "layers": "Layers",
    "pred_acc": "Predicted accuracy",
    "size_bytes": "Size",
    "reward": "Reward",
    "acc_error": "Accuracy error (measured − predicted)",
    "time_ratio": "Time ratio (predicted / measured)",
}

# Units of the report's own columns (the corpus columns' units are the schema's).
UNITS: dict[str, str] = {
    "median_abs_pct_error": "%",
    "wall_s_mean": "s",
    "size_bytes": "bytes",
}

# Units worth printing in a header; counts and fractions ("count", "fraction", "0..1", "epochs", ...) are not.
SHOWN_UNITS = frozenset({"s", "ms", "bytes", "J", "W", "MHz", "%", "nats", "FLOP/byte"})

_SNAKE = re.compile(r"[a-z0-9_]+")
_SUFFIX_UNITS = (("_ms", "ms"), ("_s", "s"), ("_bytes", "bytes"), ("_pct", "%"), ("_j", "J"), ("_w", "W"))


def unit(column: str) -> str:
    """The unit a header shows for ``column`` ("" for none)."""
    u = UNITS.get(column) or SCHEMA_UNITS.get(column, "")
    return u if u in SHOWN_UNITS else ""


def _with_unit(name: str, u: str) -> str:
    return f"{name} ({u})" if u else name


def _spelt_out(column: str) -> tuple[str, str]:
    """(name, unit) of a snake_case column no table names: words, the unit read off a suffix such as ``_s``."""
    u = ""
    for suffix, su in _SUFFIX_UNITS:
        if column.endswith(suffix) and len(column) > len(suffix):
            column, u = column[: -len(suffix)], su
            break
    words = column.replace("_", " ").strip()
    return (words[:1].upper() + words[1:] if words else column), u


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def name_and_unit(column: str) -> tuple[str, str]:
    """The short name and shown unit of a column (see the module docstring for the rules)."""
    if column in NAMES:
        return NAMES[column], unit(column)
    if column.endswith("_pred") and len(column) > 5:
        base, u = name_and_unit(column[:-5])
        return f"Predicted {_lower_first(base)}", u
    for prefix, kind, u in (("time_s_", "Time on", "s"), ("reward_", "Reward on", "")):
        if column.startswith(prefix) and len(column) > len(prefix):
            return f"{kind} {column[len(prefix):]}", u
    if column.startswith("minus_") and len(column) > 6:
        return f"Δ vs {column[6:]}", ""
    if not _SNAKE.fullmatch(column) or column.isdigit():
        return column, ""
    if column in SCHEMA_UNITS:
        name, _ = _spelt_out(column)
        return name, unit(column)
    return _spelt_out(column)


def header(column: str) -> str:
    """A human header for ``column``: its name, then its unit in parentheses when it has one worth printing."""
    return _with_unit(*name_and_unit(column))


def headers(columns: list[str]) -> list[str]:
    """Headers for a table's columns; where two would read the same, those keep their column names."""
    out = [header(c) for c in columns]
    dup = {h for h in out if out.count(h) > 1}
    return [c if h in dup else h for c, h in zip(columns, out, strict=True)]
