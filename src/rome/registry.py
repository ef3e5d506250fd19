"""A named registry (the way timm registers models): one entry per name, filled by the modules that define them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from rome.errors import RomeError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Entries by name, in registration order; unknown names are one-line errors naming the params key."""

    def __init__(self, what: str, key: str) -> None:
        self.what, self.key = what, key  # e.g. "search space", "search.space"
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` under its ``name`` (once: a second module claiming the name is a bug)."""
        if entry.name in self._entries:
            raise ValueError(f"{self.what} {entry.name!r} registered twice")
        self._entries[entry.name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def find(self, name: object) -> T | None:
        return self._entries.get(name) if isinstance(name, str) else None

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise RomeError(f"{self.key} = {name!r}: unknown {self.what}; expected one of {list(self._entries)}")
        return self._entries[name]

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __len__(self) -> int:
        return len(self._entries)
