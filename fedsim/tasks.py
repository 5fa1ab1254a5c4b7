"""Node rounds as tasks: thousands of logical nodes on one thread, none of them holding a thread while it waits.

A policy's `run_round` is ordinary blocking code (`node.recv(...)` waits for the neighbours). In
task mode every round runs in a greenlet on one hub thread per worker process (`Scheduler`): when
`recv` has to wait, `Condition.wait` parks the greenlet — a few KB of saved stack, no thread — and
the hub runs another node; a delivery's `notify_all` (from the hub itself for a co-located sender,
from a gRPC thread for a remote one) or the timeout puts it back on the ready queue. Blocking calls
that are not waits (a gRPC send) run on a small I/O pool via `blocking`, the task parked meanwhile.
The policy API does not change: policy code cannot tell a task from a thread.

Everything here also works outside a task: `Condition.wait` is then threading.Condition.wait and
`blocking(fn)` just calls fn, so one Node class serves the thread-per-node mode and deployment.
"""
from __future__ import annotations

import heapq
import itertools
import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Callable

import greenlet

_local = threading.local()  # .scheduler on a hub thread


class _Task(greenlet.greenlet):
    """One node round (or a served request) running on the hub; parks instead of blocking."""

    def __init__(self, scheduler: "Scheduler", fn: Callable, args: tuple, future: Future) -> None:
        super().__init__(self._main, parent=scheduler._hub)
        self.scheduler, self.fn, self.args, self.future = scheduler, fn, args, future
        self.token = 0  # bumped on every park and every resume: a stale wake-up is ignored

    def _main(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)

    def prepare(self, timeout: float | None) -> int:
        """Arm a park: the token a waker must present, and (with a timeout) a timer that wakes us."""
        self.token += 1
        if timeout is not None:
            self.scheduler._timer(time.monotonic() + max(0.0, timeout), self, self.token)
        return self.token

    def switch_out(self) -> None:
        """Give the hub back the thread until someone wakes this token (or its timer fires)."""
        torch = sys.modules.get("torch")
        grad = torch.is_grad_enabled() if torch is not None else None  # thread-local state, not ours alone
        self.scheduler._hub.switch()
        if torch is not None:
            torch.set_grad_enabled(grad)


def current_task() -> _Task | None:
    """The task running now, or None on an ordinary thread (or the hub's own loop)."""
    if getattr(_local, "scheduler", None) is None:
        return None
    cur = greenlet.getcurrent()
    return cur if isinstance(cur, _Task) else None


class Scheduler:
    """A hub thread that runs submitted callables as tasks; `submit` returns a Future like an executor's."""

    def __init__(self, name: str = "fedsim-tasks", io_threads: int = 8) -> None:
        self._posted: queue.SimpleQueue = queue.SimpleQueue()  # from other threads: new tasks, wake-ups
        self._signal = threading.Event()
        self._ready: deque[tuple[_Task, int]] = deque()  # woken tasks: resumed before new ones start
        self._new: deque[_Task] = deque()
        self._timers: list[tuple[float, int, _Task, int]] = []
        self._seq = itertools.count()
        self._io_threads, self._io = io_threads, None
        self._io_lock = threading.Lock()
        self._closed = False
        self._hub: greenlet.greenlet | None = None
        self.parked = 0  # tasks waiting right now (for tests and progress)
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name=name, daemon=True)
        self._thread.start()
        started.wait()

    # ---------------------------------------------------------------- API (any thread)
    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        self._post(("new", fn, args, future))
        return future

    def wake(self, task: _Task, token: int) -> None:
        if threading.current_thread() is self._thread:
            self._ready.append((task, token))
        else:
            self._post(("wake", task, token))

    def blocking(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """fn(*args) on the I/O pool while the calling task is parked; a plain call outside a task."""
        task = current_task()
        if task is None or task.scheduler is not self:
            return fn(*args, **kwargs)
        future = self._io_pool().submit(fn, *args, **kwargs)
        token = task.prepare(None)
        future.add_done_callback(lambda _: self.wake(task, token))
        task.switch_out()
        return future.result()

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        self._closed = True
        self._signal.set()
        if wait:
            self._thread.join()
        with self._io_lock:
            if self._io is not None:
                self._io.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- hub
    def _post(self, item: tuple) -> None:
        self._posted.put(item)
        self._signal.set()

    def _io_pool(self) -> ThreadPoolExecutor:
        with self._io_lock:
            if self._io is None:
                self._io = ThreadPoolExecutor(self._io_threads, thread_name_prefix="fedsim-io")
            return self._io

    def _timer(self, deadline: float, task: _Task, token: int) -> None:
        heapq.heappush(self._timers, (deadline, next(self._seq), task, token))

    def _run(self, started: threading.Event) -> None:
        _local.scheduler = self
        self._hub = greenlet.getcurrent()
        started.set()
        while not self._closed:
            self._signal.clear()
            self._take_posted()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, task, token = heapq.heappop(self._timers)
                self._ready.append((task, token))
            if self._ready:
                task, token = self._ready.popleft()
                if token == task.token and not task.dead:  # else: already woken by someone else
                    task.token += 1
                    self.parked -= 1
                    self._switch(task)
            elif self._new:
                self._switch(self._new.popleft())
            else:
                timeout = self._timers[0][0] - now if self._timers else None
                self._signal.wait(timeout)

    def _take_posted(self) -> None:
        while True:
            try:
                item = self._posted.get_nowait()
            except queue.Empty:
                return
            if item[0] == "new":
                _, fn, args, future = item
                self._new.append(_Task(self, fn, args, future))
            else:
                self._ready.append(item[1:])

    def _switch(self, task: _Task) -> None:
        task.switch()
        if not task.dead:  # it parked
            self.parked += 1
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_grad_enabled(True)  # the next task starts in torch's default mode


class Condition:
    """threading.Condition (re-entrant) whose `wait` parks the calling task instead of its thread."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._parked: list[tuple[_Task, int]] = []

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)

    def wait(self, timeout: float | None = None) -> None:
        """Called with the lock held; releases it while waiting, as threading.Condition does.
        May return early (callers re-check their predicate)."""
        task = current_task()
        if task is None:
            self._cond.wait(timeout)
            return
        ticket = (task, task.prepare(timeout))
        self._parked.append(ticket)
        state = self._lock._release_save()  # type: ignore[attr-defined]  # all recursion levels at once
        try:
            task.switch_out()
        finally:
            self._lock._acquire_restore(state)  # type: ignore[attr-defined]
            if ticket in self._parked:
                self._parked.remove(ticket)

    def notify_all(self) -> None:
        self._cond.notify_all()
        parked, self._parked = self._parked, []
        for task, token in parked:
            task.scheduler.wake(task, token)

    notify = notify_all  # waiters re-check their predicate; waking all is always correct


class _Running:
    """A task seen like a thread (is_alive / join), for code that tracks both."""

    def __init__(self, future: Future) -> None:
        self.future = future

    def is_alive(self) -> bool:
        return not self.future.done()

    def join(self, timeout: float | None = None) -> None:
        wait([self.future], timeout)


def start(fn: Callable, *args: Any, scheduler: Scheduler | None = None, name: str | None = None):
    """Run fn(*args) concurrently: as a task on `scheduler`, else on a new daemon thread. Returns a
    handle with is_alive() and join(timeout)."""
    if scheduler is not None:
        return _Running(scheduler.submit(fn, *args))
    thread = threading.Thread(target=fn, args=args, name=name, daemon=True)
    thread.start()
    return thread
