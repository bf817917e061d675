"""Runners: where a build's runs execute (this process, a local process pool, or Ray tasks)."""


class RunnerError(RuntimeError):
    """A runner cannot start or lost its workers; the message says what to do."""
