"""`narch hardware bench|compare` and `narch roofline`: parse, call one library function, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from narch.console import ERR, OUT, guarded
from narch.core.checks import check_float, check_int, check_out_folder, name_value_pairs

hardware_app = typer.Typer(no_args_is_help=True, help="Device micro-benchmark and measured-vs-roofline reports.")

# Training-set sizes of the builder's default splits (train = all minus validation).
TASK_N_TRAIN = {"mnist1d": 3000, "digits": 1079, "cifar10": 45000}


def task_shape(task: str) -> tuple[tuple[int, ...], int, int]:
    """(input shape, classes, default n_train) of a task."""
    from narch.dataset_builder.tasks import TASK_SHAPES

    if task not in TASK_SHAPES:
        raise ValueError(f"task {task!r} is unknown (known: {', '.join(TASK_SHAPES)})")
    shape, n_classes = TASK_SHAPES[task]
    return tuple(shape), n_classes, TASK_N_TRAIN.get(task, 1000)


@hardware_app.command("bench")
@guarded
def bench(
    quick: Annotated[bool, typer.Option(help="small buffers and few repeats (for tests; not cached)")] = False,
    cache: Annotated[bool | None, typer.Option(
        help="write the per-machine cache ($NARCH_CACHE_DIR or ~/.cache/narch, keyed by host, CPU model and count) "
             "that `local` reads (default: unless --quick)")] = None,
    out: Annotated[Path, typer.Option(help="folder for bench_<host>.json (besides the cache)")] = Path(
        "runs/hardware"
    ),
) -> None:
    """Measure matmul FLOP/s, stream bandwidth and per-op launch overhead (a line per stage as it ends, on stderr);
    cache them for `local`."""
    from narch.hardware.bench import run_bench, save_bench, summary_lines

    check_out_folder("--out", out)
    result = run_bench(quick=quick, log=lambda line: ERR.print(line, markup=False, highlight=False, soft_wrap=True))
    paths = save_bench(result, results_dir=out, cache=cache)
    for line in summary_lines(result):
        OUT.print(line, highlight=False)
    OUT.print("written: " + ", ".join(str(p) for p in paths), highlight=False)


@hardware_app.command("compare")
@guarded
def compare(
    corpus: Annotated[Path, typer.Option(help="corpus folder (Parquet parts)")],
    out: Annotated[Path, typer.Option(help="report folder")] = Path("runs/hardware/compare"),
    train_frac: Annotated[float, typer.Option(help="architectures used to fit the calibration")] = 0.5,
    seed: Annotated[int, typer.Option(help="seed of the architecture split")] = 0,
    time_col: Annotated[str, typer.Option(help="measured time column; auto: the corpus's time label "
                                               "(schema.TIME_LABEL) where every ok row has it, else train_time_s")
                        ] = "auto",
    where: Annotated[str | None, typer.Option(help="row filters COL=VALUE[,COL=VALUE] (e.g. one device_name of a "
                                                   "corpus timed on several)")] = None,
) -> None:
    """Measured vs roofline training time on a corpus: raw and calibrated errors, a report and a roofline PNG."""
    from narch.dataset_builder.corpus import read_corpus
    from narch.dataset_builder.tasks import with_task_shapes
    from narch.hardware.compare import compare_rows
    from narch.hardware.compare_report import write_report
    from narch.predictors.leaderboard import ok_rows_where

    check_float("--train-frac", train_frac, low=0, low_open=True, high=1, high_open=True)
    check_int("--seed", seed, low=0)
    check_out_folder("--out", out)
    rows = read_corpus(corpus)
    if where:
        rows = ok_rows_where(rows, name_value_pairs(where, "--where"), corpus)
    rows = with_task_shapes(rows)
    col = time_label_of(rows) if time_col == "auto" else time_col
    report = compare_rows(rows, name=str(corpus), train_frac=train_frac, seed=seed, time_col=col)
    paths = write_report(report, out)
    for line in report.summary_lines():
        OUT.print(line, highlight=False)
    OUT.print("written: " + ", ".join(str(p) for p in paths), highlight=False)


def time_label_of(rows: Any) -> str:
    """The device kind's time label when every ok row of that kind carries it (clean-timing corpora), else the
    wall time train_time_s (corpora built before the label, imported ones)."""
    import polars as pl

    from narch.dataset_builder.schema import TIME_LABEL

    ok = rows.filter(pl.col("status") == "ok")
    kinds = set(ok["device_kind"].drop_nulls()) if "device_kind" in ok.columns else set()
    labels = {TIME_LABEL.get(k, ("train_time_s", ""))[0] for k in kinds}
    if len(labels) == 1 and (col := labels.pop()) in ok.columns and ok[col].null_count() == 0:
        return col
    return "train_time_s"


@guarded
def roofline_cmd(
    arch: Annotated[str, typer.Option(help="seed network name or a JSON file holding one network")],
    task: Annotated[str, typer.Option(help="mnist1d, digits or cifar10")] = "mnist1d",
    devices: Annotated[str, typer.Option(help="comma-separated catalogue keys and/or local")] = (
        "t4,a100,h100,h200,local"
    ),
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 128,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 5,
    n_train: Annotated[int | None, typer.Option(help="training-set size (default: the task's)")] = None,
    precision: Annotated[str, typer.Option(help="fp32 (PyTorch defaults), tf32, bf16 or fp16")] = "fp32",
    threads: Annotated[int | None, typer.Option(help="threads of the local device (default: the most benched)")] = None,
) -> None:
    """Roofline step and training time of a network on devices: what bounds it and which layer dominates."""
    from narch.hardware.costs import step_costs
    from narch.hardware.roofline import roofline_run
    from narch.search_space import resolve_network

    for name, value in (("--batch-size", batch_size), ("--epochs", epochs), ("--n-train", n_train),
                        ("--threads", threads)):
        if value is not None:
            check_int(name, value, low=1)
    net = resolve_network(arch)
    shape, n_classes, default_n = task_shape(task)
    n = n_train or default_n
    costs = step_costs(net, shape, n_classes, batch_size)
    runs = [
        roofline_run(net, shape, n_classes, batch_size=batch_size, n_train=n, epochs=epochs, device=d.strip(),
                     precision=precision, threads=threads)
        for d in devices.split(",") if d.strip()
    ]
    OUT.print(
        f"{arch} on {task} {shape}: {costs.params:,} params, {costs.flops_fwd / 1e6:.3f} MFLOP forward/sample, "
        f"{costs.flops_train_step / 1e9:.3f} GFLOP and {costs.bytes_train_step / 1e6:.1f} MB per step "
        f"(batch {batch_size}, AI {costs.arithmetic_intensity:.2f} FLOP/B); {epochs} epochs x {n} samples",
        highlight=False,
    )
    rows = [("device", "step ms", "train s", "bound", "attained GFLOP/s", "dominating layer", "name")]
    rows += [
        (r.device, f"{r.step_time_s * 1e3:.3f}", f"{r.train_time_s:.3f}", r.bound,
         f"{r.full.attainable_flops / 1e9:.1f}", r.dominating_layer, r.device_name)
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        OUT.print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), highlight=False,
                  soft_wrap=True)
