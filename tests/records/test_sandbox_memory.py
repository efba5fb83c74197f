"""The sandbox's memory limit bounds memory (private writable mappings), not address space: a memory bomb
still trips it, reserved address space that costs no memory does not."""

from __future__ import annotations

import mmap
import resource

import numpy as np
import pytest

from dataward.records.sandbox import ADDRESS_SPACE_FACTOR, SandboxError, SandboxLimits, run_sandboxed

LIMIT = 768 << 20


def _worker_limits(_: str) -> tuple[int, int]:
    return resource.getrlimit(resource.RLIMIT_DATA)[0], resource.getrlimit(resource.RLIMIT_AS)[0]


def _numpy_bomb(_: str) -> int:
    hoard = []
    while True:
        hoard.append(np.ones(32 << 20))  # 256 MiB each, touched


def _untouched_allocation(_: str) -> int:
    return int(np.empty(2 * LIMIT, dtype=np.uint8).size)  # private writable, even if never written


def _address_space_in_use() -> int:
    return next(int(line.split()[1]) << 10 for line in open("/proc/self/status") if line.startswith("VmSize:"))


def _reserve_address_space(_: str, limit: int) -> int:
    # what allocator arenas and thread stacks' guards do: address space without memory behind it, beyond the
    # memory limit but within the backstop (the fork inherits the test process's address space)
    size = min(2 * limit, ADDRESS_SPACE_FACTOR * limit - _address_space_in_use() - (64 << 20))
    with mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=0) as reserved:
        return len(reserved)


def test_the_worker_is_bounded_by_private_memory_with_a_wider_address_space_backstop() -> None:
    data, space = run_sandboxed(_worker_limits, "x", where="x", limits=SandboxLimits(memory_bytes=LIMIT))
    assert data == LIMIT
    assert space == ADDRESS_SPACE_FACTOR * LIMIT


def test_a_numpy_memory_bomb_is_refused_naming_the_file() -> None:
    with pytest.raises(SandboxError, match=r"bomb\.csv: the sandboxed parser ran out of memory \(limit 768 MiB\)"):
        run_sandboxed(_numpy_bomb, "x", where="bomb.csv", limits=SandboxLimits(memory_bytes=LIMIT))


def test_an_allocation_beyond_the_limit_is_refused_before_it_is_touched() -> None:
    with pytest.raises(SandboxError, match="ran out of memory"):
        run_sandboxed(_untouched_allocation, "x", where="big.jsonl", limits=SandboxLimits(memory_bytes=LIMIT))


def test_reserved_address_space_beyond_the_limit_is_not_refused() -> None:
    # the worker starts with this process's address space (a test worker that imported scikit-learn and
    # friends holds several GiB of it), so pick a memory limit whose backstop leaves room for twice the limit
    limit = max(LIMIT, (_address_space_in_use() + (256 << 20)) // (ADDRESS_SPACE_FACTOR - 2))
    got = run_sandboxed(_reserve_address_space, "x", limit, where="x", limits=SandboxLimits(memory_bytes=limit))
    assert got > limit  # more than an address-space limit at the memory limit would have allowed
