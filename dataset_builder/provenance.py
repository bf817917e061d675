"""Re-export of ``narch.core.provenance`` for call sites not yet moved (controller/run.py, pipeline/report.py).

New code imports ``narch.core.provenance``; delete this module once those two import it too.
"""

from narch.core.provenance import builder_version, git_rev

__all__ = ["builder_version", "git_rev"]
