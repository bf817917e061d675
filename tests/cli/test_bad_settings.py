"""Every command on bad settings and bad input files: one line naming the option or file and the rule, exit 2, no
traceback, nothing written, and no work started (each case fails before data, torch or a predictor load)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from narch.cli import app
from narch.console import GUARDED
from narch.search_space import SEEDS

runner = CliRunner()
OK_ARCH = SEEDS["tiny"].to_json()

# Input files every case may name ({d}: the folder holding them).
FILES: dict[str, bytes] = {
    "afile": b"not a folder",
    "deep.json": b"[" * 200_000,
    "deep.jsonl": b'{"layers": ' + b"[" * 200_000 + b"\n",
    "utf8.json": b"\xff\xfe" + OK_ARCH.encode(),
    "bigint.json": b'{"layers": [{"op": "conv", "channels": ' + b"9" * 5000 + b"}]}",
    "nan.json": b'{"layers": NaN}',
    "list.json": b"[1, 2]",
    "empty.jsonl": b"\n\n",
    "notnet.jsonl": OK_ARCH.encode() + b'\n{"layers": 5}\n',
    "ok.json": OK_ARCH.encode(),
    "knees.toml": b"[reward.size]\nknees = 5\n",
    "nan.toml": b"[reward]\nw_acc = nan\n",
}

CORPORA = Path(__file__).resolve().parents[2] / "results" / "corpus"  # committed imports (read, never written)
BUILD = ["build", "--quiet", "--epochs", "1", "--n-train", "128"]
LB = ["leaderboard", "--corpus", "{d}", "--out", "{d}/lb"]
SEARCH = ["search", "--predictor", "{d}/nope", "--out", "{d}/s"]
ROOF = ["roofline", "--arch", "tiny"]

# (argv, substrings of the one error line). {d} is the input folder; outputs go below it.
CASES: list[tuple[list[str], tuple[str, ...]]] = [
    ([*BUILD, "--out", "{d}/c", "--threads", "-1"], ("--threads must be in 1..1024, got -1",)),
    ([*BUILD, "--out", "{d}/c", "--threads", "0"], ("--threads must be in 1..1024, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--threads", "5000"], ("--threads must be in 1..1024",)),
    ([*BUILD, "--out", "{d}/c", "--timeout-s", "-1"], ("--timeout-s must be a finite number > 0, got -1.0",)),
    ([*BUILD, "--out", "{d}/c", "--timeout-s", "0"], ("--timeout-s must be a finite number > 0",)),
    ([*BUILD, "--out", "{d}/c", "--timeout-s", "nan"], ("--timeout-s must be a finite number > 0, got nan",)),
    ([*BUILD, "--out", "{d}/c", "--timeout-s", "inf"], ("--timeout-s", "got inf")),
    ([*BUILD, "--out", "{d}/c", "--lr", "nan"], ("protocol lr must be a finite number > 0, got nan",)),
    ([*BUILD, "--out", "{d}/c", "--lr", "inf"], ("protocol lr", "got inf")),
    ([*BUILD, "--out", "{d}/c", "--lr", "0"], ("protocol lr", "> 0")),
    ([*BUILD, "--out", "{d}/c", "--batch-size", "0"], ("protocol batch_size must be >= 1, got 0",)),
    (["build", "--quiet", "--epochs", "0", "--out", "{d}/c"], ("protocol epochs must be >= 1, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--archs", "0"], ("--archs must be >= 1, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--seed", "-1"], ("--seed must be >= 0, got -1",)),
    (["build", "--quiet", "--n-train", "0", "--out", "{d}/c"], ("--n-train must be >= 1, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--concurrency", "0"], ("--concurrency must be >= 1, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--ray-num-cpus", "0"], ("--ray-num-cpus must be >= 1, got 0",)),
    ([*BUILD, "--out", "{d}/c", "--device", "tpu"], ("--device 'tpu' is not one of cpu, cuda, auto",)),
    ([*BUILD, "--out", "{d}/c", "--backend", "slurm"], ("--backend 'slurm' is not one of local, ray",)),
    ([*BUILD, "--out", "{d}/c", "--shard", "3/2"], ("shard 3/2",)),
    ([*BUILD, "--out", "{d}/afile"], ("{d}/afile: --out is a file, not a folder",)),
    ([*BUILD, "--out", "{d}/afile/c"], ("{d}/afile/c: --out lies below {d}/afile, which is a file",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/deep.json"], ("{d}/deep.json: JSON nested too deeply",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/deep.jsonl"], ("{d}/deep.jsonl:1: arch: JSON nested too deeply",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/utf8.json"], ("{d}/utf8.json: not UTF-8 text",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/bigint.json"], ("{d}/bigint.json: unreadable JSON",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/list.json"], ("{d}/list.json[0]: arch: expected a JSON object",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/nan.json"], ("{d}/nan.json",)),
    ([*BUILD, "--out", "{d}/c", "--archs-from", "{d}/empty.jsonl"], ("{d}/empty.jsonl: holds no network",)),
    ([*LB, "--seeds", "0"], ("--seeds must be >= 1, got 0",)),
    ([*LB, "--trials", "-1"], ("--trials must be >= 0, got -1",)),
    ([*LB, "--max-test", "0"], ("--max-test must be >= 1, got 0",)),
    ([*LB, "--sizes", "0,16"], ("--sizes must be >= 1, got 0",)),
    ([*LB, "--sizes", "x"], ("--sizes: 'x' is not an integer",)),
    ([*LB, "--sizes", ","], ("--sizes: empty list",)),
    ([*LB, "--family-trials", "gbdt=-2"], ("--family-trials gbdt must be >= 0, got -2",)),
    ([*LB, "--family-sizes", "gbdt=0:16"], ("--family-sizes gbdt must be >= 1, got 0",)),
    ([*LB, "--where", "epochs"], ("--where: expected NAME=VALUE",)),
    (["leaderboard", "--corpus", "{d}", "--out", "{d}/afile"], ("{d}/afile: --out is a file",)),
    (["leaderboard", "--corpus", "{d}/missing", "--out", "{d}/lb"], ("{d}/missing: no such corpus folder",)),
    ([*SEARCH, "--budget", "0"], ("--budget must be >= 1, got 0",)),
    ([*SEARCH, "--seeds", "0"], ("--seeds must be >= 1, got 0",)),
    ([*SEARCH, "--episode-len", "0"], ("--episode-len must be >= 1, got 0",)),
    ([*SEARCH, "--batch", "-4"], ("--batch must be >= 1, got -4",)),
    ([*SEARCH, "--verify-top", "-1"], ("--verify-top must be >= 0, got -1",)),
    ([*SEARCH, "--compare-seeds", "0"], ("--compare-seeds must be >= 1, got 0",)),
    ([*SEARCH, "--strategy-seeds", "tpe=0"], ("--strategy-seeds tpe must be >= 1, got 0",)),
    ([*SEARCH, "--strategy-seeds", "tpe"], ("--strategy-seeds must look like tpe=3,local=5",)),
    ([*SEARCH, "--strategy", "nope"], ("strategy 'nope' is unknown",)),
    ([*SEARCH, "--reward", "{d}/knees.toml"], ("{d}/knees.toml: reward config: reward.size.knees must be a list",)),
    ([*SEARCH, "--reward", "{d}/nan.toml"], ("{d}/nan.toml: reward config: reward.w_acc must be a finite number",)),
    ([*SEARCH, "--reward", "{d}/missing.toml"], ("{d}/missing.toml: reward config cannot be read",)),
    (["search", "--predictor", "{d}/nope", "--out", "{d}/afile/s"], ("--out lies below {d}/afile",)),
    (["run", "--preset", "nope", "--out", "{d}/r"], ("preset 'nope' is unknown",)),
    (["run", "--out", "{d}/afile"], ("{d}/afile: --out is a file",)),
    ([*ROOF, "--batch-size", "0"], ("--batch-size must be >= 1, got 0",)),
    ([*ROOF, "--epochs", "0"], ("--epochs must be >= 1, got 0",)),
    ([*ROOF, "--n-train", "-5"], ("--n-train must be >= 1, got -5",)),
    ([*ROOF, "--threads", "0"], ("--threads must be >= 1, got 0",)),
    ([*ROOF, "--task", "imagenet"], ("task 'imagenet' is unknown",)),
    ([*ROOF, "--precision", "fp8"], ("precision 'fp8' is not one of",)),
    ([*ROOF, "--devices", "b300"], ("device 'b300' is unknown",)),
    (["roofline", "--arch", "{d}/deep.json"], ("{d}/deep.json: JSON nested too deeply",)),
    (["roofline", "--arch", "{d}/utf8.json"], ("{d}/utf8.json: not UTF-8 text",)),
    (["roofline", "--arch", "{d}/bigint.json"], ("{d}/bigint.json: unreadable JSON",)),
    (["roofline", "--arch", "{d}/nothing"], ("'{d}/nothing' is neither a seed network",)),
    (["hardware", "compare", "--corpus", "{d}", "--out", "{d}/h", "--train-frac", "nan"],
     ("--train-frac must be a finite number > 0 and < 1, got nan",)),
    (["hardware", "compare", "--corpus", "{d}", "--out", "{d}/h", "--train-frac", "1"], ("--train-frac",)),
    (["hardware", "compare", "--corpus", "{d}", "--out", "{d}/afile"], ("{d}/afile: --out is a file",)),
    (["hardware", "compare", "--corpus", "{d}/missing", "--out", "{d}/h"], ("{d}/missing",)),
    (["hardware", "bench", "--quick", "--out", "{d}/afile"], ("{d}/afile: --out is a file",)),
    (["predict", "--predictor", "{d}/nope", "--arch", "tiny", "--epochs", "0"], ("--epochs must be >= 1, got 0",)),
    (["predict", "--predictor", "{d}/nope", "--arch", "tiny", "--batch-size", "-1"], ("--batch-size must be >= 1",)),
    (["predict", "--predictor", "{d}/nope", "--arch", "tiny"], ("{d}/nope",)),
    (["predict", "--predictor", "{d}/nope", "--arch", "{d}/deep.json"], ("{d}/deep.json: JSON nested too deeply",)),
    (["predict", "--predictor", "{d}/nope"], ("give one of --arch and --archs-from",)),
    (["predict", "--predictor", "{d}/nope", "--arch", "tiny", "--archs-from", "{d}/ok.json"],
     ("--arch and --archs-from exclude each other",)),
    (["predict", "--predictor", "{d}/nope", "--archs-from", "{d}/notnet.jsonl"],
     ("{d}/notnet.jsonl:2: arch: 'layers' must be a list",)),
    (["predict", "--predictor", "{d}/nope", "--archs-from", "{d}/deep.jsonl", "--json"],
     ("{d}/deep.jsonl:1: arch: JSON nested too deeply",)),
    (["predict", "--predictor", "{d}/nope", "--archs-from", "{d}/empty.jsonl"], ("{d}/empty.jsonl: holds no network",)),
    (["predict", "--predictor", "{d}/nope", "--archs-from", "{d}/missing.jsonl"], ("{d}/missing.jsonl: no such file",)),
    (["predict", "--predictor", "{d}/nope", "--archs-from", "{d}/ok.json", "--json"], ("{d}/nope",)),
    (["corpus", "info", "{d}/missing"], ("{d}/missing",)),
    (["corpus", "info", "{d}/afile"], ("{d}/afile",)),
    (["corpus", "compact", "{d}/missing"], ("{d}/missing",)),
    (["corpus", "datacard", "{d}/missing", "--out", "{d}/card.md"], ("{d}/missing",)),
    (["corpus", "datacard", "{d}", "--out", "{d}"], ("--out is a folder, not a data card file",)),
    (["corpus", "datacard", "{d}", "--out", "{d}/afile/card.md"], ("{d}/afile: --out's folder is a file",)),
    (["corpus", "migrate", "{d}/missing"], ("{d}/missing: no manifest",)),
    (["import", "nb201", "--out", "{d}/i", "--src", "{d}/missing.csv"], ("{d}/missing.csv",)),
    (["import", "nb201", "--out", "{d}/afile", "--src", "{d}/ok.json"], ("{d}/afile",)),
    (["transfer", "{d}/missing", "--targets", "x", "--out", "{d}/t"], ("{d}/missing: not a folder",)),
    (["zc", "--corpus", "{d}/missing"], ("{d}/missing",)),
    (["zc", "--corpus", "{d}", "--src", "{d}/ok.json"], ("--src applies to --from-naslib only",)),
    (["zc", "--corpus", "{d}", "--from-naslib", "--data-dir", "{d}"], ("--data-dir is for scoring on local data",)),
    (["zc", "--corpus", "{d}", "--from-naslib"], ("{d}/manifest.json",)),
    (["zc", "--corpus", str(CORPORA / "ecnas_4v_titanxp"), "--from-naslib"], ("has no NASLib zero-cost scores",)),
    (["zc", "--corpus", str(CORPORA / "nb101"), "--from-naslib", "--src", "{d}/missing.json"],
     ("{d}/missing.json: no such file",)),
    (["transfer", "{d}", "--targets", "x", "--out", "{d}/afile"], ("{d}/afile: --out is a file",)),
    (["transfer", "{d}", "--targets", "x", "--seeds", "0", "--out", "{d}/t"], ("--seeds must be in 1..1000, got 0",)),
]


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf command of the app by its path (a group is anything with sub-commands)."""
    out: dict[tuple[str, ...], Any] = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out |= _commands(cmd, (*prefix, name))
        else:
            out[(*prefix, name)] = cmd
    return out


COMMANDS = _commands(typer.main.get_command(app))


def _path(argv: list[str]) -> tuple[str, ...]:
    return tuple(argv[:2]) if (argv[0],) not in COMMANDS else (argv[0],)


def test_every_command_is_guarded_and_has_bad_input_cases() -> None:
    assert len(COMMANDS) >= 12
    for path, cmd in COMMANDS.items():
        assert getattr(cmd.callback, GUARDED, False), f"narch {' '.join(path)} is not wrapped by console.guarded"
    assert {_path(argv) for argv, _ in CASES} == set(COMMANDS), "every command is attacked below"


def _snapshot(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    for name, body in FILES.items():
        (d / name).write_bytes(body)
    (d / "manifest.json").write_text(json.dumps({"not": "a corpus"}))  # {d} as a corpus: a refused manifest
    return d


@pytest.mark.parametrize(("argv", "expect"), CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_bad_setting_is_one_line_and_writes_nothing(inputs: Path, argv: list[str], expect: tuple[str, ...]) -> None:
    before = _snapshot(inputs)
    res = runner.invoke(app, [a.format(d=inputs) for a in argv])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("narch: error: "), res.stderr
    for e in expect:
        assert e.format(d=inputs) in line, line
    assert _snapshot(inputs) == before, "a refused command wrote nothing"


def test_a_bad_build_setting_fails_before_torch_or_ray_load(tmp_path: Path) -> None:
    code = ("import sys, runpy\n"
            f"sys.argv = ['narch', 'build', '--threads', '-1', '--out', {str(tmp_path / 'c')!r}]\n"
            "try:\n    runpy.run_module('narch.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules, 'ray' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.stdout.split() == ["2", "False", "False"], (res.stdout, res.stderr)
    assert res.stderr.strip() == "narch: error: --threads must be in 1..1024, got -1"
    assert not (tmp_path / "c").exists()
