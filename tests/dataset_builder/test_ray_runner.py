"""The Ray backend on a local cluster: same corpus as a local build, and a killed worker loses nothing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from narch.dataset_builder.corpus import key_part_name, part_files, read_corpus
from narch.dataset_builder.runners import RunnerError
from narch.dataset_builder.runners.ray_runner import RAY_HINT, import_ray
from narch.dataset_builder.schema import KEY_COLUMNS
from tests.conftest import build_tiny

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
TASK_TITLE = "ray::train_one_network"  # Ray titles a worker process after the task it is executing


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local two-CPU cluster for the module (starting one costs seconds)."""
    ray = import_ray()
    temp_dir = tempfile.mkdtemp(prefix="narch-ray-test-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_missing_ray_is_one_line_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(RunnerError, match=r"pip install -e '\.\[distributed\]'"):
        import_ray()
    assert "\n" not in RAY_HINT


@needs_ray
@pytest.mark.slow
def test_ray_build_equals_a_local_build(tmp_path: Path, ray_cluster: None) -> None:
    local = read_corpus(build_tiny(tmp_path / "local", archs=20, n_train=256))
    out = build_tiny(tmp_path / "ray", archs=20, n_train=256, backend="ray")
    df = read_corpus(out)
    assert df.height == 20 and df["arch_id"].n_unique() == 20
    assert dict(df.select("arch_id", "status").iter_rows()) == dict(local.select("arch_id", "status").iter_rows())
    assert {p.name for p in part_files(out)} == {key_part_name(k) for k in df.select(KEY_COLUMNS).iter_rows()}
    assert set(df["concurrency"]) == {2}, "two one-CPU tasks share the two-CPU node"
    assert set(df["threads"]) == {1}
    assert df["host"].null_count() == 0 and (df.filter(df["status"] == "ok")["train_time_s"] > 0).all()


def _kill_a_running_task(deadline: float) -> int | None:
    """SIGKILL the first worker of this test's cluster seen executing a training task; its pid, or None if none was
    seen in time. Only descendants of this process: other Ray clusters on the host (other test runs) are not ours."""
    me = psutil.Process(os.getpid())
    while time.monotonic() < deadline:
        for proc in me.children(recursive=True):
            try:
                cmd = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if cmd.startswith(TASK_TITLE):
                time.sleep(0.3)  # let it get into training
                try:
                    proc.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    continue
                return proc.pid
        time.sleep(0.05)
    return None


@needs_ray
@pytest.mark.slow
def test_killing_a_worker_loses_nothing(tmp_path: Path, ray_cluster: None) -> None:
    out = tmp_path / "ray"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            build_tiny(out, archs=8, epochs=2, n_train=1024, seed=4, backend="ray")
        except BaseException as e:
            errors.append(e)

    builder = threading.Thread(target=build)
    builder.start()
    killed = _kill_a_running_task(time.monotonic() + 240)
    builder.join(timeout=600)
    assert not builder.is_alive() and not errors, errors
    assert killed is not None, "no worker was seen executing a task"
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    df = read_corpus(out)
    assert df.height == 8 and df["arch_id"].n_unique() == 8, "every planned network exactly once"
    # Ray retries the task of a killed worker (MAX_RETRIES): the killed run is trained again, never stored as an
    # error row (an "error" here would be a kill that got recorded as the network's result)
    assert "error" not in set(df["status"]), df.select("arch_id", "status", "error").to_dicts()
    rerun = build_tiny(out, archs=8, epochs=2, n_train=1024, seed=4, backend="ray")
    assert read_corpus(rerun).height == 8
