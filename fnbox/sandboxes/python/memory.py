"""The C allocator of a process capped by RLIMIT_AS (a Python worker), set up so the cap
measures what runs use.

RLIMIT_AS counts address space, and glibc's defaults keep a lot of it that no run uses:

- each thread that allocates gets an arena reserving 64 MB (a worker idles at ~180 MB of
  its 512 MB with three threads; ~50 MB with one arena);
- once a big block is freed, glibc raises its mmap threshold (up to 32 MB), so later big
  blocks come from its heaps, which it keeps mapped when they are freed: after one memory
  bomb the worker's address space stays nearly full, and the next run's allocations fail
  over slowly (pymalloc falls back to malloc, whose every mmap fails) or fail outright.

A fixed threshold keeps blocks of 128 KB and more in their own mappings, returned on free.
"""

from __future__ import annotations

import ctypes
import resource

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024


def tune_allocator_under_address_space_limit() -> bool:
    """Tune glibc's malloc if this process runs under RLIMIT_AS; True if it did.

    Must run before the process starts threads (arenas are made per thread on demand).
    Elsewhere (an embedding process, the in-process mode) nothing is changed.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_ARENA_MAX, 1)) and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
