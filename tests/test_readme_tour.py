"""Every command of the README's tour runs as written, on tiny sizes: the `narch` lines of its bash blocks, in order,
with counts shrunk (networks, epochs, budgets, seeds), `runs/` redirected into tmp_path and `...` standing for the
block's first build. A command this machine cannot run (no GPU, no CIFAR-10 folder, no Ray cluster) must be listed in
CANNOT_RUN with its reason, so a new README command is either run here or named here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import readme_blocks

ROOT = Path(__file__).resolve().parents[1]
CANNOT_RUN = {  # command prefix -> why it is not run here
    "narch build --task cifar10": "needs a local CIFAR-10 folder and a CUDA device",
    "narch build ... --backend ray --address auto": "needs a running Ray cluster (test_ray_runner.py starts one)",
}
SHRINK = [  # (pattern, replacement): tiny but real
    (r"--archs (?!30\b)\d{2,}", "--archs 3"), (r"--epochs \d+", "--epochs 1"),
    (r"--budget \d+", "--budget 30"), (r"--seeds \d+", "--seeds 1"), (r"--verify-top \d+", "--verify-top 1"),
    (r"--k [\d,]+", "--k 10"), (r"--n-train \d+", "--n-train 200"), (r"--closed-loop \d+", "--closed-loop 2"),
    (r"--per-round \d+", "--per-round 1"),
]


def tour_commands() -> list[str]:
    """The tour's `narch` command lines: comments dropped, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A short tour\n"):text.index("### The search space")]
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("narch "):
                cmds.append(line)
    return cmds


def _adapt(cmd: str, tmp: Path, first_build: str) -> str:
    if cmd.startswith("narch build ..."):
        cmd = first_build + cmd.removeprefix("narch build ...")
    for pat, rep in SHRINK:
        cmd = re.sub(pat, rep, cmd)
    cmd = cmd.replace("runs/old", "runs/mnist1d")  # the README's placeholder for a corpus built before zc existed
    return cmd.replace("runs/", f"{tmp}/runs/").replace("my_nets.jsonl", f"{tmp}/my_nets.jsonl")


@pytest.mark.slow
def test_every_tour_command_runs_as_written_on_tiny_sizes(tmp_path: Path) -> None:
    cmds = tour_commands()
    assert len(cmds) >= 15, cmds
    (jsonl,) = readme_blocks("## A short tour", lang="jsonl")
    (tmp_path / "my_nets.jsonl").write_text(jsonl)
    first_build = next(c for c in cmds if c.startswith("narch build --task mnist1d"))
    first_build = re.sub(r"--out \S+", "--out runs/flags", first_build)
    cmds = [c.replace("--archs 200", "--archs 30") for c in cmds]  # the main corpus: enough to split and rank
    env = {**os.environ, "NARCH_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    narch = str(Path(sys.executable).with_name("narch"))
    skipped, ran = set(), []
    for cmd in cmds:
        reason = next((r for prefix, r in CANNOT_RUN.items() if cmd.startswith(prefix)), None)
        if reason:
            skipped.add(next(p for p in CANNOT_RUN if cmd.startswith(p)))
            continue
        line = _adapt(cmd, tmp_path, first_build)
        argv = shlex.split(line)
        if argv[:3] == ["narch", "hardware", "bench"]:
            argv += ["--quick", "--cache"]  # every stage on small buffers, cached for `local` (the full one: minutes)
        res = subprocess.run([narch, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{cmd}\n(run as: {shlex.join(argv)})\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        ran.append(cmd)
    assert skipped == set(CANNOT_RUN), "a CANNOT_RUN entry matches no README command any more"
    assert len(ran) == len(cmds) - len([c for c in cmds if any(c.startswith(p) for p in CANNOT_RUN)])
    assert (tmp_path / "runs" / "lb" / "frozen").is_dir() and (tmp_path / "runs" / "search").is_dir()
