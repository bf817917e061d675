"""Bad input: a one-line error naming the problem, a non-zero exit, and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import MANIFEST, part_files, read_corpus
from narch.search_space import SEEDS

runner = CliRunner()


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _run_fails(args: list[str], *expect: str) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code != 0, res.output
    msg = res.output.strip()
    assert len(msg.splitlines()) == 1, f"error should be one line, got:\n{msg}"
    assert msg.startswith("narch: error:")
    for e in expect:
        assert e in msg, msg
    return msg


def _layer(**kw: object) -> dict[str, object]:
    return {"op": "conv", "channels": 8, "kernel": 3, "stride": 1, "units": 0, "dropout_pct": 0, "inputs": [], **kw}


BAD_ARCHS = {
    "malformed": ('{"layers": [', "malformed"),
    "unknown_op": (json.dumps({"layers": [_layer(op="convv")]}), "unknown op 'convv'"),
    "zero_channels": (json.dumps({"layers": [_layer(channels=0)]}), "channels must be in"),
    "negative_channels": (json.dumps({"layers": [_layer(channels=-4)]}), "channels must be in"),
    "add_later": (
        json.dumps({"layers": [_layer(), _layer(), {"op": "add", "inputs": [0, 3]}]}),
        "references a later layer 3",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHS))
def test_bad_arch_file(tmp_path: Path, case: str) -> None:
    text, expect = BAD_ARCHS[case]
    f = tmp_path / "nets.jsonl"
    f.write_text(text + "\n")
    out = tmp_path / "corpus"
    msg = _run_fails(["build", "--archs-from", str(f), "--out", str(out), "--epochs", "1", "--quiet"], expect)
    assert "nets.jsonl:1" in msg
    assert not out.exists()


def test_missing_cifar_folder(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    _run_fails(
        ["build", "--task", "cifar10", "--data-dir", str(tmp_path / "nope"), "--out", str(out), "--quiet"],
        "cifar10 folder",
        "does not exist",
    )
    assert not out.exists()


def test_unknown_task(tmp_path: Path) -> None:
    _run_fails(["build", "--task", "imagenet", "--out", str(tmp_path / "c"), "--quiet"], "task 'imagenet' is unknown")
    assert not (tmp_path / "c").exists()


def test_manifest_with_other_schema_version(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    m = json.loads((corpus / MANIFEST).read_text())
    m["corpus_schema_version"] = 7
    (corpus / MANIFEST).write_text(json.dumps(m))
    before = _snapshot(corpus)
    _run_fails(
        ["build", "--out", str(corpus), "--archs", "8", "--epochs", "1", "--n-train", "512", "--quiet"],
        "schema version 7",
        MANIFEST,
    )
    _run_fails(["corpus", "info", str(corpus)], "schema version 7")
    assert _snapshot(corpus) == before


def test_corrupt_part_named_and_flag_reads_the_rest(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    victim = part_files(corpus)[0]
    victim.write_bytes(b"not parquet at all")
    before = _snapshot(corpus)
    _run_fails(["corpus", "info", str(corpus)], victim.name, "corrupt part")
    _run_fails(
        ["build", "--out", str(corpus), "--archs", "6", "--epochs", "1", "--n-train", "512", "--quiet"], victim.name
    )
    assert _snapshot(corpus) == before
    res = runner.invoke(app, ["corpus", "info", str(corpus), "--skip-corrupt"])
    assert res.exit_code == 0, res.output
    assert "rows: 5" in res.output


def test_corpus_info_summarises(tiny_corpus: Path) -> None:
    res = runner.invoke(app, ["corpus", "info", str(tiny_corpus)])
    assert res.exit_code == 0, res.output
    assert "rows: 6" in res.output and "ok: 6" in res.output and "mnist1d" in res.output
    assert "train_time_s" in res.output and "bytes" in res.output


def test_seed_networks_are_valid_arch_files(tmp_path: Path) -> None:
    f = tmp_path / "ok.jsonl"
    f.write_text(SEEDS["tiny"].to_json() + "\n")
    out = tmp_path / "c"
    res = runner.invoke(app, ["build", "--archs-from", str(f), "--out", str(out), "--epochs", "1", "--n-train", "128",
                              "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"{out}: 1 trained (ok 1), 0 already present, 1 planned" in res.stdout
    rows = read_corpus(out)
    assert rows.select("arch_id", "status", "arch_json").rows() == [
        (SEEDS["tiny"].arch_id, "ok", SEEDS["tiny"].to_json())]


def test_repeated_networks_in_an_arch_file_are_trained_once_and_reported(tmp_path: Path) -> None:
    f = tmp_path / "nets.jsonl"
    f.write_text((SEEDS["tiny"].to_json() + "\n") * 3)
    out = tmp_path / "c"
    res = runner.invoke(app, ["build", "--archs-from", str(f), "--out", str(out), "--epochs", "1", "--n-train", "128",
                              "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"{f}: 2 repeated network(s) left out (each is trained once)" in res.stderr
    assert f"{out}: 1 trained (ok 1), 0 already present, 1 planned" in res.stdout
    assert read_corpus(out)["arch_id"].to_list() == [SEEDS["tiny"].arch_id]
