"""Peak memory (PSS), threads and open files of a process and all its descendants, sampled in the background.

PSS (proportional set size) splits each shared page among the processes that map it, so the sum
over a process tree is what the tree really costs (RSS would count torch's shared libraries once
per worker). Read from /proc/<pid>/smaps_rollup via psutil.
"""
from __future__ import annotations

import os
import threading
import time

import psutil


def tree(pid: int | None = None) -> list[psutil.Process]:
    root = psutil.Process(pid or os.getpid())
    return [root, *root.children(recursive=True)]


def snapshot(pid: int | None = None) -> dict[str, float]:
    """PSS in MB, threads and file descriptors summed over the tree, and its process count."""
    pss = threads = fds = procs = 0
    for p in tree(pid):
        try:
            with p.oneshot():
                pss += p.memory_full_info().pss
                threads += p.num_threads()
                fds += p.num_fds()
                procs += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return {"pss_mb": pss / 2**20, "threads": threads, "fds": fds, "processes": procs}


class Peak:
    """with Peak() as peak: ...  then peak.max == the largest value of each snapshot field seen."""

    def __init__(self, interval: float = 0.5, pid: int | None = None) -> None:
        self.interval, self.pid = interval, pid
        self.max: dict[str, float] = {"pss_mb": 0.0, "threads": 0, "fds": 0, "processes": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proctree")

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        snap = snapshot(self.pid)
        for k, v in snap.items():
            self.max[k] = max(self.max[k], v)

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
