"""Silent misuse made loud: a leaderboard ranked on a tiny test set and a prediction for a task the predictor was
never fitted on each warn in one line on stderr (and the library's predict warns with TaskMismatchWarning)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.predict_cli import MIN_TEST_ARCHS, small_test_set
from narch.query import TaskMismatchWarning, predict, task_mismatch
from narch.search_space import SEEDS

runner = CliRunner()


@pytest.fixture(scope="module")
def board(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A leaderboard on the six-network corpus (a test set of two) and its stderr."""
    out = tmp_path_factory.mktemp("guard") / "lb"
    r = runner.invoke(app, ["leaderboard", "--corpus", str(tiny_corpus), "--out", str(out), "--target", "val_acc",
                            "--predictors", "mean,flops", "--seeds", "1", "--trials", "0", "--sizes", "2"])
    assert r.exit_code == 0, r.output
    return out, r.stderr


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def test_a_tiny_test_set_warns_in_one_line_naming_its_size(board: tuple[Path, str]) -> None:
    out, stderr = board
    (line,) = _warnings(stderr)
    assert "test set holds 2 (val_acc) architectures per seed" in line and f"fewer than {MIN_TEST_ARCHS}" in line
    assert "frozen predictor" in line and (out / "frozen").is_dir()


def _plan(**tests: int) -> SimpleNamespace:
    split = {t: SimpleNamespace(splits=[SimpleNamespace(test=("a",) * n)] * 2) for t, n in tests.items()}
    return SimpleNamespace(targets=split)


def test_only_targets_under_the_floor_are_named() -> None:
    assert small_test_set(_plan(val_acc=MIN_TEST_ARCHS, train_time_s=200), freeze=True) is None  # type: ignore[arg-type]
    line = small_test_set(_plan(val_acc=6, train_time_s=MIN_TEST_ARCHS), freeze=False)  # type: ignore[arg-type]
    assert line is not None and "6 (val_acc)" in line and "train_time_s" not in line and "frozen" not in line


def test_predict_for_another_task_warns_naming_both(board: tuple[Path, str]) -> None:
    frozen = board[0] / "frozen"
    r = runner.invoke(app, ["predict", "--predictor", str(frozen), "--arch", "lenet", "--task", "digits"])
    assert r.exit_code == 0, r.output
    (line,) = _warnings(r.stderr)
    assert "'mnist1d'" in line and "'digits'" in line and line.startswith(f"warning: {frozen}: ")
    assert "val_acc:" in r.stdout
    for same in (["--task", "mnist1d"], []):
        r = runner.invoke(app, ["predict", "--predictor", str(frozen), "--arch", "lenet", *same])
        assert r.exit_code == 0 and not _warnings(r.stderr), r.output


def test_the_library_warns_too(board: tuple[Path, str]) -> None:
    frozen = board[0] / "frozen"
    with pytest.warns(TaskMismatchWarning, match="'mnist1d'.*'digits'"):
        frame = predict(frozen, [SEEDS["lenet"], SEEDS["tiny"]], task="digits")
    assert frame.height == 2
    assert task_mismatch({"descriptors": {"task": "mnist1d"}}, None) is None
    assert task_mismatch({}, "digits") is None  # a manifest without a task: nothing to compare
