"""Several trainings at once on one machine: a pool of spawned processes, each loading the task data once."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from itertools import islice
from typing import Any

from narch.dataset_builder.runners import RunnerError
from narch.dataset_builder.runners.worker import RunContext, record_failure, run_one
from narch.search_space import PlannedNet

_CTX: RunContext | None = None


class WorkerDied(RunnerError):
    """A pool process died (killed, out of host memory); finished runs are saved and a rerun resumes."""


def default_threads(concurrency: int) -> int:
    """Torch threads per process so that N processes share this process's cores without oversubscription."""
    return max(1, len(os.sched_getaffinity(0)) // concurrency)


def _init(ctx: RunContext) -> None:
    global _CTX
    _CTX = ctx
    # Ctrl-C and SIGTERM (a scheduler signalling the process group) are the parent's: it stops handing out work and
    # waits for the runs in flight, which finish and write their parts (the executor's shutdown sends no signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _run(item: PlannedNet) -> dict[str, Any] | None:
    assert _CTX is not None, "pool process was not initialised"
    return run_one(_CTX, item)


def run_pool(ctx: RunContext, todo: list[PlannedNet], record: Callable[[dict[str, Any] | None], None]) -> None:
    """Run ``todo`` on ``ctx.concurrency`` processes; each row is recorded as it finishes. On Ctrl-C the runs in
    flight finish and are written, the rest are cancelled, and KeyboardInterrupt propagates."""
    if ctx.threads is None:
        ctx = replace(ctx, threads=default_threads(ctx.concurrency))
    workers = min(ctx.concurrency, len(todo))
    ex = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),  # fork after torch (and CUDA) init is unsafe
        initializer=_init,
        initargs=(ctx,),
    )
    futures: dict[Future[dict[str, Any] | None], PlannedNet] = {}
    recorded: set[Future[dict[str, Any] | None]] = set()

    def finish(fut: Future[dict[str, Any] | None]) -> None:
        recorded.add(fut)
        try:
            row = fut.result()
        except BrokenProcessPool as e:
            raise WorkerDied(
                f"a build process died ({e}); finished runs are saved, rerun the same command to resume"
            ) from None
        except Exception as e:  # raised outside train_network (which turns training failures into rows)
            row = record_failure(ctx, futures[fut], f"{type(e).__name__}: {e}")
        record(row)

    queue = iter(todo)
    try:
        # Only as many runs as processes are handed out, so Ctrl-C leaves nothing queued inside the executor
        # (items already in its call queue cannot be cancelled).
        futures.update((ex.submit(_run, item), item) for item in islice(queue, workers))
        running = set(futures)
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                finish(fut)
                item = next(queue, None)
                if item is not None:
                    new = ex.submit(_run, item)
                    futures[new] = item
                    running.add(new)
    except KeyboardInterrupt:
        ex.shutdown(wait=True, cancel_futures=True)  # the runs in flight finish and write their parts
        for fut in futures:
            if fut not in recorded and fut.done() and not fut.cancelled():
                finish(fut)
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
