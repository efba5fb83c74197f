"""The memory settings of a screening pass: the C heap's thresholds and transparent huge pages
(docs/adr/0077-screening-check-speed.md).

A screening pass makes and drops many arrays of one batch's size (2 MiB a float64 column of 262,144 rows,
7 MiB a float32 matrix of its numeric columns). Two defaults make each of them cost page faults:

* glibc serves any block above ``M_MMAP_THRESHOLD`` (128 KiB until the first such block is freed) with a
  fresh ``mmap`` and returns it with ``munmap``, and it trims the heap's top once ``M_TRIM_THRESHOLD`` is
  free: every batch faults its pages in again, one minor fault a 4 KiB page;
* NumPy (on every array of 4 MiB or more) and Arrow's mimalloc (on its whole 1 GiB arena) ask the kernel
  for transparent huge pages (``madvise(MADV_HUGEPAGE)``), and mimalloc hands freed pages back
  (``MADV_DONTNEED``) within milliseconds: each reuse then faults a 2 MiB page in again, which the kernel
  zeroes and, when memory is fragmented (a machine shared with other work), first compacts memory to find.
  Reading the two 1M-row Parquet files of the screening benchmark cost 0.57-1.05 s of system time that way
  and 0.09-0.12 s with 4 KiB pages (same user time).

:func:`settle_heap` sets both glibc thresholds (32 MiB and 64 MiB) once per process, so batch-sized blocks
come from the heap and are reused. It is a process-wide setting that a library call makes and cannot undo
(glibc has no way to read the previous values): it changes where the C allocator puts blocks of 128 KiB to
32 MiB and keeps at most 64 MiB of freed heap top for reuse, for the whole process; it changes no result.
:func:`small_pages` turns transparent huge pages off for the process (``prctl(PR_SET_THP_DISABLE)``, Linux
3.15+) while a screening call runs and restores the previous setting after it: other threads' memory
faulted in meanwhile gets 4 KiB pages too, and a process started meanwhile keeps the setting (the flag
survives fork and exec; screening starts none), which changes their speed, never their values.
Setting the environment variable ``DATAWARD_KEEP_MALLOC=1`` leaves both alone. Off glibc (musl, macOS,
Windows) :func:`settle_heap` does nothing; off Linux :func:`small_pages` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable, Iterator

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "settle_heap", "small_pages"]

#: blocks up to this size come from the heap, not from their own mmap (glibc's own dynamic ceiling)
MMAP_THRESHOLD = 32 << 20
#: the free heap top kept for reuse before it is handed back to the system
TRIM_THRESHOLD = 64 << 20

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3
_PR_SET_THP_DISABLE = 41  # linux/prctl.h
_PR_GET_THP_DISABLE = 42

_lock = threading.Lock()
_state: dict[str, bool] = {}
_pages: dict[str, int] = {"depth": 0, "before": 0}  # nesting depth; the THP-disable flag before the first


def _opted_out() -> bool:
    return os.environ.get("DATAWARD_KEEP_MALLOC", "") not in ("", "0")


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded: libc among them
        version = libc.gnu_get_libc_version  # glibc only; musl has no such symbol
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    if not version():
        return None
    return libc


def settle_heap() -> bool:
    """Set glibc's mmap and trim thresholds for batch-sized temporaries, once per process.

    Returns whether the thresholds are (now or already) set by this module: False off glibc, when
    ``DATAWARD_KEEP_MALLOC`` is set to a non-empty value other than ``0``, or when ``mallopt`` refused.
    """
    with _lock:
        if "done" in _state:
            return _state["done"]
        done = False
        if not _opted_out():
            libc = _glibc()
            if libc is not None:
                mallopt = libc.mallopt
                mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                mallopt.restype = ctypes.c_int
                done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                )
        _state["done"] = done
        return done


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    return prctl  # type: ignore[no-any-return]


@contextlib.contextmanager
def small_pages() -> Iterator[None]:
    """While the block runs the process gets no transparent huge pages; the previous setting comes back
    when the last of the nested (or concurrent) blocks ends."""
    prctl = None if _opted_out() else _prctl()
    if prctl is None:
        yield
        return
    with _lock:
        if _pages["depth"] == 0:
            before = prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0)
            _pages["before"] = before if before > 0 else 0
            if not _pages["before"]:
                prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0)
        _pages["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _pages["depth"] -= 1
            if _pages["depth"] == 0 and not _pages["before"]:
                prctl(_PR_SET_THP_DISABLE, 0, 0, 0, 0)
