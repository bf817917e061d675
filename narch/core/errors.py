"""One error base for every domain error, so the command line catches user mistakes in one place."""

from __future__ import annotations


class NarchError(Exception):
    """A user-facing failure: the message names the thing and the rule it broke, in one line.

    Every domain error (spec, corpus, task, device, artefact, reward config, plugin, ...) derives from it; most also
    derive from ``ValueError`` or ``RuntimeError`` so that callers written against the builtins keep working.
    """


class PluginError(NarchError, ImportError):
    """A plugin (entry point or ``--plugin`` module) that cannot be imported, or an artefact whose plugin is absent."""


class SettingError(NarchError, ValueError):
    """A setting of a command (an option, a config field) that breaks a rule: checked before any work starts."""
