"""`narch leaderboard --refreeze` SIGKILLed at 20 moments always leaves a loadable frozen predictor, old or new.

Real subprocesses on a tiny corpus. Twelve kills at fixed delays spread over a refreeze (startup, reading, the refit,
the publish), and eight injected right after each step of the publish (``narch.core.files.publish_dir``): a payload
and the manifest landing in the temporary folder, each of its renames, the old folder's deletion, and two crashes in
a row (the second during the recovery of the first). The injection patches ``os`` / ``shutil`` in the child only
(``HOOK`` below), so nothing in the project's code knows about it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.predictors.artefacts import Artefact, load_artefact
from narch.search_space import SEEDS

pytestmark = pytest.mark.slow

# Kill the child right after the first call of os.<fn> (or during shutil.rmtree) whose "src -> dst" matches KILL_RE.
HOOK = r"""
import os, re, shutil, signal, sys
fn, pattern = os.environ.get("KILL_FN"), os.environ.get("KILL_RE")
if fn:
    def hit(*paths):
        return re.search(pattern, " -> ".join(os.fspath(p) for p in paths)) is not None
    if fn == "rmtree":
        real_rmtree = shutil.rmtree
        def rmtree(path, *a, **k):
            if hit(path):
                for d, _, files in os.walk(path):
                    if files:
                        os.unlink(os.path.join(d, files[0]))  # part of the tree is gone: killed mid-deletion
                        break
                os.kill(os.getpid(), signal.SIGKILL)
            return real_rmtree(path, *a, **k)
        shutil.rmtree = rmtree
    else:
        real = getattr(os, fn)
        def patched(src, dst, *a, **k):
            out = real(src, dst, *a, **k)
            if hit(src, dst):
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        setattr(os, fn, patched)
sys.argv = ["narch", *sys.argv[1:]]
from narch.cli import main
main()
"""

# (os function, regex on "src -> dst"): each publish step; the last two run after the crash before them
INJECTED = [
    ("replace", r"\.frozen\.tmp-"),                          # the first payload is in the temporary folder
    ("replace", r"\.frozen\.tmp-\w+/manifest\.json$"),       # the manifest too (not yet verified)
    ("rename", r"\.frozen\.tmp-\w+ -> .*\.frozen\.new-"),    # complete and verified, not yet in place
    ("rename", r"/frozen -> .*\.frozen\.old-"),              # the old artefact has just left its place
    ("rename", r"\.frozen\.new-\w+ -> .*/frozen$"),          # the new one is in place, the old not yet deleted
    ("rmtree", r"\.frozen\.old-"),                           # part of the old one deleted
    ("rename", r"/frozen -> .*\.frozen\.old-"),              # again, then the next run is killed in its recovery:
    ("rename", r"\.frozen\.new-\w+ -> .*/frozen$"),          # rolling the new folder forward
]
FRACTIONS = np.linspace(0.08, 1.0, 12)


def _args(corpus: Path, out: Path) -> list[str]:
    return ["leaderboard", "--corpus", str(corpus), "--out", str(out), "--predictors", "mean,ridge", "--seeds", "1",
            "--trials", "0", "--sizes", "4"]


def _refreeze(corpus: Path, out: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", HOOK, *_args(corpus, out), "--refreeze"], cwd=out.parent,
                            env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _loadable(out: Path) -> Artefact:
    art = load_artefact(out / "frozen")  # a reader finding a publish cut short recovers it first
    assert set(art.targets) == {"val_acc", "train_time_s"}
    preds = art.predict_networks([SEEDS["lenet"]], art.manifest["descriptors"])
    assert all(np.isfinite(v).all() for v in preds.values())
    return art


def test_refreeze_killed_at_20_moments_leaves_a_loadable_predictor(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb"
    r = CliRunner().invoke(app, _args(tiny_corpus, out))
    assert r.exit_code == 0, r.output
    digests = [_loadable(out).digest]

    t0 = time.monotonic()
    proc = _refreeze(tiny_corpus, out)
    _, err = proc.communicate(timeout=300)
    duration = time.monotonic() - t0
    assert proc.returncode == 0, err.decode()
    digests.append(_loadable(out).digest)
    assert digests[1] != digests[0]  # a refreeze writes a new artefact (its manifest has a new created_at)

    moments = [("delay", f"{f * duration:.2f}") for f in FRACTIONS] + INJECTED
    killed = 0
    for kind, arg in moments:
        previous = digests[-1]
        if kind == "delay":
            proc = _refreeze(tiny_corpus, out)
            try:
                proc.wait(timeout=float(arg))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            proc = _refreeze(tiny_corpus, out, KILL_FN=kind, KILL_RE=arg)
            proc.wait(timeout=300)
            assert proc.returncode == -signal.SIGKILL, f"{kind} {arg}: not reached ({proc.stderr.read().decode()})"
        killed += proc.returncode == -signal.SIGKILL
        if (kind, arg) == INJECTED[-2]:
            continue  # the next moment crashes again before anything reads the folder
        art = _loadable(out)
        assert art.digest == previous or art.digest not in digests, (kind, arg)  # the old one or a new one
        digests.append(art.digest)
    assert killed >= 14, f"only {killed} of {len(moments)} runs were killed before they finished"

    proc = _refreeze(tiny_corpus, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    _loadable(out)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".frozen")], "no temporary, old or lock sibling"
