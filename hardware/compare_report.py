"""Writes a measured-vs-roofline comparison: JSON, markdown and a roofline PNG, each with its provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from narch.core.files import atomic_savefig, atomic_write_text
from narch.core.plots import log_scale
from narch.core.provenance import provenance, provenance_markdown
from narch.hardware.calibration import Calibration
from narch.hardware.catalogue import Device, get_device
from narch.hardware.compare import CompareReport


def _figures(report: CompareReport) -> dict[str, Any]:
    """The figures of the rows' device that the raw roofline used, and where they come from."""
    if report.device is None:
        return {}
    return Calibration.device_figures(report.device) | {"source": report.device.efficiency_source}


def report_dict(report: CompareReport) -> dict[str, Any]:
    """The report as JSON-ready data (rows included)."""
    return {
        "provenance": report.provenance, "corpus": report.corpus, "devices": report.devices,
        "train_frac": report.train_frac, "seed": report.seed, "time_col": report.time_col, "metrics": report.metrics,
        "coefficients": report.coefficients,
        "device_figures": _figures(report),
        "efficiencies": report.efficiencies(),
        "rows": {  # columnar, 6 significant digits
            k: [float(f"{v:.6g}") if isinstance(v, float) else v for v in vals]
            for k, vals in report.rows.select(
                "arch_id", "setting", "train", "bound", "measured_s", "raw_s", "calibrated_s", "arithmetic_intensity",
                "flops_run", "steps",
            ).to_dict(as_series=False).items()
        },
    }


def _figures_line(report: CompareReport) -> str:
    f = _figures(report)
    if not f:
        return ""
    return (f"Raw roofline figures of {f['name']}: {f['peak_flops'] / 1e9:.1f} GFLOP/s, "
            f"{f['bandwidth'] / 1e9:.1f} GB/s, "
            f"{f['launch_overhead_s'] * 1e6:.2f} us per launch, {f['step_overhead_s'] * 1e6:.0f} us per step "
            f"({f['source']}).\n\n")


def markdown(report: CompareReport) -> str:
    """A short human report."""
    m = report.metrics
    head = "| rows | median abs % error | within ±10 % | within ±20 % | Spearman |\n|---|---|---|---|---|\n"
    lines = [f"# Measured vs roofline training time: {report.corpus}\n\n", provenance_markdown(report.provenance), "\n",
             f"Measured time: `{report.time_col}`. Devices: {', '.join(report.devices)}. "
             f"Calibration fitted on {m['calibrated_train']['n']} rows "
             f"(architectures split {report.train_frac:.0%} / {1 - report.train_frac:.0%}, seed {report.seed}), "
             f"judged on {m['calibrated_test']['n']} held-out rows.\n\n", _figures_line(report), head]
    lines += [f"| {label} ({s['n']}) | {s['median_ape_pct']:.1f} | {s['within_10pct']:.0%} | "
              f"{s['within_20pct']:.0%} | {s['spearman']:.3f} |\n" for label, s in report.error_rows(fit_rows=True)]
    lines.append("\nHeld-out rows by what bounds the raw roofline step (median abs % error):\n\n"
                 "| bound | rows | raw | calibrated |\n|---|---|---|---|\n")
    for b, st in m["by_bound_test"].items():
        lines.append(f"| {b} | {st['raw']['n']} | {st['raw']['median_ape_pct']:.1f} | "
                     f"{st['calibrated']['median_ape_pct']:.1f} |\n")
    lines.append("\nComparator: the measured times carried to other devices by Habitat-style wave scaling, "
                 "beside their roofline times (medians over all rows; no measurement there to judge either):\n\n")
    lines.append("| device | roofline s | wave-scaled s | median ratio wave / roofline | Spearman |\n"
                 "|---|---|---|---|---|\n")
    for key, t in m["transfer"].items():
        lines.append(f"| {key} | {t['median_roofline_s']:.4g} | {t['median_wave_scaled_s']:.4g} | "
                     f"{t['median_ratio_wave_to_roofline']:.3g} | {t['spearman']:.3f} |\n")
    lines.append("\nFitted coefficients (time = sum of coefficient x roofline term; efficiency = 1 / coefficient):\n\n")
    lines.append("| term | coefficient | efficiency |\n|---|---|---|\n")
    eff = report.efficiencies()
    for k, v in report.coefficients.items():
        if v > 0:
            e = f"{eff[k]:.3g}" if k in eff else "-"
            unit = " s/step" if k == "steps" else ""
            lines.append(f"| {k} | {v:.4g}{unit} | {e} |\n")
    return "".join(lines)


def plot_roofline(report: CompareReport, path: Path, *, roofs: list[Device]) -> None:
    """Arithmetic intensity vs attained FLOP/s (measured and raw roofline) under the devices' roofs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report.rows
    ai = rows["arithmetic_intensity"].to_numpy()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.5))
    xs = np.logspace(np.log10(max(ai.min() / 3, 1e-2)), np.log10(ai.max() * 30), 200)
    for dev in roofs:
        peak = dev.peak("fp32") * dev.compute_efficiency
        bw = dev.mem_bandwidth.value * dev.memory_efficiency
        ax.plot(xs, np.minimum(peak, bw * xs), lw=1.5, label=f"roof: {dev.name}")
    ax.scatter(ai, rows["flops_run"].to_numpy() / rows["measured_s"].to_numpy(), s=12, label="measured")
    ax.scatter(ai, rows["flops_run"].to_numpy() / rows["raw_s"].to_numpy(), s=8, marker="x", label="raw roofline")
    ax.set(xlabel="arithmetic intensity (FLOP/byte, training step)", ylabel="attained FLOP/s",
           title="Roofline: corpus networks")
    log_scale(ax, "x", "y")
    ax.legend(fontsize=7)
    y = rows["measured_s"].to_numpy()
    test = ~rows["train"].to_numpy()
    ax2.scatter(y[test], rows["raw_s"].to_numpy()[test], s=10, label="raw roofline")
    ax2.scatter(y[test], rows["calibrated_s"].to_numpy()[test], s=10, label="calibrated")
    lim = [y.min() / 2, y.max() * 2]
    ax2.plot(lim, lim, "k--", lw=1)
    ax2.set(xlabel="measured train time (s)", ylabel="predicted (s)", title="Held-out architectures")
    log_scale(ax2, "x", "y")
    ax2.legend(fontsize=8)
    p = report.provenance
    fig.text(0.01, 0.005, f"{p.get('command')} | host {p.get('host')} ({p.get('cpu_model')}) | "
             f"git {p.get('git_rev')} | {p.get('created_at')}", fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def _json_rows_last(data: dict[str, Any], rows: dict[str, list[Any]]) -> str:
    """Strict JSON with the rows last, one column per line, so the head stays readable."""
    # a round trip that reads NaN and infinities back as null
    strict = json.loads(json.dumps({"data": data, "rows": rows}, default=str), parse_constant=lambda _c: None)
    head = json.dumps(strict["data"], indent=1, allow_nan=False)[:-2]
    cols = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in strict["rows"].items())
    return f'{head},\n "rows": {{\n{cols}\n }}\n}}\n'


def write_report(report: CompareReport, out: str | Path, *, roof_keys: tuple[str, ...] = ("local",)) -> list[Path]:
    """report.json, report.md, roofline.png and calibration.json in ``out``; returns the paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if not report.provenance:
        report.provenance = provenance()
    paths = [folder / "report.json", folder / "report.md", folder / "roofline.png", folder / "calibration.json"]
    data = report_dict(report)
    rows = data.pop("rows")
    atomic_write_text(paths[0], _json_rows_last(data, rows))
    atomic_write_text(paths[1], markdown(report))
    plot_roofline(report, paths[2], roofs=[get_device(k) for k in roof_keys])
    report.calibration().save(paths[3])
    return paths
