"""Every domain error is a NarchError (the CLI catches that one base) and keeps its builtin base for old callers."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
import typer

from narch.console import EXPECTED, GUARDED, fail, guarded, message
from narch.controller.reward import RewardConfigError
from narch.core.errors import NarchError
from narch.dataset_builder.corpus import CorpusError
from narch.dataset_builder.importers.cells import CellFormatError, UnmappableCell
from narch.dataset_builder.importers.sources import SourceError
from narch.dataset_builder.runners import RunnerError
from narch.dataset_builder.tasks import TaskError
from narch.hardware.catalogue import get_device
from narch.hardware.compare import CompareError
from narch.hardware.device import DeviceError
from narch.predictors.artefacts import ArtefactError
from narch.predictors.tabular import TargetError
from narch.search_space import SpecError
from narch.search_space.moves import MoveError

DOMAIN_ERRORS = [
    (SpecError, ValueError), (MoveError, ValueError), (DeviceError, RuntimeError), (CellFormatError, ValueError),
    (UnmappableCell, ValueError), (SourceError, ValueError), (RunnerError, RuntimeError), (CorpusError, ValueError),
    (TaskError, ValueError), (TargetError, ValueError), (ArtefactError, ValueError),
    (RewardConfigError, ValueError), (CompareError, ValueError),
]


@pytest.mark.parametrize(("cls", "builtin"), DOMAIN_ERRORS, ids=[c.__name__ for c, _ in DOMAIN_ERRORS])
def test_domain_error_is_a_narch_error_and_keeps_its_builtin(cls: type, builtin: type) -> None:
    assert issubclass(cls, NarchError) and issubclass(cls, builtin)


def test_unknown_device_is_a_narch_error_and_a_key_error() -> None:
    with pytest.raises(NarchError, match="device 'b300' is unknown") as info:
        get_device("b300")
    assert isinstance(info.value, KeyError) and message(info.value).startswith("device 'b300'")


def test_fail_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail("corpus x: no manifest " + "y" * 200)
    assert isinstance(exit_, typer.Exit) and exit_.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("narch: error: corpus x") and len(err.strip().splitlines()) == 1
    assert fail("boom", code=3).exit_code == 3


def _raises(exc: BaseException) -> Callable[[], None]:
    def command() -> None:
        raise exc

    return command


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/c/p.parquet"), "/c/p.parquet: no space left on device"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/m.json"), "/ro/m.json: read-only file system"),
        (OSError(errno.EACCES, "Permission denied", "/p"), "/p: permission denied"),
        (OSError(errno.ENOTDIR, "Not a directory", "f/sub"), "f/sub: not a folder (a part of the path is a file)"),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
        (FileNotFoundError("corpus x: no such folder"), "corpus x: no such folder"),
        (RecursionError("maximum recursion depth"), "input nested too deeply to process (Python's recursion limit)"),
        (KeyError("device 'b300' is unknown"), "device 'b300' is unknown"),
        (ValueError("--seeds must be >= 1, got 0\nsecond line"), "--seeds must be >= 1, got 0 second line"),
    ],
)
def test_guarded_turns_expected_failures_into_one_line(capsys: pytest.CaptureFixture[str], exc: BaseException,
                                                       line: str) -> None:
    expected = isinstance(exc, EXPECTED)
    with pytest.raises(typer.Exit if expected else KeyError) as info:
        guarded(_raises(exc))()
    if not expected:  # a KeyError that is no NarchError is a bug: its traceback stays
        return
    assert info.value.exit_code == 2  # type: ignore[union-attr]
    err = capsys.readouterr().err
    assert err == f"narch: error: {line}\n"


def test_guarded_keeps_bugs_and_debug_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError):
        guarded(_raises(TypeError("a bug")))()
    monkeypatch.setenv("NARCH_DEBUG", "1")
    with pytest.raises(OSError):
        guarded(_raises(OSError(errno.ENOSPC, "No space left on device")))()


def test_guarded_ctrl_c_exits_130_with_the_resume_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as info:
        guarded(resume="finished runs are saved")(_raises(KeyboardInterrupt()))()
    assert info.value.exit_code == 130
    assert capsys.readouterr().err == "interrupted: finished runs are saved\n"
    assert getattr(guarded(_raises(KeyboardInterrupt())), GUARDED)
