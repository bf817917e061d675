"""The command line's two consoles and its one way to fail: one line on stderr, then a non-zero exit.

Every subcommand catches ``narch.core.errors.NarchError`` (the base of every domain error) and passes the message
to ``fail``; a command adds a builtin to its ``except`` only where a library it calls raises one for bad input.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from narch.core.registry import load_plugin

OUT = Console(soft_wrap=True)
ERR = Console(stderr=True)


Plugins = Annotated[list[str] | None, typer.Option(
    "--plugin", metavar="MODULE", help="import a plugin module first so its predictors or strategies register "
    "(repeatable; installed plugins are found through their entry points)")]


def load_plugins(modules: list[str] | None) -> None:
    """Import every ``--plugin`` module (PluginError, a NarchError, names one that cannot be imported)."""
    for module in modules or []:
        load_plugin(module)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``narch: error: <message>`` on one line and return the exit to raise."""
    ERR.print(f"narch: error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def message(e: BaseException) -> str:
    """An exception's message without the quotes ``KeyError`` adds."""
    return str(e).strip("'\"")
