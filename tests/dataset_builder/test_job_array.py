"""Job arrays through submitit: its local executor runs ``--shard i/n`` tasks as processes here, into a local folder
or the loopback S3 server, and the shards together hold exactly the networks of one local build."""

from __future__ import annotations

from pathlib import Path

import pytest

from narch.core.errors import SettingError
from narch.dataset_builder.build import BuildConfig
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.runners.job_array import ArrayConfig, shard_configs, submit_array, wait_array
from narch.dataset_builder.shards import Shard
from tests.conftest import build_tiny

pytest.importorskip("submitit")


def _cfg(out: str | Path) -> BuildConfig:
    return BuildConfig(task="mnist1d", out=out, archs=3, protocol=Protocol(epochs=1), n_train=128, threads=1)


def test_the_local_executor_builds_the_same_networks_as_one_build(corpus_at: str, tmp_path: Path) -> None:
    one = build_tiny(tmp_path / "one", archs=3, n_train=128)
    jobs = submit_array(_cfg(corpus_at), ArrayConfig(tasks=2, folder=tmp_path / "logs", executor="local"))
    total = wait_array(jobs)
    assert len(jobs) == 2 and total.done + total.skipped == 3 and total.failed == 0
    arrayed, single = read_corpus(corpus_at), read_corpus(one)
    assert arrayed.height == 3 and sorted(arrayed["arch_id"]) == sorted(single["arch_id"])
    assert set(arrayed["status"]) == set(single["status"]) == {"ok"}
    again = wait_array(submit_array(_cfg(corpus_at), ArrayConfig(tasks=2, folder=tmp_path / "logs",
                                                                 executor="local")))
    assert (again.done, again.skipped) == (0, 3)  # a resubmitted array resumes: nothing trained twice


def test_each_task_gets_its_own_shard_and_a_given_shard_is_refused(tmp_path: Path) -> None:
    cfgs = shard_configs(_cfg(tmp_path / "c"), 4)
    assert [c.shard for c in cfgs] == [Shard(i, 4) for i in range(4)]
    with pytest.raises(SettingError, match="leave --shard out"):
        shard_configs(BuildConfig(task="mnist1d", out=tmp_path / "c", shard=Shard(0, 2)), 2)
    with pytest.raises(SettingError, match="--array-executor"):
        ArrayConfig(tasks=2, folder=tmp_path, executor="pbs")


def test_the_build_command_submits_an_array(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from narch.cli import app

    out = tmp_path / "c"
    r = CliRunner().invoke(app, ["build", "--archs", "2", "--epochs", "1", "--n-train", "128", "--threads", "1",
                                 "--out", str(out), "--array", "2", "--array-executor", "local",
                                 "--array-logs", str(tmp_path / "logs")])
    assert r.exit_code == 0, r.output
    assert "2 trained (ok 2), 0 already present, 2 planned, in 2 array tasks" in r.output
    assert read_corpus(out).height == 2
