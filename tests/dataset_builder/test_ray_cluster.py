"""A multi-node Ray cluster simulated on this machine (``ray.cluster_utils.Cluster``: a head and three worker nodes,
each its own raylet) building into the loopback S3 server: the same networks and statuses as a local build, a
worker node removed mid-build loses nothing (Ray retries its tasks elsewhere), and each row names its node."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from narch.dataset_builder.corpus import part_files, read_corpus
from narch.dataset_builder.runners.ray_runner import import_ray
from tests.conftest import build_tiny

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")]
ARCHS, N_TRAIN = 6, 256


@pytest.fixture
def cluster(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Head (no CPUs: it only schedules) plus three one-CPU worker nodes; the driver connected to it. Nodes inherit
    this process's environment: the S3 endpoint and a short lease, so a removed node's run lock lapses soon."""
    monkeypatch.setenv("NARCH_LEASE_S", "3")
    import_ray()
    import ray
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="narch-rayc-", dir="/tmp")
    # Cluster writes the address file into Ray's default temp folder whatever temp_dir says, and does not create it:
    # on a fresh machine where no Ray has run yet, the head fails with FileNotFoundError without this.
    Path("/tmp/ray").mkdir(exist_ok=True)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                      "temp_dir": temp_dir})
    workers = [c.add_node(num_cpus=1) for _ in range(3)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_three_nodes_into_the_object_store_lose_nothing_when_one_dies(cluster: Any, tmp_path: Path) -> None:
    import ray

    from narch.testing.object_store import new_bucket

    c, workers = cluster
    out = f"{new_bucket()}/corpus"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            build_tiny(out, archs=ARCHS, n_train=N_TRAIN, backend="ray")
        except BaseException as e:
            errors.append(e)

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and builder.is_alive() and not part_files(out):
        time.sleep(0.2)
    assert builder.is_alive(), "the build finished before a node could be removed; give it more work"
    victim = workers[0]
    killed_id = victim.node_id
    c.remove_node(victim, allow_graceful=False)  # its raylet and workers die, tasks in flight with them
    builder.join(timeout=600)
    assert not builder.is_alive() and not errors, errors

    df = read_corpus(out)
    assert df.height == ARCHS and df["arch_id"].n_unique() == ARCHS, "every planned network exactly once"
    local = read_corpus(build_tiny(tmp_path / "local", archs=ARCHS, n_train=N_TRAIN))
    assert dict(df.select("arch_id", "status").iter_rows()) == dict(local.select("arch_id", "status").iter_rows())
    nodes = {n["NodeID"] for n in ray.nodes()}
    assert df["worker_node"].null_count() == 0
    assert {v.removeprefix("ray:") for v in df["worker_node"]} <= nodes  # the dead node's finished runs too
    assert df["worker_node"].n_unique() >= 2, "the runs were spread over the nodes"
    assert local["worker_node"].null_count() == local.height  # one machine: no node
    assert killed_id in nodes
