"""The pool's warm sandboxes: least recently used first out, and out after an idle timeout.

What cachetools' TTLCache gave the pool, at a fraction of its cost per use (a warm call looks
its sandbox up and restarts its idle clock every time): a use moves an entry to the end of
one ordered dict, so the order of use is also the order of expiry and both evicting and
expiring look at the front only. Every entry that leaves, evicted or expired, goes to
`on_drop`; one taken out with `pop` does not.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["WarmCache"]

K = TypeVar("K")
V = TypeVar("V")


class WarmCache(Generic[K, V]):
    def __init__(self, *, maxsize: int, ttl: float, timer: Callable[[], float], on_drop: Callable[[V], None]) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._timer = timer
        self._on_drop = on_drop
        #: key -> (value, when it expires), least recently used first.
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value, unless missing or expired (the order of use is left as it is)."""
        item = self._items.get(key)
        if item is None or item[1] <= self._timer():
            return None
        return item[0]

    def use(self, key: K) -> V | None:
        """`get`, and a found value's idle clock restarts (it is the most recently used now)."""
        item = self._items.get(key)
        if item is None:
            return None
        now = self._timer()
        if item[1] <= now:
            return None
        self._items[key] = (item[0], now + self.ttl)
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V) -> None:
        """Add or replace, as the most recently used; drops what has expired, then the least
        recently used while there are more than `maxsize`."""
        now = self._timer()
        self.expire(now)
        items = self._items
        items[key] = (value, now + self.ttl)
        items.move_to_end(key)
        while len(items) > self.maxsize:
            _, (dropped, _) = items.popitem(last=False)
            self._on_drop(dropped)

    def pop(self, key: K) -> V | None:
        """Take an entry out (without `on_drop`): its value, or None if missing or expired."""
        item = self._items.pop(key, None)
        if item is None or item[1] <= self._timer():
            return None
        return item[0]

    def expire(self, now: float | None = None) -> None:
        """Drop every entry past its idle timeout."""
        now = self._timer() if now is None else now
        items = self._items
        while items:
            key, (value, expires) = next(iter(items.items()))
            if expires > now:
                break
            del items[key]
            self._on_drop(value)

    def __contains__(self, key: object) -> bool:
        item = self._items.get(key)  # type: ignore[arg-type]
        return item is not None and item[1] > self._timer()

    def __len__(self) -> int:
        self.expire()
        return len(self._items)

    def keys(self) -> list[K]:
        now = self._timer()
        return [key for key, (_, expires) in self._items.items() if expires > now]

    def items(self) -> list[tuple[K, V]]:
        now = self._timer()
        return [(key, value) for key, (value, expires) in self._items.items() if expires > now]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())
