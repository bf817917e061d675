"""narch.core.files.publish_dir: a folder swapped in as a unit, and recovery from a crash at each step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from narch.core.files import publish_dir, recover_dir


def _publish(path: Path, text: str) -> None:
    with publish_dir(path) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text(text)


def _state(path: Path) -> tuple[str | None, list[str]]:
    """The published content and the siblings left beside it (the lock file aside)."""
    text = (path / "sub" / "a.txt").read_text() if path.exists() else None
    return text, sorted(n for n in os.listdir(path.parent) if n.startswith(".") and n != f".{path.name}.lock")


def test_publish_replaces_the_old_folder_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "frozen"
    _publish(path, "old")
    (path / "stale.txt").write_text("only in the old one")
    _publish(path, "new")
    assert _state(path) == ("new", []) and not (path / "stale.txt").exists()


@pytest.mark.parametrize("where", ["body", "verify"])
def test_a_failure_before_the_swap_keeps_the_old_folder(tmp_path: Path, where: str) -> None:
    path = tmp_path / "frozen"
    _publish(path, "old")

    def refuse(tmp: Path) -> None:
        assert (tmp / "sub" / "a.txt").read_text() == "new"
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"), \
            publish_dir(path, verify=refuse if where == "verify" else None) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text("new")
        if where == "body":
            raise ValueError("refused")
    assert _state(path) == ("old", [])


def _crash(path: Path, step: int) -> None:
    """The disk as a publish of "new" over "old" leaves it when killed after ``step`` of its protocol."""
    _publish(path, "old")
    tmp, new, old = (path.with_name(f".{path.name}.{k}-dead") for k in ("tmp", "new", "old"))
    (tmp / "sub").mkdir(parents=True)
    (tmp / "sub" / "a.txt").write_text("new")
    if step >= 3:
        os.rename(tmp, new)
    if step >= 4:
        os.rename(path, old)
    if step >= 5:
        os.rename(new, path)


@pytest.mark.parametrize(("step", "expect"), [(2, "old"), (3, "new"), (4, "new"), (5, "new")])
def test_recovery_after_a_crash_at_each_step(tmp_path: Path, step: int, expect: str) -> None:
    path = tmp_path / "frozen"
    _crash(path, step)
    assert recover_dir(path) is True
    assert _state(path) == (expect, [])
    assert recover_dir(path) is False  # nothing pending: nothing touched


def test_the_next_publish_recovers_first(tmp_path: Path) -> None:
    path = tmp_path / "frozen"
    _crash(path, 4)  # the old folder moved aside, the new one not yet in place
    assert not path.exists()
    _publish(path, "newer")
    assert _state(path) == ("newer", [])


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "frozen"
    path.write_text("a file")
    with pytest.raises(NotADirectoryError, match="not a folder"), publish_dir(path):
        pass
    assert path.read_text() == "a file"
