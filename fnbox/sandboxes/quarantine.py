"""Quarantine: a workspace that got its worker killed runs apart from the others for a while.

A run stuck in C code (Python holding the GIL) or blowing a worker's memory stalls every
call on that worker until the supervisor kills it, and the kill resets the caches of
every workspace the worker held. Retrying the neighbours makes one such kill cheap; the
quarantine makes repeating it useless: for `seconds` after its run got a worker killed,
a workspace is routed to a worker of its own, so the next attack only stalls and resets
the attacker.

Quarantine workers are started on first use and stopped once their last workspace's
quarantine has expired. At most `max_workers` exist per language; past that, quarantined
workspaces share them (they only ever stall one another).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fnbox import metrics

__all__ = ["QUARANTINE_SECONDS", "Quarantine"]

logger = logging.getLogger("fnbox")

QUARANTINE_SECONDS = 600.0
#: Quarantine workers per language: each one is a process, and a tenant can make many workspaces.
MAX_QUARANTINE_WORKERS = 4

W = TypeVar("W")


@dataclass
class Quarantine(Generic[W]):
    """Which workspaces are quarantined until when, and the workers they run on."""

    seconds: float
    make_worker: Callable[[str, int], W]  # (language, index) -> a worker not yet started
    max_workers: int = MAX_QUARANTINE_WORKERS
    clock: Callable[[], float] = time.monotonic
    _until: dict[tuple[str, str], float] = field(default_factory=dict)
    _workers: dict[tuple[str, int], W] = field(default_factory=dict)
    _slots: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, language: str, workspace: str, reason: str) -> None:
        """Quarantine a workspace from now on (again, if it already was)."""
        if self.seconds <= 0:
            return
        key = (language, workspace)
        if key not in self._until:
            logger.warning(
                "%s workspace %r runs on a worker of its own for %g s: its run got a worker killed (%s)",
                language,
                workspace,
                self.seconds,
                reason,
            )
        self._until[key] = self.clock() + self.seconds
        metrics.QUARANTINED_WORKSPACES.set(len(self._until))

    def worker_for(self, language: str, workspace: str) -> W | None:
        """The quarantine worker of a workspace, made if needed; None when it is not quarantined."""
        key = (language, workspace)
        until = self._until.get(key)
        if until is None or until <= self.clock():
            return None
        slot = self._slots.get(key)
        if slot is None:
            used = {index for (lang, index) in self._workers if lang == language}
            free = [index for index in range(self.max_workers) if index not in used]
            slot = free[0] if free else zlib.crc32(workspace.encode()) % self.max_workers
            self._slots[key] = slot
        worker = self._workers.get((language, slot))
        if worker is None:
            worker = self._workers[(language, slot)] = self.make_worker(language, slot)
        return worker

    def workers(self) -> list[W]:
        return list(self._workers.values())

    def expire(self, busy: Callable[[W], bool]) -> list[W]:
        """End the quarantines that are over; return (and forget) the workers no workspace uses
        any longer and that have no call in flight (`busy`), for the caller to stop."""
        now = self.clock()
        for key in [key for key, until in self._until.items() if until <= now]:
            del self._until[key]
            self._slots.pop(key, None)
        metrics.QUARANTINED_WORKSPACES.set(len(self._until))
        used = {(language, slot) for (language, _), slot in self._slots.items()}
        idle = [key for key, worker in self._workers.items() if key not in used and not busy(worker)]
        return [self._workers.pop(key) for key in idle]

    def __contains__(self, key: tuple[str, str]) -> bool:
        until = self._until.get(key)
        return until is not None and until > self.clock()
