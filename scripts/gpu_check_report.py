#!/usr/bin/env python
"""Checks and throughput of a scripts/gpu_check folder: summary.json and SUMMARY.md; exit 1 if a check failed."""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.checks import check_int, csv_items
from narch.core.errors import SettingError
from narch.core.files import atomic_write_json, atomic_write_text
from narch.core.tables import markdown_table
from narch.dataset_builder.corpus import is_corpus, read_corpus
from narch.hardware.catalogue import Device, local_device
from narch.hardware.compare import device_for, error_stats
from narch.hardware.costs import OpClass, run_costs
from narch.hardware.roofline import op_dtype
from narch.search_space import Network

Check = dict[str, Any]
MAX_LEVEL = 64  # trainings at once on one device
RATIO_SANE = 50  # a roofline off by more than this is a unit or device mix-up, not a model's error


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


def _as_int(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text  # check_int names it


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def bench_result(out: Path) -> dict[str, Any] | None:
    """The micro-benchmark this check ran (bench/bench_<host>.json), or None."""
    paths = sorted((out / "bench").glob("bench_*.json"))
    return json.loads(paths[0].read_text()) if paths else None


def median_network(c1: pl.DataFrame) -> dict[str, Any] | None:
    """The timed ok row of median forward FLOPs (the lower middle of an even count; ties by arch_id)."""
    if c1.height == 0:
        return None
    ok = c1.filter((pl.col("status") == "ok") & (pl.col("train_time_s") > 0)).sort("flops_fwd", "arch_id")
    return ok.row((ok.height - 1) // 2, named=True) if ok.height else None


def peaks(row: dict[str, Any], bench: dict[str, Any] | None, *, device: str) -> list[dict[str, Any]]:
    """The peak FLOP/s a row is judged against, each named: the micro-benchmark's and the spec table's, at the
    dtype the roofline runs convolutions at under PyTorch defaults (TF32 on a GPU that has it, else fp32)."""
    cuda = device == "cuda"
    found: list[tuple[str, Device]] = []
    if bench and bench.get("cuda" if cuda else "cpu"):
        found.append(("micro-benchmark", local_device(threads=row.get("threads"), bench=bench, cuda=cuda)))
    spec = device_for(row)  # the catalogue entry the device name matches; "local" when none does
    if spec.key != "local":
        found.append(("spec table", spec))
    out = []
    for source, dev in found:
        dtype = op_dtype(OpClass.CONV, dev, "fp32")
        out.append({"source": source, "device": dev.name, "dtype": dtype, "peak_flops": dev.peak(dtype),
                    "from": dev.peak_flops[dtype].source})
    return out


def median_network_mfu(c1: pl.DataFrame, bench: dict[str, Any] | None, *, device: str) -> dict[str, Any] | None:
    """Model FLOPs utilisation of the median network of the concurrency-1 corpus: its training FLOPs (the cost
    model's forward + backward + optimizer count per step, over the run's steps) / measured train time / peak."""
    row = median_network(c1)
    if row is None:
        return None
    rc = run_costs(Network.from_json(row["arch_json"]), tuple(int(d) for d in row["input_shape"]),
                   int(row["n_classes"]), batch_size=int(row["batch_size"]), n_train=int(row["n_train"]),
                   epochs=int(row["epochs"]))
    achieved = rc.flops_run / row["train_time_s"]
    return {"arch_id": row["arch_id"], "of_networks": int((c1["status"] == "ok").sum()),
            "flops_fwd": row["flops_fwd"], "flops_train_step": rc.full.flops_train_step,
            "flops_train_step_corpus": row.get("flops_train_step"), "steps": rc.steps, "flops_run": rc.flops_run,
            "train_time_s": row["train_time_s"], "achieved_flops_per_s": achieved,
            "peaks": [p | {"mfu": achieved / p["peak_flops"]} for p in peaks(row, bench, device=device)]}


def mfu_checks(mfu: dict[str, Any] | None, *, device: str) -> list[Check]:
    """MFU within (0, 1] against every peak found; on CUDA both peaks must be found (CPUs have no spec entry)."""
    if mfu is None:
        return [check("MFU of the median network", False, "no timed ok row in corpus_c1")]
    out = [check("MFU: cost model's step FLOPs = the corpus's flops_train_step",
                 mfu["flops_train_step"] == mfu["flops_train_step_corpus"],
                 f"{mfu['flops_train_step']} vs {mfu['flops_train_step_corpus']}")]
    by_source = {p["source"]: p for p in mfu["peaks"]}
    for source in ("micro-benchmark", "spec table"):
        p = by_source.get(source)
        if p is None:
            skip = device != "cuda" and source == "spec table"
            out.append(check(f"MFU vs the {source} peak", None if skip else False,
                             "skipped: a CPU has no spec-table entry" if skip else f"no {source} peak found"))
            continue
        out.append(check(f"MFU vs the {source} {p['dtype']} peak in (0, 1]", 0 < p["mfu"] <= 1,
                         f"{p['mfu']:.3g} of {p['peak_flops'] / 1e12:.4g} TFLOP/s ({p['device']})"))
    return out


def ratio_stats(pred: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    """Per-network predicted / measured time: median ratio, plus compare's error statistics (Spearman, |err|)."""
    err = error_stats(pred, measured)
    return {"n": len(pred), "median_ratio_predicted_to_measured": float(np.median(pred / measured)),
            "spearman": _finite(err["spearman"]), "median_ape_pct": err["median_ape_pct"]}


def roofline_vs_measured(report_json: Path, c1: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Roofline-predicted vs measured training time of the concurrency-1 networks, from what `narch hardware
    compare` wrote (its raw roofline on the device it matched) and from the corpus's build-time roofline column."""
    out = {}
    if report_json.exists():
        r = json.loads(report_json.read_text())
        rows = r["rows"]
        fig = r.get("device_figures") or {}
        out["compare_raw"] = {"source": f"narch hardware compare, raw roofline on {fig.get('name')} "
                                        f"({fig.get('source')})",
                              **ratio_stats(np.array(rows["raw_s"]), np.array(rows["measured_s"]))}
    if c1.height:
        ok = c1.filter((pl.col("status") == "ok") & (pl.col("train_time_s") > 0)
                       & (pl.col("roofline_train_time_s") > 0))
        if ok.height:
            pred, measured = ok["roofline_train_time_s"].to_numpy(), ok["train_time_s"].to_numpy()
            out["corpus_column"] = {"source": "roofline_train_time_s of corpus_c1 (at build time, device "
                                              "local / local-cuda: this host's cached micro-benchmark, defaults "
                                              "without one)", **ratio_stats(pred, measured)}
    return out


MIN_RANKED = 8  # networks below which a rank correlation judges nothing


def roofline_checks(roofline: dict[str, dict[str, Any]]) -> list[Check]:
    """Each prediction's median ratio within 1/RATIO_SANE..RATIO_SANE of measured (units and device right), and its
    ranking of the networks positively correlated with the measured one (when there are enough to rank)."""
    out = []
    for key, label in (("compare_raw", "compare's raw roofline"), ("corpus_column", "the corpus's roofline column")):
        s = roofline.get(key)
        if s is None:
            out.append(check(f"roofline vs measured: {label}", False, "absent"))
            continue
        ratio = s["median_ratio_predicted_to_measured"]
        out.append(check(f"roofline vs measured: {label}, median predicted/measured in 1/{RATIO_SANE}..{RATIO_SANE}",
                         1 / RATIO_SANE <= ratio <= RATIO_SANE, f"{ratio:.3g} over {s['n']} networks"))
        rho = s["spearman"]
        enough = s["n"] >= MIN_RANKED and rho is not None
        out.append(check(f"roofline vs measured: {label}, Spearman > 0", rho > 0 if enough else None,
                         f"{rho if rho is None else round(rho, 3)}" + ("" if enough else
                                                                       f" (skipped: under {MIN_RANKED} networks)")))
    return out


def mfu_lines(mfu: dict[str, Any] | None) -> list[str]:
    if mfu is None:
        return ["MFU: no timed ok row in corpus_c1"]
    head = (f"median network {mfu['arch_id']} (of {mfu['of_networks']} by flops_fwd): {mfu['flops_run']:.3g} "
            f"training FLOPs over {mfu['steps']} steps in {mfu['train_time_s']:.3g} s = "
            f"{mfu['achieved_flops_per_s'] / 1e9:.3g} GFLOP/s")
    return [head] + [f"  MFU {p['mfu']:.3g} of the {p['source']} {p['dtype']} peak, "
                     f"{p['peak_flops'] / 1e12:.4g} TFLOP/s ({p['device']}; {p['from']})" for p in mfu["peaks"]]


def roofline_lines(roofline: dict[str, dict[str, Any]]) -> list[str]:
    return [f"roofline vs measured, {s['source']}: median predicted/measured "
            f"{s['median_ratio_predicted_to_measured']:.3g}, Spearman {_fmt(s['spearman'])}, "
            f"median |err| {s['median_ape_pct']:.1f} % over {s['n']} networks"
            for s in roofline.values()]


def levels(text: str) -> tuple[int, ...]:
    """Concurrency levels of a comma list ("1,4,8"): ascending, distinct, each in 1..MAX_LEVEL, 1 among them (the
    baseline every speed-up is over)."""
    items = csv_items(text, "--concurrency") or ()
    got = [check_int("--concurrency", _as_int(s), low=1, high=MAX_LEVEL) for s in items]
    if 1 not in got:
        raise SettingError(f"--concurrency {text!r} must include 1 (the baseline of the speed-ups)")
    return tuple(sorted(set(got)))


def build_row(out: Path, name: str, conc: int, df: pl.DataFrame, step_rows: dict[str, dict[str, str]]
              ) -> dict[str, Any]:
    """Throughput and utilisation of one build: rows, networks/hour three ways, median train time, GPU samples."""
    step = step_rows.get(f"build_{name}", {})
    seconds = float(step.get("seconds") or 0) or None
    text = (out / f"build_{name}.out").read_text() if (out / f"build_{name}.out").exists() else ""
    m = re.search(r"([\d.]+)\s+networks/hour", text)  # rich may wrap the line before the unit
    ok = df.filter(pl.col("status") == "ok")
    return {
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
    }


def throughput_checks(builds: list[dict[str, Any]], conc: tuple[int, ...], *, device: str) -> list[Check]:
    """Networks/hour and its speed-up measured at every level; GPU utilisation sampled at every level (CUDA)."""
    by_name = {b["build"]: b for b in builds}
    out = []
    for c in conc:
        b = by_name.get(f"c{c}", {})
        rate, up = b.get("nets_per_hour_steady"), b.get("speedup_vs_c1")
        out.append(check(f"c{c}: networks/hour (steady) and speed-up measured", bool(rate and rate > 0 and up),
                         f"{rate} nets/h, x{up} over c1" if b else "no corpus"))
        if device != "cuda":
            out.append(check(f"c{c}: GPU utilisation sampled", None, "skipped: not a CUDA run"))
            continue
        util = b.get("gpu_util_pct_sampled")
        out.append(check(f"c{c}: GPU utilisation sampled, in (0, 100]", util is not None and 0 < util <= 100,
                         f"mean {util} over {b.get('samples', 0)} samples"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--concurrency", default="1,4,8", help="the levels built, a comma list including 1")
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    try:
        conc = levels(args.concurrency)
    except SettingError as e:
        print(f"gpu_check_report: {e}", file=sys.stderr)
        return 2
    out = args.out
    step_rows = steps(out)
    builds, checks, corpora = [], [], {}
    for name, c in (*((f"c{c}", c) for c in conc), ("ray", conc[-1])):
        folder = out / f"corpus_{name}"
        if not is_corpus(folder):
            continue
        df = read_corpus(folder)
        corpora[name] = df
        checks += corpus_checks(df, name=name, device=args.device, epochs=args.epochs)
        if name != "ray" or args.device == "cuda":  # Ray on CPU records its node's CPU slots instead
            got = set(df["concurrency"].drop_nulls())
            checks.append(check(f"{name}: concurrency column = {c}", got == {c}, f"{sorted(got)}"))
        builds.append(build_row(out, name, c, df, step_rows))
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
    checks += throughput_checks(builds, conc, device=args.device)
    c1 = corpora.get("c1", pl.DataFrame())
    mfu = median_network_mfu(c1, bench_result(out), device=args.device)
    checks += mfu_checks(mfu, device=args.device)
    roofline = roofline_vs_measured(out / "compare" / "report.json", c1)
    checks += roofline_checks(roofline)
    failed = [c for c in checks if c["passed"] is False]
    summary = {"device": args.device, "concurrency": list(conc), "builds": builds, "mfu_median_network": mfu,
               "roofline_vs_measured": roofline, "checks": checks, "failed_checks": len(failed), "steps": step_rows}
    atomic_write_json(out / "summary.json", summary, sort_keys=False)
    write_markdown(out, summary)
    for b in builds:
        print(f"{b['build']:>4}: {b['rows']} rows, {b['nets_per_hour_steady']} nets/h steady "
              f"(x{b['speedup_vs_c1']} over c1), {b['nets_per_hour_runs_only']} nets/h (runs only), "
              f"{b['nets_per_hour_incl_startup']} nets/h incl. start-up, GPU util sampled {b['gpu_util_pct_sampled']}")
    for line in mfu_lines(mfu) + roofline_lines(roofline):
        print(line)
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
    lines += ["", "## MFU of the median network (corpus_c1)", "",
              "Training FLOPs: the cost model's forward + backward + optimizer FLOPs of each step (hardware.costs, "
              "as the roofline counts them) over the run's steps; divided by the measured train_time_s and by a "
              "peak at the dtype the roofline gives convolutions under PyTorch defaults (TF32 on a GPU with it). "
              "The networks also run element-wise ops on the fp32 vector units, so 1 is out of reach.", ""]
    lines += [f"- {line.strip()}" for line in mfu_lines(s["mfu_median_network"])]
    lines += ["", "## Roofline-predicted vs measured training time (corpus_c1)", ""]
    lines += [f"- {line}" for line in roofline_lines(s["roofline_vs_measured"])] or ["- absent"]
    compare = out / "compare.out"
    if compare.exists():
        lines += ["", "## narch hardware compare (corpus_c1)", "", "```", compare.read_text().strip(), "```"]
    atomic_write_text(out / "SUMMARY.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
