"""The pool's cache of warm sandboxes: least recently used out first, idle ones out after the timeout."""

from __future__ import annotations

from fnbox.sandboxes.warm import WarmCache


def make(maxsize: int = 3, ttl: float = 10.0) -> tuple[WarmCache[str, str], list[float], list[str]]:
    now = [0.0]
    dropped: list[str] = []
    cache: WarmCache[str, str] = WarmCache(maxsize=maxsize, ttl=ttl, timer=lambda: now[0], on_drop=dropped.append)
    return cache, now, dropped


def test_the_least_recently_used_is_dropped_when_full_and_a_use_counts() -> None:
    cache, _, dropped = make(maxsize=2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.use("a") == "A"
    cache.put("c", "C")
    assert dropped == ["B"]
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2


def test_get_neither_counts_as_a_use_nor_restarts_the_idle_clock() -> None:
    cache, now, dropped = make(maxsize=2, ttl=10.0)
    cache.put("a", "A")
    cache.put("b", "B")
    now[0] = 5.0
    assert cache.get("a") == "A"
    cache.put("c", "C")
    assert dropped == ["A"]
    now[0] = 14.0
    assert cache.get("b") is None and "b" not in cache  # expired at 10
    assert cache.get("c") == "C"


def test_a_use_restarts_the_idle_clock_and_expired_entries_are_dropped() -> None:
    cache, now, dropped = make(ttl=10.0)
    cache.put("a", "A")
    cache.put("b", "B")
    now[0] = 8.0
    assert cache.use("a") == "A"  # now idle until 18
    now[0] = 12.0
    assert cache.use("b") is None  # idle since 0: gone, and not brought back by the use
    assert cache.keys() == ["a"] and cache.items() == [("a", "A")]
    cache.expire()
    assert dropped == ["B"]
    now[0] = 18.0
    assert len(cache) == 0 and dropped == ["B", "A"]


def test_pop_takes_an_entry_out_without_dropping_it() -> None:
    cache, now, dropped = make()
    cache.put("a", "A")
    assert cache.pop("a") == "A"
    assert cache.pop("a") is None
    cache.put("b", "B")
    now[0] = 20.0
    assert cache.pop("b") is None  # expired: as if missing
    assert dropped == []


def test_putting_a_key_again_replaces_it_without_a_drop() -> None:
    cache, _, dropped = make(maxsize=2)
    cache.put("a", "A")
    cache.put("b", "B")
    cache.put("a", "A2")
    assert dropped == [] and cache.get("a") == "A2"
    cache.put("c", "C")
    assert dropped == ["B"]
    assert list(cache) == ["a", "c"]
