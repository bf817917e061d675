"""One registry type for predictors and strategies, with plugins found through entry points or named modules.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."narch.predictors"]
    knn = "my_plugin.predictors"          # a module: importing it registers the family

    [project.entry-points."narch.strategies"]
    hill = "my_plugin.strategies:Hill"    # or an object: imported the same way

Entry points are loaded the first time a registry is asked for a name it lacks or for its list of names
(nothing is imported at ``import narch``); ``load_plugin("my_plugin")`` (the CLI's ``--plugin``) imports a module
by name. A frozen artefact records the module that registered its family (``Registry.module_of``), so a missing
plugin is named in the error; code is never imported from an artefact itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from narch.core.errors import NarchError, PluginError

P = TypeVar("P")


class UnknownName(NarchError, KeyError):
    """A registry lookup for a name nobody registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def load_plugin(module: str) -> None:
    """Import a plugin module by name so that it registers (``--plugin MODULE``); PluginError if it cannot."""
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise PluginError(f"plugin module {module!r} cannot be imported: {e}") from None


class Registry(Generic[P]):
    """Name -> class; unknown names fail loudly with the known ones; plugins come from an entry-point group."""

    def __init__(self, kind: str, *, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, type[P]] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[type[P]], type[P]]:
        """Class decorator: ``@REGISTRY.register("name")`` sets ``cls.name`` and makes it findable."""

        def deco(cls: type[P]) -> type[P]:
            if name in self._items and self._items[name] is not cls:
                raise NarchError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return deco

    def discover(self) -> list[str]:
        """Load every entry point of the group once; returns the names of those that loaded."""
        if self._discovered or self.group is None:
            return []
        self._discovered = True
        loaded = []
        for ep in metadata.entry_points(group=self.group):
            try:
                ep.load()
            except Exception as e:  # a broken plugin names itself instead of breaking every command
                raise PluginError(f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {e}") from None
            loaded.append(ep.name)
        return loaded

    def get(self, name: str) -> type[P]:
        """The class registered as ``name`` (after plugin discovery); UnknownName otherwise."""
        if name not in self._items:
            self.discover()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(f"{self.kind} {name!r} is unknown (known: {', '.join(self.names())})") from None

    def module_of(self, name: str) -> str:
        """The module that registered ``name`` (recorded in artefacts, named when a plugin is missing)."""
        return self.get(name).__module__

    def names(self) -> list[str]:
        """Every registered name, sorted, plugins included."""
        self.discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
