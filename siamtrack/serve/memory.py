"""Memory a server gives back: what a closed session freed goes back to the system, and the threads'
heaps are few. glibc only; elsewhere memory goes back as the allocator decides."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_ARENA_MAX = -8  # mallopt's parameter number for the most malloc arenas (glibc's malloc.h)
# heaps for the sessions' threads: glibc's default, 8 per core, held the freed memory of 8 sessions spread
# over as many heaps (peak 820-880 MiB, 480-550 MiB after they left, 8 clients, tools/serve_load.py);
# with 2: 600-700 and 410-470 MiB
ARENAS = 2


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _glibc()


def limit_heaps() -> None:
    """Fewer malloc arenas for the threads to come: process-wide, so called by the entry point, before them."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, ARENAS)


def freeze_startup_objects() -> None:
    """Leave what exists now (the model, torch, the app: some 180,000 objects that live as long as the process)
    out of every garbage collection to come. Process-wide, so called by the entry point once the model is
    built. A collection then scans only what sessions made: 0 ms instead of 200-300 ms with the GIL held, which
    held every session's tracking back each time a tab closed (30 tabs opened and closed at once: seconds)."""
    gc.collect()
    gc.freeze()


def release_memory() -> None:
    """Hand the memory a closed session freed back to the system. glibc keeps freed heap pages for the
    process's next allocations, so without this a server's RSS would stay at its busiest hour's."""
    gc.collect()  # the tracker's reference cycles, before the trim
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
