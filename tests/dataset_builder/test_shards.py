"""Shards partition a plan and together build the same corpus as one build; per-run parts are idempotent."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from narch.dataset_builder.build import BuildConfig, prepare_build, run_context
from narch.dataset_builder.compaction import compact_corpus
from narch.dataset_builder.corpus import create_corpus, part_files, read_corpus, write_part
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.runners.worker import record_failure, run_one
from narch.dataset_builder.shards import Shard
from narch.dataset_builder.tasks import load_task
from narch.search_space import plan_networks
from tests.conftest import build_tiny


def test_shards_partition_a_plan_deterministically() -> None:
    plan = plan_networks(60, seed=5)
    shards = [Shard(i, 4).select(plan) for i in range(4)]
    ids = [[item.net.arch_id for item in s] for s in shards]
    assert sorted(a for s in ids for a in s) == sorted(item.net.arch_id for item in plan)
    assert all(len(s) > 0 for s in ids), "60 networks should land in every one of 4 shards"
    assert ids == [[item.net.arch_id for item in Shard(i, 4).select(plan)] for i in range(4)]
    assert Shard(0, 1).select(plan) == plan


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0", "1/2/3"])
def test_bad_shard_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        Shard.parse(text)


@pytest.mark.slow
def test_four_shards_in_one_folder_equal_one_build(tmp_path: Path) -> None:
    whole = read_corpus(build_tiny(tmp_path / "whole", archs=8, n_train=256))
    sharded = tmp_path / "sharded"
    for i in range(4):
        build_tiny(sharded, archs=8, n_train=256, shard=Shard(i, 4))
    parts = read_corpus(sharded)
    assert parts.height == 8 and parts["arch_id"].n_unique() == 8
    assert dict(parts.select("arch_id", "status").iter_rows()) == dict(whole.select("arch_id", "status").iter_rows())
    build_tiny(sharded, archs=8, n_train=256, shard=Shard(2, 4))  # a rerun of a shard resumes: nothing new
    assert read_corpus(sharded).height == 8


def test_a_retried_run_keeps_its_own_part(tmp_path: Path) -> None:
    cfg = BuildConfig(task="mnist1d", out=tmp_path / "c", archs=1, protocol=Protocol(epochs=1), n_train=128, threads=1)
    pb = prepare_build(cfg)
    ctx = run_context(pb, load_task("mnist1d", n_train=128))
    ctx.out.mkdir(parents=True)
    (item,) = pb.plan
    first = run_one(ctx, item)
    assert run_one(ctx, item) is None  # the same run again (a Ray retry after its worker died past the write)
    assert [p.name for p in part_files(ctx.out)] == [ctx.part_path(item.net.arch_id).name]
    kept = record_failure(ctx, item, "WorkerCrashedError: the worker died")  # the part exists: no error row over it
    assert kept["status"] == first["status"] == "ok"
    assert pq.read_table(ctx.part_path(item.net.arch_id)).num_rows == 1
    ctx.part_path(item.net.arch_id).unlink()
    failed = record_failure(ctx, item, "WorkerCrashedError: the worker died")
    assert failed["status"] == "error" and "died" in failed["error"]
    assert len(part_files(ctx.out)) == 1 and pq.read_table(part_files(ctx.out)[0]).num_rows == 1
    create_corpus(ctx.out, pb.manifest)
    write_part(ctx.out, [{"arch_id": "0" * 16, "status": "error"}])  # another run: two parts to merge
    merged = compact_corpus(ctx.out).path
    assert run_one(ctx, item) is None and record_failure(ctx, item, "late") is None  # the merged part holds it
    assert part_files(ctx.out) == [merged]
