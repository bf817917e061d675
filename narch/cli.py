"""The `narch` command line: parse, call one library function, print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from narch.console import ERR, OUT, guarded, stop_on_sigterm
from narch.core.checks import check_out_folder
from narch.core.errors import SettingError
from narch.core.store import as_location
from narch.hardware_cli import hardware_app, roofline_cmd
from narch.import_cli import import_cmd
from narch.predict_cli import leaderboard_cmd, predict_cmd
from narch.search_cli import search_cmd
from narch.transfer_cli import transfer_cmd

if TYPE_CHECKING:
    from narch.dataset_builder.build import BuildConfig
    from narch.dataset_builder.runners.job_array import ArrayConfig

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Neural Architect: corpora, predictors, search.",
    context_settings={"help_option_names": ["-h", "--help"]},  # every subcommand inherits it
)
corpus_app = typer.Typer(no_args_is_help=True, help="Inspect corpora.")
app.add_typer(corpus_app, name="corpus")
app.add_typer(hardware_app, name="hardware")
app.command("roofline")(roofline_cmd)
app.command("import")(import_cmd)
app.command("leaderboard")(leaderboard_cmd)
app.command("predict")(predict_cmd)
app.command("search")(search_cmd)
app.command("transfer")(transfer_cmd)
RESUME_BUILD = "finished runs are saved; rerun the same command to resume"


def _print_version(value: bool) -> None:
    if value:
        from narch.core.provenance import builder_version

        OUT.print(f"narch {builder_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Neural Architect: corpora, predictors, search."""


@app.command()
@guarded(resume=RESUME_BUILD)
def build(
    task: Annotated[str, typer.Option(help="mnist1d, digits or cifar10")] = "mnist1d",
    archs: Annotated[int, typer.Option(help="networks to plan (sampled and edited)")] = 16,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 5,
    seed: Annotated[int, typer.Option(help="plan and training seed")] = 0,
    out: Annotated[str, typer.Option(help="corpus folder, or an object store's URL (s3://bucket/prefix)")
                   ] = "runs/corpus",
    archs_from: Annotated[Path | None, typer.Option(
        help='profile the networks of a file instead of sampling: .jsonl, one network a line, e.g. {"layers": '
             '[{"op": "conv", "channels": 16, "kernel": 3}, {"op": "dense", "units": 64}]} (fields left out take '
             'their defaults; an add layer names the two earlier layers it joins, "inputs": [0, 1]), or .json, one '
             'network or a list')] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    n_train: Annotated[int | None, typer.Option(help="training-set size (default: all)")] = None,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 128,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 0.01,
    data_dir: Annotated[Path | None, typer.Option(help="CIFAR-10 folder (python-pickle layout)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's)")] = None,
    timeout_s: Annotated[float | None, typer.Option(help="per-run time limit in seconds")] = None,
    skip_corrupt: Annotated[bool, typer.Option(help="leave corrupt part files out instead of stopping")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    shard: Annotated[str | None, typer.Option(help="i/n: build only shard i (0-based) of n, for job arrays")] = None,
    backend: Annotated[str, typer.Option(help="local (this machine) or ray (one Ray task per network)")] = "local",
    concurrency: Annotated[int, typer.Option(help="trainings at once on the device (processes; Ray: GPU share)")] = 1,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    ray_num_cpus: Annotated[int | None, typer.Option(help="CPUs of the local Ray cluster (default: all)")] = None,
    wait_quiet: Annotated[bool, typer.Option(help="hold each run until other work leaves the cores (clean timings)")]
    = False,
    array: Annotated[int | None, typer.Option(help="submit N tasks of a job array, task i building --shard i/N "
                                                   "(submitit; Slurm unless --array-executor local)")] = None,
    array_executor: Annotated[str, typer.Option(help="slurm, or local (submitit's processes on this machine)")]
    = "slurm",
    array_logs: Annotated[Path, typer.Option(help="submitit's folder of task logs and pickles")
                          ] = Path("runs/submitit"),
    array_parallelism: Annotated[int | None, typer.Option(help="array tasks running at once")] = None,
    array_wait: Annotated[bool, typer.Option(help="wait for the array's tasks and print their total")] = True,
    slurm_partition: Annotated[str | None, typer.Option(help="Slurm partition of the array's tasks")] = None,
    slurm_time_min: Annotated[int, typer.Option(help="time limit of each array task, minutes")] = 60,
    slurm_cpus: Annotated[int, typer.Option(help="CPUs of each array task")] = 1,
    slurm_gpus: Annotated[int, typer.Option(help="GPUs of each array task")] = 0,
) -> None:
    """Train networks for real and append them to a Parquet corpus (resumes by default)."""
    from narch.dataset_builder.build import BuildConfig, prepare_build
    from narch.dataset_builder.progress import run_with_progress
    from narch.dataset_builder.protocol import Protocol
    from narch.dataset_builder.shards import Shard

    proto = Protocol(epochs=epochs, batch_size=batch_size, lr=lr)
    cfg = BuildConfig(
        task=task,
        out=as_location(out),
        archs=archs,
        seed=seed,
        protocol=proto,
        archs_from=archs_from,
        device=device,
        n_train=n_train,
        data_dir=data_dir,
        threads=threads,
        timeout_s=timeout_s,
        skip_corrupt=skip_corrupt,
        shard=None if shard is None else Shard.parse(shard),
        backend=backend,
        concurrency=concurrency,
        ray_address=address,
        ray_num_cpus=ray_num_cpus,
        wait_quiet=wait_quiet,
    )
    if array is not None:
        from narch.dataset_builder.runners.job_array import ArrayConfig

        _build_array(cfg, ArrayConfig(tasks=array, folder=array_logs, executor=array_executor,
                                      partition=slurm_partition, time_min=slurm_time_min, cpus_per_task=slurm_cpus,
                                      gpus_per_task=slurm_gpus, parallelism=array_parallelism), wait=array_wait)
        return
    prepared = prepare_build(cfg)
    if prepared.duplicates:
        ERR.print(f"{archs_from}: {prepared.duplicates} repeated network(s) left out (each is trained once)",
                  markup=False, highlight=False, soft_wrap=True)
    summary = run_with_progress(prepared, console=ERR, show=not quiet)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())) or "none"
    rate = summary.done / summary.wall_s * 3600 if summary.wall_s else 0.0
    OUT.print(
        f"{cfg.out}: {summary.done} trained ({statuses}), {summary.skipped} already present, "
        f"{summary.planned} planned; {rate:.0f} networks/hour"
    )
    if summary.retimed:
        ERR.print(f"{summary.retimed} run(s) were trained again because other work competed while they were timed",
                  markup=False, highlight=False)
    if summary.contended:
        ERR.print(f"warning: {summary.contended} run(s) were timed while other work used the cores (see their "
                  "other_cpu_cores); --wait-quiet times on a quiet machine", markup=False, highlight=False)
    if summary.interrupted:
        ERR.print(f"interrupted: {RESUME_BUILD}")
        raise typer.Exit(130)


def _build_array(cfg: BuildConfig, array: ArrayConfig, *, wait: bool) -> None:
    """`narch build --array N`: submit the shards, then (unless told not to) wait and print their total."""
    from narch.dataset_builder.runners.job_array import submit_array, wait_array

    jobs = submit_array(cfg, array)
    ERR.print(f"submitted {len(jobs)} array tasks ({array.executor}): jobs {', '.join(str(j.job_id) for j in jobs)}; "
              f"logs in {array.folder}", markup=False, highlight=False)
    if not wait:
        return
    s = wait_array(jobs)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(s.statuses.items())) or "none"
    OUT.print(f"{cfg.out}: {s.done} trained ({statuses}), {s.skipped} already present, {s.planned} planned, "
              f"in {len(jobs)} array tasks")


@corpus_app.command("info")
@guarded
def corpus_info(
    corpus: Annotated[str, typer.Argument(help="corpus folder or URL")],
    skip_corrupt: Annotated[bool, typer.Option(help="summarise the readable parts when some are corrupt")] = False,
) -> None:
    """Summarise a corpus: rows by status, tasks, devices, columns with units."""
    from narch.dataset_builder.info import corpus_summary

    corpus_summary(as_location(corpus), console=OUT, skip_corrupt=skip_corrupt)


@app.command("zc")
@guarded(resume="scored networks are saved; rerun the same command to resume")
def zc_cmd(
    corpus: Annotated[Path, typer.Option(help="corpus folder whose rows lack zero-cost scores")],
    data_dir: Annotated[Path | None, typer.Option(help="folder of the task's data (cifar10)")] = None,
    from_naslib: Annotated[bool, typer.Option("--from-naslib", help="imported NAS-Bench-201/101 corpora: take "
                                              "NASLib's precomputed scores (no data needed)")] = False,
    src: Annotated[Path | None, typer.Option(help="with --from-naslib: NASLib's zc_*.json file or its folder "
                                             "(default: the copy shipped with the package)")] = None,
) -> None:
    """Add the zero-cost proxy columns (zc_*) to the rows of a corpus that lack them (resumable)."""
    if from_naslib:
        if data_dir is not None:
            raise SettingError("--data-dir is for scoring on local data; --from-naslib reads none")
        from narch.dataset_builder.importers.naslib_zc import fill_from_naslib

        f = fill_from_naslib(corpus, src=src)
        OUT.print(f"{corpus}: NASLib scored {f.scores.cells} cells ({f.scores.frame.height} networks, "
                  f"{f.scores.averaged} of them averaged over several cells; {f.scores.unmappable} cells without a "
                  f"network); {f.matched} networks matched, {f.rows_filled} rows filled", highlight=False)
        return
    if src is not None:
        raise SettingError("--src applies to --from-naslib only")
    from narch.dataset_builder.zc_fill import fill_zero_cost

    s = fill_zero_cost(corpus, data_dir=data_dir, console=ERR)
    OUT.print(f"{corpus}: {s.needed} rows lacked zero-cost scores; {s.computed} scored now, {s.reused} by an "
              f"earlier run; {s.filled} rows filled in {s.wall_s:.0f} s", highlight=False)


@app.command()
@guarded(resume="finished stages are saved; rerun the same command to resume")
def run(
    out: Annotated[Path, typer.Option(help="run folder (resumes when it exists)")] = Path("runs/quick"),
    preset: Annotated[str, typer.Option(help="quick (~10 min on 2 cores), full (hours) or smoke (seconds)")] = "quick",
) -> None:
    """The whole pipeline: corpus → leaderboard → search → hardware → verify → report (resumable)."""
    from narch.pipeline.run import run_pipeline

    check_out_folder("--out", out)
    run_pipeline(out, preset=preset, console=ERR)
    OUT.print(f"report: {out / 'report.html'} and {out / 'report.md'}")


@corpus_app.command("datacard")
@guarded
def corpus_datacard(
    corpora: Annotated[list[Path], typer.Argument(help="corpus folders")],
    out: Annotated[Path, typer.Option(help="data card to write")] = Path("runs/DATACARD.md"),
    reference: Annotated[bool, typer.Option("--reference", help="the reference corpora's card (results/"
                                            "DATACARD.md): add the caveats of how results/corpus was built")] = False,
) -> None:
    """Write a data card: columns with units, protocol, hardware, noise floor, caveats, how to load."""
    from narch.dataset_builder.datacard import write_datacard

    if out.is_dir():
        raise SettingError(f"{out}: --out is a folder, not a data card file")
    check_out_folder("--out's folder", out.parent)
    command = "narch corpus datacard " + " ".join(sys.argv[3:])
    path = write_datacard(corpora, out, command=command, reference=reference)
    OUT.print(f"written: {path}")


@corpus_app.command("migrate")
@guarded
def corpus_migrate(corpora: Annotated[list[Path], typer.Argument(help="corpus folders")]) -> None:
    """Rename a corpus's manifest.json and import.json to the names pandas and pyarrow skip (run while no build
    writes into it)."""
    from narch.dataset_builder.corpus import migrate_names

    for corpus in corpora:
        renamed = migrate_names(corpus)
        done = ", ".join(f"{old} -> {new}" for old, new in renamed) or "nothing to rename"
        OUT.print(f"{corpus}: {done}", highlight=False)


@corpus_app.command("compact")
@guarded
def corpus_compact(
    corpus: Annotated[str, typer.Argument(help="corpus folder or URL")],
    wait: Annotated[bool, typer.Option(help="wait for another compaction of this corpus (else stop at once)")] = True,
) -> None:
    """Merge a corpus's part files into one (safe to interrupt: the next compaction finishes or undoes it)."""
    from narch.dataset_builder.compaction import compact_corpus

    done = compact_corpus(as_location(corpus), wait=wait)
    for note in (done.recovered, f"deleted {done.removed} parts a merged part covers" if done.removed else ""):
        if note:
            OUT.print(f"{corpus}: {note}")
    OUT.print(f"{corpus}: merged {done.merged} parts into {done.path.name}" if done.path else
              f"{corpus}: nothing to compact")


def main() -> None:
    """Console-script entry point."""
    stop_on_sigterm()
    try:
        app()
    except KeyboardInterrupt:
        ERR.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
