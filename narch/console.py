"""The command line's two consoles and its one way to fail: one line on stderr, then a non-zero exit.

Every command is wrapped by ``guarded``, the one place that turns an expected failure into that line: a
``NarchError`` (the base of every domain error) or a ``ValueError`` (what library checks of option values raise),
an ``OSError`` of the environment (disk full, read-only, permission denied, a path through a file, ...), input
nested too deeply to parse, or memory running out. Anything else is a bug and keeps its traceback; so do these
when ``NARCH_DEBUG`` is set in the environment.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, overload

import typer
from rich.console import Console

from narch.core.errors import NarchError
from narch.core.registry import load_plugin

OUT = Console(soft_wrap=True)
ERR = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
EXPECTED = (NarchError, ValueError, OSError, RecursionError, MemoryError)
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT
GUARDED = "__narch_guarded__"  # set on every wrapped command (tests check that each one is)

# What an OSError means for a command, where its strerror alone would leave the user guessing.
OS_HINTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "not a folder (a part of the path is a file)",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "exists already (and is not a folder the command can use)",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
}

Plugins = Annotated[list[str] | None, typer.Option(
    "--plugin", metavar="MODULE", help="import a plugin module first so its predictors or strategies register "
    "(repeatable; installed plugins are found through their entry points)")]


def stop_on_sigterm() -> None:
    """SIGTERM (what schedulers, ``kill`` and ``timeout`` send) stops a command as Ctrl-C does: it raises
    KeyboardInterrupt, so work in flight is finished or dropped, ``guarded`` says how to resume and the exit is 130.
    Call it once, from the main thread of the entry point."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def load_plugins(modules: list[str] | None) -> None:
    """Import every ``--plugin`` module (PluginError, a NarchError, names one that cannot be imported)."""
    for module in modules or []:
        load_plugin(module)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``narch: error: <message>`` on one line and return the exit to raise."""
    one_line = " ".join(message.split())
    ERR.print(f"narch: error: {one_line}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def message(e: BaseException) -> str:
    """An exception's message, without the quotes ``KeyError`` puts around it."""
    if isinstance(e, KeyError) and len(e.args) == 1:
        return str(e.args[0])
    return str(e)


def describe(e: BaseException) -> str:
    """One line for an expected failure: ``<path>: <problem>`` where the error knows its path."""
    if isinstance(e, OSError) and not isinstance(e, NarchError):
        problem = OS_HINTS.get(e.errno or -1) or (e.strerror or message(e) or type(e).__name__).lower()
        paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
        return f"{' -> '.join(paths)}: {problem}" if paths else problem
    if isinstance(e, RecursionError):
        return "input nested too deeply to process (Python's recursion limit)"
    if isinstance(e, MemoryError):
        return f"not enough memory{f' ({message(e)})' if str(e) else ''}"
    return message(e) or type(e).__name__


@overload
def guarded(fn: F, /) -> F: ...
@overload
def guarded(*, resume: str | None = None) -> Callable[[F], F]: ...
def guarded(fn: F | None = None, /, *, resume: str | None = None) -> F | Callable[[F], F]:
    """Wrap a command: expected failures become ``narch: error: ...`` and exit 2; Ctrl-C (and SIGTERM, see
    ``stop_on_sigterm``) exits 130 (with ``resume``, the line saying what was kept and how to go on)."""

    def wrap(f: F) -> F:
        @functools.wraps(f)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except KeyboardInterrupt:
                ERR.print(f"interrupted: {resume}" if resume else "interrupted", markup=False, highlight=False)
                raise typer.Exit(INTERRUPTED) from None
            except EXPECTED as e:
                if os.environ.get("NARCH_DEBUG"):
                    raise
                raise fail(describe(e)) from None

        setattr(run, GUARDED, True)
        return run  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap
