"""Named registries of plug-in parts (channels, codecs, models, receivers, scenarios).

A registry is a plain mapping from a name to a factory and a one-line description, filled where the
classes are defined. Third-party packages add their own through a Python entry-point group
(``semcom.<kind>``, e.g. ``semcom.receivers``); they are loaded the first time the registry is read.
``semcom list`` reads the registries, so no name is written down twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from semcom.errors import SemcomError

__all__ = ["Entry", "Registry", "UnknownNameError"]


class UnknownNameError(SemcomError, KeyError):
    """A name asked for is not in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    """One registered part: its name, a one-line description and a factory."""

    name: str
    description: str
    factory: Callable[..., Any]
    origin: str = "semcom"


class Registry:
    """A name -> factory table with entry-point discovery.

    Args:
        kind: what the registry holds, in the plural ("channels"); used in messages.
        entry_point_group: the entry-point group scanned for plug-ins, e.g. ``"semcom.receivers"``.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = entry_point_group is None

    def add(self, name: str, factory: Callable[..., Any], description: str, origin: str = "semcom") -> None:
        """Register ``factory`` under ``name``; a name can only be taken once."""
        if name in self._entries:
            raise ValueError(f"{self.kind}: '{name}' is already registered by {self._entries[name].origin}")
        self._entries[name] = Entry(name, description.strip().splitlines()[0], factory, origin)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if self.entry_point_group is None:
            return
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name in self._entries:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not break semcom
                self._entries[ep.name] = Entry(ep.name, f"(failed to load: {exc})", _broken(ep.name, exc),
                                               ep.value)
                continue
            doc = (getattr(obj, "__doc__", None) or ep.name).strip().splitlines()[0]
            self._entries[ep.name] = Entry(ep.name, doc, obj, ep.value)

    def reload_plugins(self) -> None:
        """Scan the entry-point group again (after installing a plug-in in a running process)."""
        self._plugins_loaded = self.entry_point_group is None
        self._load_plugins()

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an unknown name lists what exists."""
        self._load_plugins()
        try:
            return self._entries[name].factory
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind[:-1]} '{name}'; available: {known}") from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build the part registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def entries(self) -> list[Entry]:
        self._load_plugins()
        return sorted(self._entries.values(), key=lambda e: e.name)

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _broken(name: str, exc: Exception) -> Callable[..., Any]:
    def fail(*_: Any, **__: Any) -> Any:
        raise SemcomError(f"plug-in '{name}' could not be loaded: {exc}")

    return fail
