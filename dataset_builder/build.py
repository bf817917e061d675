"""Build a corpus: plan networks, train each for real, write one part per run; resume by default.

Runs execute in this process, in a local process pool (``concurrency`` > 1) or as Ray tasks (``backend="ray"``);
a ``shard`` keeps the part of the plan one job of an array owns. ``out`` is a local folder or an object store's URL
(``s3://bucket/prefix``; see narch.core.store), with the same resume and de-duplication by run key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from narch.core.checks import check_float, check_int, check_out_folder
from narch.core.errors import SettingError
from narch.core.provenance import builder_version, git_rev, now_iso
from narch.core.store import FsspecStore, Location, as_location, is_url
from narch.dataset_builder.contention import TimingGuard
from narch.dataset_builder.corpus import Manifest, create_corpus, existing_keys, open_corpus
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.shards import Shard
from narch.dataset_builder.tasks import TASKS, TaskData, TaskError, check_cifar_dir, describe_task, load_task
from narch.hardware.device import resolve_device
from narch.search_space import LIMITS, SEARCH_SPACE_VERSION, Network, PlannedNet, load_networks, plan_networks, validate

if TYPE_CHECKING:  # the worker imports torch: a config is checked (and refused) before torch loads
    from narch.dataset_builder.runners.worker import RunContext

BACKENDS = ("local", "ray")
DEVICES = ("cpu", "cuda", "auto")
MAX_THREADS = 1024  # far above any host's cores: a larger count is a typo, not a setting


@dataclass(frozen=True)
class BuildConfig:
    """Everything `narch build` needs."""

    task: str
    out: Location  # a folder, or an object store's URL (s3://bucket/prefix)
    archs: int = 16
    seed: int = 0
    protocol: Protocol = field(default_factory=Protocol)
    archs_from: Path | None = None
    device: str = "cpu"
    n_train: int | None = None
    data_dir: Path | None = None
    threads: int | None = None
    timeout_s: float | None = None
    skip_corrupt: bool = False
    shard: Shard | None = None
    backend: str = "local"
    concurrency: int = 1  # trainings at once on the device (local processes, or Ray's GPU fraction 1/N)
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    wait_quiet: bool = False  # hold each timed run until other work leaves the cores (dataset_builder/contention.py)

    def __post_init__(self) -> None:
        """Every setting checked now, so a bad one fails the command at once instead of becoming a stored row."""
        if self.task not in TASKS:
            raise TaskError(f"task {self.task!r} is unknown (known: {', '.join(TASKS)})")
        check_int("--archs", self.archs, low=1)
        check_int("--seed", self.seed, low=0)
        if self.device not in DEVICES:
            raise SettingError(f"--device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.backend not in BACKENDS:
            raise SettingError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        check_int("--concurrency", self.concurrency, low=1)
        if self.n_train is not None:
            check_int("--n-train", self.n_train, low=1)
        if self.threads is not None:
            check_int("--threads", self.threads, low=1, high=MAX_THREADS)
        if self.timeout_s is not None:
            check_float("--timeout-s", self.timeout_s, low=0, low_open=True)
        if self.ray_num_cpus is not None:
            check_int("--ray-num-cpus", self.ray_num_cpus, low=1)
        if isinstance(self.out, str):
            object.__setattr__(self, "out", as_location(self.out))
        if not is_url(self.out):
            check_out_folder("--out", self.out)


@dataclass
class BuildSummary:
    """What a build did."""

    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    interrupted: bool = False
    contended: int = 0  # runs timed while other work used a quarter of a core or more
    retimed: int = 0  # runs trained again because other work competed (--wait-quiet)
    wall_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        """Count one finished run."""
        self.done += 1
        self.statuses[row["status"]] = self.statuses.get(row["status"], 0) + 1
        self.failed += row["status"] != "ok"


@dataclass(frozen=True)
class PreparedBuild:
    """A checked build: every input validated before anything is written."""

    config: BuildConfig
    plan: list[PlannedNet]
    manifest: Manifest
    device_kind: str
    duplicates: int = 0  # networks of the --archs-from file that repeat an earlier one (dropped: trained once)


def prepare_build(cfg: BuildConfig) -> PreparedBuild:
    """Validate task, device, networks and corpus compatibility; raises before writing anything."""
    if cfg.task == "cifar10":
        check_cifar_dir(cfg.data_dir)
    plan, duplicates = _plan(cfg)  # a bad network file fails before the data, torch or Ray load
    data = load_task(cfg.task, n_train=cfg.n_train, data_dir=cfg.data_dir, data_seed=cfg.protocol.data_seed)
    kind = _check_backend(cfg)
    for item in plan:
        validate(item.net, limits=LIMITS, input_shape=data.input_shape, n_classes=data.n_classes)
    manifest = Manifest(
        task=cfg.task,
        protocol=cfg.protocol.to_dict(),
        protocol_hash=cfg.protocol.protocol_hash,
        search_space_version=SEARCH_SPACE_VERSION,
        builder_version=builder_version(),
        created_at=now_iso(),
        data_dir=None if cfg.data_dir is None else str(cfg.data_dir),
    )
    if is_url(cfg.out):
        why = FsspecStore(str(cfg.out)).unreachable()
        if why:
            raise SettingError(f"{cfg.out}: --out cannot be written ({why})")
    open_corpus(cfg.out, manifest)
    return PreparedBuild(cfg, plan, manifest, kind, duplicates)


def _plan(cfg: BuildConfig) -> tuple[list[PlannedNet], int]:
    """The planned networks of this shard, and how many repeats of the --archs-from file were left out."""
    duplicates = 0
    if cfg.archs_from is not None:
        nets = load_networks(cfg.archs_from)
        first: dict[str, Network] = {}
        for n in nets:
            first.setdefault(n.arch_id, n)
        duplicates = len(nets) - len(first)
        plan = [PlannedNet(n) for n in first.values()]
    else:
        plan = plan_networks(cfg.archs, cfg.seed)
    return (plan if cfg.shard is None else cfg.shard.select(plan)), duplicates


def _check_backend(cfg: BuildConfig) -> str:
    """Check backend options; the device kind runs will use."""
    if cfg.backend != "ray":
        if cfg.ray_address is not None or cfg.ray_num_cpus is not None:
            raise SettingError("--address and --ray-num-cpus need --backend ray")
        return resolve_device(cfg.device)
    from narch.dataset_builder.runners.ray_runner import import_ray

    import_ray()
    if cfg.ray_num_cpus is not None and cfg.ray_address is not None:
        raise SettingError("--ray-num-cpus sizes a local cluster (not one given by --address)")
    if cfg.device == "auto":
        raise SettingError("--backend ray needs --device cpu or cuda (the cluster's GPUs decide, not this host's)")
    if cfg.device == "cpu" and cfg.concurrency > 1:
        raise SettingError("--concurrency with --backend ray shares a GPU; on CPU each task takes --threads CPUs and "
                         "Ray runs as many as the nodes have (size a local cluster with --ray-num-cpus)")
    if cfg.ray_address is None:  # a local cluster: this host's devices are the cluster's
        return resolve_device(cfg.device)
    return resolve_device("cpu") if cfg.device == "cpu" else "cuda"  # cuda is checked against the cluster


ProgressFn = Callable[[BuildSummary, dict[str, Any] | None], None]


def run_context(pb: PreparedBuild, data: TaskData) -> RunContext:
    """What every run of this build shares (computed once, in this process)."""
    from narch.dataset_builder.runners.worker import RunContext

    cfg, p = pb.config, pb.config.protocol
    base = {
        **describe_task(data),
        "task": cfg.task,
        "protocol_hash": p.protocol_hash,
        "epochs": p.epochs,
        "batch_size": p.batch_size,
        "optimizer": p.optimizer,
        "lr": p.lr,
        "seed": cfg.seed,
        "latency_batch_n": p.latency_batch_n,
        "git_rev": git_rev(),
        "builder_version": builder_version(),
    }
    return RunContext(
        out=cfg.out,
        task=cfg.task,
        n_train=cfg.n_train,
        data_dir=cfg.data_dir,
        protocol=p,
        seed=cfg.seed,
        timeout_s=cfg.timeout_s,
        device_kind=pb.device_kind,
        threads=cfg.threads,
        concurrency=cfg.concurrency,
        base=base,
        data=data,
    )


def run_build(pb: PreparedBuild, on_progress: ProgressFn | None = None) -> BuildSummary:
    """Train every planned network not yet in the corpus; Ctrl-C stops cleanly between atomic writes."""
    from narch.dataset_builder.runners.worker import record_failure, run_one

    cfg, p = pb.config, pb.config.protocol
    data = load_task(cfg.task, n_train=cfg.n_train, data_dir=cfg.data_dir, data_seed=p.data_seed)
    create_corpus(cfg.out, pb.manifest)
    have = existing_keys(cfg.out, skip_corrupt=cfg.skip_corrupt)
    summary = BuildSummary(planned=len(pb.plan))
    todo = []
    for item in pb.plan:
        key = (item.net.arch_id, cfg.task, data.n_train, p.protocol_hash, cfg.seed, pb.device_kind)
        if key in have:
            summary.skipped += 1
        else:
            todo.append(item)
    if on_progress:
        on_progress(summary, None)
    if not todo:
        return summary
    ctx = run_context(pb, data)
    t0 = time.perf_counter()

    def record(row: dict[str, Any] | None) -> None:
        if row is None:  # stored meanwhile by another build into this folder: nothing trained here
            summary.skipped += 1
        else:
            summary.add(row)
        summary.wall_s = time.perf_counter() - t0
        if on_progress:
            on_progress(summary, row)

    try:
        if cfg.backend == "ray":
            from narch.dataset_builder.runners.ray_runner import run_ray

            run_ray(ctx, todo, record, address=cfg.ray_address, num_cpus=cfg.ray_num_cpus)
        elif cfg.concurrency > 1:
            from narch.dataset_builder.runners.local_pool import run_pool

            run_pool(ctx, todo, record)
        else:
            guard = TimingGuard(wait=cfg.wait_quiet)
            guard.before_first()
            for item in todo:
                try:
                    row = run_one(ctx, item, retime=guard.retime)
                except OSError:  # the corpus cannot be written (disk full, read-only): stop, never store the run as
                    raise        # an error row that a rerun with room would then skip
                except Exception as e:  # outside train_network (cost model): a row, never a dead build
                    row = record_failure(ctx, item, f"{type(e).__name__}: {e}")
                if row is not None:
                    guard.after(row)
                summary.contended, summary.retimed = guard.contended, guard.retimed
                record(row)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.wall_s = time.perf_counter() - t0
    return summary
