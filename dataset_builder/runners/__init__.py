"""Runners: where a build's runs execute (this process, a local process pool, or Ray tasks)."""

from narch.core.errors import NarchError


class RunnerError(NarchError, RuntimeError):
    """A runner cannot start or lost its workers; the message says what to do."""
