"""The server process kept to one CPU on a small machine, so that its event loop never takes turns
with the worker it waits for on the same CPU.

Under a warm load the server's event loop and a worker wake each other for every group of
calls (frames down a pipe, answers back up). Linux tends to put a thread woken that way on
the CPU of the thread that woke it, expecting that one to sleep soon; the loop and its
worker then share one CPU while another idles. Kept to one CPU, the server leaves the
others to its workers, which the scheduler moves off the server's CPU whenever another is
free. The threads the server starts later (the writer of execution records) keep to its
CPU too; its worker processes, which would inherit it, are given back every CPU the server
could use (`RuntimeOptions.worker_cpus`), so functions that compute still use them all.

`fnbox serve` calls `pin_server` before it starts a thread; embedders keep their own
process's CPUs. On machines of more than AUTO_MAX_CPUS the default leaves the server to
the scheduler: there it finds a free CPU for a woken thread more easily, and a server kept
to one CPU could not move away from other busy processes.
"""

from __future__ import annotations

import os

__all__ = ["AUTO_MAX_CPUS", "parse_server_cpu", "pin_server", "server_cpu"]

#: The most CPUs a machine (or the CPU set the server may use) has for `auto` to keep the server to one.
AUTO_MAX_CPUS = 4


def parse_server_cpu(text: str) -> str | int:
    """`auto`, `no`, or the number of a CPU (as SERVER_CPU takes them)."""
    value = text.strip().lower()
    if value in ("auto", "no"):
        return value
    if value.isdigit():
        return int(value)
    raise ValueError("expected auto, no, or the number of a CPU")


def pin_server(choice: str | int, *, workers: bool = True) -> tuple[int, ...] | None:
    """Keep the calling thread, and the threads and processes it starts from now on, to the CPU
    `server_cpu` chooses. Returns the CPUs the process could use before, for its workers; None
    if it was left as it was.

    Raises ValueError for a CPU the process may not use.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = tuple(sorted(os.sched_getaffinity(0)))
    cpu = server_cpu(choice, allowed, workers=workers)
    if cpu is None:
        return None
    os.sched_setaffinity(0, {cpu})
    return allowed


def server_cpu(choice: str | int, allowed: tuple[int, ...], *, workers: bool = True) -> int | None:
    """The CPU the server keeps to, of those it may use (sorted): `choice` is `auto` (the first,
    on a machine of 2 to AUTO_MAX_CPUS of them, if it runs its sandboxes in `workers` processes:
    those in its own process need every CPU), `no`, or a CPU's number. None: no CPU of its own.

    Raises ValueError for a CPU that is not allowed.
    """
    if isinstance(choice, int):
        if choice not in allowed:
            raise ValueError(f"CPU {choice} is not one this process may use ({', '.join(map(str, allowed))})")
        return choice
    if choice == "auto" and workers and 2 <= len(allowed) <= AUTO_MAX_CPUS:
        return allowed[0]
    return None
