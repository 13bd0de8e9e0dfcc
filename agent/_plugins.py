"""What installed packages register under one of the agent's entry-point groups (``llm_hpo.tasks``,
``llm_hpo.strategies``, ``llm_hpo.providers``): one way to find them, name where they come from, and say
what each is (the first line of its factory's docstring) or why it does not load."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = ["Plugin", "registered"]


@dataclass(frozen=True)
class Plugin:
    """One registration: its entry point, the factory it names (None: it does not load), and a line saying what
    it is or why it does not load."""

    entry: EntryPoint
    group: str
    factory: Any
    summary: str

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def package(self) -> str:
        dist = self.entry.dist
        return f"{dist.name} {dist.version}" if dist is not None else "an installed package"

    @property
    def where(self) -> str:
        """How errors name it: ``'cmaes' (my_package:cmaes, entry point group llm_hpo.strategies)``."""
        return f"{self.name!r} ({self.entry.value}, entry point group {self.group})"

    @classmethod
    def load(cls, entry: EntryPoint, group: str) -> Plugin:
        try:
            factory = entry.load()
        except Exception as exc:  # a broken registration must not break a listing: say what is wrong instead
            return cls(entry, group, None, f"cannot load {entry.value} ({type(exc).__name__}: {exc})")
        doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
        return cls(entry, group, factory, doc[0] if doc else entry.value)


def registered(group: str, taken: Collection[str] = ()) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name; names in ``taken`` (built-in ones win) and later repeats left out."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if ep.name not in taken and ep.name not in found:
            found[ep.name] = ep
    return found
