"""The core below every package (no torch): errors, atomic files, provenance and the registry.

Import from the modules (``narch.core.files``, ``narch.core.registry``, ...); this file only re-exports.
"""

from narch.core.errors import NarchError, PluginError
from narch.core.files import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from narch.core.provenance import git_rev, provenance
from narch.core.registry import Registry, load_plugin

__all__ = ["NarchError", "PluginError", "Registry", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "git_rev", "load_plugin", "provenance", "sha256_file"]
