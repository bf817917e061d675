"""Job arrays: one build split into ``--shard i/n`` tasks of a Slurm array, submitted through submitit.

Each array task runs the same build with its own shard (``Shard.select``: sha256 of the arch_id mod n, the same on
every host), into the same corpus (a shared folder or an object store's URL), so the tasks together train the
plan once and never write the same part. Scheduling, retries of preempted tasks and logs are submitit's and Slurm's
(nothing home-made); submitit's local executor runs the same array as processes on this machine, which is how it
is tested. Without submitit the equivalent is one ``sbatch --array=0-(n-1)`` line running ``narch build ...
--shard $SLURM_ARRAY_TASK_ID/n`` (README).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from narch.core.checks import check_int
from narch.core.errors import SettingError
from narch.dataset_builder.build import BuildConfig, BuildSummary, prepare_build, run_build
from narch.dataset_builder.runners import RunnerError
from narch.dataset_builder.shards import Shard

SUBMITIT_HINT = "job arrays need submitit: pip install -e '.[cluster]'"
EXECUTORS = ("slurm", "local")


@dataclass(frozen=True)
class ArrayConfig:
    """How the array is submitted: ``tasks`` shards, on Slurm or submitit's local executor, logs in ``folder``."""

    tasks: int
    folder: Path
    executor: str = "slurm"
    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    parallelism: int | None = None  # tasks running at once (Slurm's --array=...%N)
    slurm: dict[str, Any] = field(default_factory=dict)  # any other submitit Slurm parameter (account, qos, mem_gb...)

    def __post_init__(self) -> None:
        check_int("--array", self.tasks, low=1)
        check_int("--slurm-time-min", self.time_min, low=1)
        check_int("--slurm-cpus", self.cpus_per_task, low=1)
        check_int("--slurm-gpus", self.gpus_per_task, low=0)
        if self.parallelism is not None:
            check_int("--array-parallelism", self.parallelism, low=1)
        if self.executor not in EXECUTORS:
            raise SettingError(f"--array-executor {self.executor!r} is not one of {', '.join(EXECUTORS)}")


def shard_configs(cfg: BuildConfig, tasks: int) -> list[BuildConfig]:
    """The build of each array task: ``cfg`` with shard i/tasks."""
    if cfg.shard is not None:
        raise SettingError("--array splits the plan into shards itself; leave --shard out")
    return [replace(cfg, shard=Shard(i, tasks)) for i in range(tasks)]


def run_shard(cfg: BuildConfig) -> dict[str, Any]:
    """One array task (what submitit runs on a node): prepare and run the shard's build; its summary."""
    summary: BuildSummary = run_build(prepare_build(cfg))
    return asdict(summary)


def _executor(array: ArrayConfig) -> Any:
    try:
        import submitit
    except ImportError:
        raise RunnerError(SUBMITIT_HINT) from None
    if array.executor == "local":
        ex = submitit.LocalExecutor(folder=str(array.folder))
        ex.update_parameters(timeout_min=array.time_min)
        return ex
    ex = submitit.AutoExecutor(folder=str(array.folder), cluster="slurm")
    params: dict[str, Any] = {"timeout_min": array.time_min, "cpus_per_task": array.cpus_per_task,
                              "slurm_array_parallelism": array.parallelism or array.tasks}
    if array.partition:
        params["slurm_partition"] = array.partition
    if array.gpus_per_task:
        params["gpus_per_node"] = array.gpus_per_task
    params.update({f"slurm_{k}": v for k, v in array.slurm.items()})
    ex.update_parameters(**params)
    return ex


def submit_array(cfg: BuildConfig, array: ArrayConfig) -> list[Any]:
    """Check every shard's build here (a bad setting fails now, not in n queued tasks), then submit the array; the
    submitit jobs, in shard order (``job.result()`` waits for a task's summary)."""
    configs = shard_configs(cfg, array.tasks)
    prepare_build(configs[0])  # the same checks every task makes: task, device, networks, corpus compatibility
    array.folder.mkdir(parents=True, exist_ok=True)
    ex = _executor(array)
    return list(ex.map_array(run_shard, configs))


def wait_array(jobs: list[Any]) -> BuildSummary:
    """Wait for every task; the summaries added up. A failed task raises RunnerError naming it and its log folder
    (what it trained is saved: submitting the array again resumes)."""
    total = BuildSummary()
    for i, job in enumerate(jobs):
        try:
            s = job.result()
        except Exception as e:  # submitit's FailedJobState or UncompletedJobError: the task's traceback is logged
            raise RunnerError(f"array task {i} (job {job.job_id}) failed: {str(e).splitlines()[0][:200]}; its log: "
                              f"{job.paths.stderr}; rerun to resume") from None
        total.planned += s["planned"]
        total.skipped += s["skipped"]
        total.done += s["done"]
        total.failed += s["failed"]
        total.wall_s = max(total.wall_s, s["wall_s"])
        for k, v in s["statuses"].items():
            total.statuses[k] = total.statuses.get(k, 0) + v
    return total
