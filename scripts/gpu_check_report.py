#!/usr/bin/env python
"""Checks and throughput of a scripts/gpu_check folder: summary.json and SUMMARY.md; exit 1 if a check failed."""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.files import atomic_write_json, atomic_write_text
from narch.core.tables import markdown_table
from narch.dataset_builder.corpus import is_corpus, read_corpus

Check = dict[str, Any]


def check(name: str, passed: bool | None, detail: str) -> Check:
    """One check; passed None means skipped (e.g. NVML columns on a CPU run)."""
    return {"check": name, "passed": passed, "detail": detail}


def steps(out: Path) -> dict[str, dict[str, str]]:
    """steps.tsv by step name."""
    path = out / "steps.tsv"
    if not path.exists():
        return {}
    with path.open() as f:
        return {r["step"]: r for r in csv.DictReader(f, delimiter="\t")}


def steady_rate(df: pl.DataFrame) -> float | None:
    """Networks per hour between the first and the last row written: start-up (spawn, imports, ray.init) excluded."""
    if df.height < 3:
        return None
    t = df["created_at"].str.to_datetime(time_zone="UTC").sort()
    span_s = (t[-1] - t[0]).total_seconds()
    return round((df.height - 1) / span_s * 3600) if span_s > 0 else None


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def sampled(out: Path, name: str) -> dict[str, float | None]:
    """Mean GPU utilisation, power and max memory from nvidia-smi samples taken during a build."""
    path = out / f"util_{name}.csv"
    util, power, mem = [], [], []
    if path.exists():
        for row in csv.reader(path.open()):
            try:
                util.append(float(row[1]))
                power.append(float(row[2]))
                mem.append(float(row[3]))
            except (IndexError, ValueError):  # a torn last line, or [N/A]
                continue
    return {"gpu_util_pct_sampled": _mean(util), "power_w_sampled": _mean(power),
            "mem_used_mib_max_sampled": max(mem) if mem else None, "samples": len(util)}


def corpus_checks(df: pl.DataFrame, *, name: str, device: str, epochs: int) -> list[Check]:
    """Timing and NVML columns filled and sane."""
    out = [check(f"{name}: rows", df.height > 0, f"{df.height} rows")]
    if df.height == 0:
        return out
    kinds = set(df["device_kind"].drop_nulls())
    out.append(check(f"{name}: device_kind", kinds == {device}, f"{sorted(kinds)}"))
    ok = df.filter(pl.col("status") == "ok")
    frac = ok.height / df.height
    statuses = dict(df.group_by("status").len().iter_rows())
    out.append(check(f"{name}: ok fraction >= 0.9", frac >= 0.9, f"{frac:.2f} {statuses}"))
    if ok.height == 0:
        return out

    def positive(col: str) -> Check:
        bad = ok.filter(pl.col(col).is_null() | (pl.col(col) <= 0)).height
        med = ok[col].median()
        return check(f"{name}: {col} > 0", bad == 0, f"{bad} of {ok.height} null or <= 0; median {med}")

    for col in ("train_time_s", "epoch_time_p50_s", "step_time_p50_s", "latency_bs1_ms", "peak_mem_bytes"):
        out.append(positive(col))
    bad = ok.filter(pl.col("step_time_p90_s") < pl.col("step_time_p50_s")).height
    out.append(check(f"{name}: step p90 >= p50", bad == 0, f"{bad} rows with p90 < p50"))
    steps_per_epoch = (ok["n_train"] / ok["batch_size"]).ceil()
    ratio = (ok["train_time_s"] / (epochs * steps_per_epoch * ok["step_time_p50_s"])).median()
    out.append(check(f"{name}: train time ~ steps x step time", ratio is not None and 0.5 <= ratio <= 3,
                     f"median ratio {ratio}"))
    if device != "cuda":
        out.append(check(f"{name}: NVML columns", None, "skipped: not a CUDA run"))
        return out
    for col in ("energy_j", "power_w_mean", "sm_clock_mhz_mean", "gpu_mem_used_bytes_max"):
        out.append(positive(col))
    util = ok["gpu_util_pct_mean"]
    in_range = util.null_count() == 0 and bool(((util >= 0) & (util <= 100)).all()) and (util.median() or 0) > 0
    out.append(check(f"{name}: gpu_util_pct_mean in [0, 100], median > 0", in_range, f"median {util.median()}"))
    bad = ok.filter((pl.col("power_w_max") < pl.col("power_w_mean")) | (pl.col("power_w_max") > 2000)).height
    out.append(check(f"{name}: power_w_mean <= power_w_max <= 2000", bad == 0, f"{bad} rows out of range"))
    e_ratio = (ok["energy_j"] / (ok["power_w_mean"] * ok["train_time_s"])).median()
    out.append(check(f"{name}: energy ~ mean power x train time", e_ratio is not None and 0.3 <= e_ratio <= 3,
                     f"median ratio {e_ratio}"))
    for col in ("device_name", "driver", "cuda_version"):
        nulls = df[col].null_count()
        out.append(check(f"{name}: {col} recorded", nulls == 0, f"{df[col].drop_nulls().unique().to_list()[:2]}"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    out, n = args.out, args.concurrency
    step_rows = steps(out)
    builds, checks, corpora = [], [], {}
    for name, conc in (("c1", 1), (f"c{n}", n), ("ray", n)):
        folder = out / f"corpus_{name}"
        if not is_corpus(folder):
            continue
        df = read_corpus(folder)
        corpora[name] = df
        checks += corpus_checks(df, name=name, device=args.device, epochs=args.epochs)
        if name != "ray" or args.device == "cuda":  # Ray on CPU records its node's CPU slots instead
            got = set(df["concurrency"].drop_nulls())
            checks.append(check(f"{name}: concurrency column = {conc}", got == {conc}, f"{sorted(got)}"))
        step = step_rows.get(f"build_{name}", {})
        seconds = float(step.get("seconds") or 0) or None
        text = (out / f"build_{name}.out").read_text() if (out / f"build_{name}.out").exists() else ""
        m = re.search(r"([\d.]+)\s+networks/hour", text)  # rich may wrap the line before the unit
        ok = df.filter(pl.col("status") == "ok")
        builds.append({
            "build": name,
            "concurrency": conc,
            "rows": df.height,
            "ok": ok.height,
            "step_rc": step.get("rc"),
            "step_s": seconds,
            "nets_per_hour_incl_startup": round(df.height / seconds * 3600) if seconds else None,
            "nets_per_hour_runs_only": float(m.group(1)) if m else None,
            "nets_per_hour_steady": steady_rate(df),
            "train_time_s_median": ok["train_time_s"].median() if ok.height else None,
            "gpu_util_pct_mean_rows_median": ok["gpu_util_pct_mean"].median() if ok.height else None,
            **sampled(out, name),
        })
    if "c1" in corpora:
        ref = dict(corpora["c1"].select("arch_id", "status").iter_rows())
        for name, df in corpora.items():
            if name == "c1":
                continue
            got = dict(df.select("arch_id", "status").iter_rows())
            full = df.height == len(ref) and df["arch_id"].n_unique() == df.height
            same = set(got) == set(ref)
            checks.append(check(f"{name}: same networks as c1", same if full else None,
                                f"{len(got)} vs {len(ref)} networks" + ("" if full else " (a build was cut short)")))
    base = next((b for b in builds if b["build"] == "c1"), None)
    for b in builds:
        r0, r = (base or {}).get("nets_per_hour_steady"), b["nets_per_hour_steady"]
        b["speedup_vs_c1"] = round(r / r0, 2) if r and r0 else None
    failed = [c for c in checks if c["passed"] is False]
    summary = {"device": args.device, "concurrency": n, "builds": builds, "checks": checks,
               "failed_checks": len(failed), "steps": step_rows}
    atomic_write_json(out / "summary.json", summary, sort_keys=False)
    write_markdown(out, summary)
    for b in builds:
        print(f"{b['build']:>4}: {b['rows']} rows, {b['nets_per_hour_steady']} nets/h steady, "
              f"{b['nets_per_hour_runs_only']} nets/h (runs only), "
              f"{b['nets_per_hour_incl_startup']} nets/h incl. start-up, GPU util sampled {b['gpu_util_pct_sampled']}")
    for c in checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[c["passed"]]
        print(f"{mark} {c['check']}: {c['detail']}")
    return 1 if failed or not builds else 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3g}"
    return "" if v is None else str(v)


def write_markdown(out: Path, s: dict[str, Any]) -> None:
    cols = ["build", "concurrency", "rows", "ok", "step_s", "nets_per_hour_steady", "nets_per_hour_runs_only",
            "nets_per_hour_incl_startup",
            "speedup_vs_c1", "train_time_s_median", "gpu_util_pct_sampled", "gpu_util_pct_mean_rows_median",
            "power_w_sampled"]
    lines = [f"# GPU check ({s['device']})", "", "Provenance: `provenance/` (command, nvidia-smi, git rev, date, "
             "pip freeze). nets/h steady: between the first and last row written (start-up excluded; "
             "speedup_vs_c1 uses it); runs only: narch's own rate; incl. start-up: rows / step wall time. "
             "Energy per row at concurrency > 1 is the whole device's energy over that run's training "
             "(shared by the runs in flight), so it overstates one run's share.", "",
             markdown_table(pl.DataFrame({c: [_fmt(b.get(c)) for b in s["builds"]] for c in cols}), floats=None)]
    lines += ["", f"## Checks ({s['failed_checks']} failed)", ""]
    lines += [f"- {'PASS' if c['passed'] else 'skip' if c['passed'] is None else 'FAIL'} {c['check']}: {c['detail']}"
              for c in s["checks"]]
    compare = out / "compare.out"
    if compare.exists():
        lines += ["", "## narch hardware compare (corpus_c1)", "", "```", compare.read_text().strip(), "```"]
    atomic_write_text(out / "SUMMARY.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
