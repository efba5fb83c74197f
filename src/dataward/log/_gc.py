"""The cyclic garbage collector paused while the log does bulk work (verification, state snapshots).

A verification builds hundreds of thousands of small container objects that live until it ends (parsed
entries, the replayed state, a snapshot's records). Each of them counts towards the collector's
thresholds, and every full collection walks all live ones again: measured on 10^5 entries, collections
were about a fifth of a full verification's CPU time and half of decoding a state snapshot. Those objects
hold no reference cycles, so reference counting frees them as before; a cycle made meanwhile is collected
at the first collection after the pause. The pause nests and is shared by threads: the collector is
re-enabled when the last user leaves, and only if it was enabled when the first one came.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block (see the module docstring)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
