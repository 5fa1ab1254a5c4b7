"""zlib.crc32 of large payloads, computed on worker threads while the caller keeps copying.

CRC-32 runs at a few GB/s, a visible share of moving a big model. zlib.crc32 releases the
GIL, so ``RunningCrc32`` hands every few MiB of added data to a thread pool and merges the
partial CRCs with ``crc32_combine`` (polynomial arithmetic over GF(2), the maths behind zlib's
C function, which Python's zlib module does not expose). Encode checksums tensors while it cuts
chunks; decode checksums what has arrived while later chunks stream in. The result is
bit-identical to one zlib.crc32 pass; small payloads are checksummed inline.
"""
from __future__ import annotations

import os
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

_POLY = 0xEDB88320     # CRC-32 polynomial, bit-reflected
_ONE = 1 << 31         # the polynomial "1" in reflected order
SLICE_BYTES = 4 << 20  # work unit for a worker; smaller slices cost more in hand-offs than they gain
_WORKERS = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial (reflected bit order)."""
    m, product = _ONE, 0
    while True:
        if a & m:
            product ^= b
            if not a & (m - 1):
                return product
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _powers() -> list[int]:
    # x^(2^k) mod p for k = 0..31; the sequence repeats with period 32 for larger k.
    table = [_ONE >> 1]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return table


_X2N = _powers()


def _x8n(n: int) -> int:
    """x^(8n) mod p: the factor that moves a CRC past n more bytes."""
    k, p = 3, _ONE
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of A+B given crc1 = crc32(A), crc2 = crc32(B) and len2 = len(B)."""
    return _multmodp(_x8n(len2), crc1) ^ crc2


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        # A forked child inherits the pool object but not its threads: start a fresh one there.
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fedsim-crc32")
            _pool_pid = os.getpid()
        return _pool


def _crc_all(views: Sequence[memoryview]) -> int:
    crc = 0
    for view in views:
        crc = zlib.crc32(view, crc)
    return crc


class RunningCrc32:
    """CRC-32 of everything ``add``-ed, in order; full slices are checksummed in the background.

    Added views must stay unchanged until ``value()`` returns.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[Future, int]] = []
        self._pending: list[memoryview] = []
        self._pending_bytes = 0

    def add(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            take = min(len(view) - pos, SLICE_BYTES - self._pending_bytes)
            self._pending.append(view[pos:pos + take])
            self._pending_bytes += take
            pos += take
            if self._pending_bytes == SLICE_BYTES:
                self._parts.append((_executor().submit(_crc_all, self._pending), SLICE_BYTES))
                self._pending, self._pending_bytes = [], 0

    def value(self) -> int:
        if not self._parts:  # a small payload: one pass, no combining (pure-Python GF(2) maths)
            return _crc_all(self._pending)
        crc = 0
        for future, length in self._parts:
            crc = crc32_combine(crc, future.result(), length)
        return crc32_combine(crc, _crc_all(self._pending), self._pending_bytes)


def crc32(views: Sequence[memoryview]) -> int:
    """zlib.crc32 of the end-to-end concatenation of ``views`` (byte-format memoryviews)."""
    running = RunningCrc32()
    for view in views:
        running.add(view)
    return running.value()
