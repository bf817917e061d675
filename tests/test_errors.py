"""Every domain error is a NarchError (the CLI catches that one base) and keeps its builtin base for old callers."""

from __future__ import annotations

import pytest
import typer

from narch.console import fail, message
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
