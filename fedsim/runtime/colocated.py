"""The transport of one worker: co-located nodes in-process, nodes of other workers over the network.

`HostTransport` wraps the worker's network transport (its gRPC server and channels). A message
whose destination lives in this worker (its address is our own) goes through an in-process
transport — the same encoded frames, the same receiver and so the same byte counts in the ledger,
without a socket; any other goes over the network. In task mode (fedsim/tasks.py) a network send
runs on the scheduler's I/O pool while the sending task is parked, so one node waiting on the
network never stalls the others; in-process deliveries run inline on the hub thread, where the
receiving node is parked anyway.
"""
from __future__ import annotations

from typing import Callable, Sequence

from fedsim.v1 import wire_pb2
from fedsim.wire.inproc_transport import InprocTransport
from fedsim.wire.transport import Transport


def _call(fn: Callable, *args, **kwargs):
    return fn(*args, **kwargs)


class HostTransport(Transport):
    """`inner` for the network; with `colocated` on, an InprocTransport for this worker's own nodes."""

    def __init__(self, inner: Transport, *, colocated: bool, max_payload_bytes: int | None,
                 blocking: Callable = _call) -> None:
        self.inner = inner
        self.address = inner.address
        self._local = InprocTransport(max_payload_bytes=max_payload_bytes) if colocated else None
        self._blocking = blocking

    def register(self, node: str, *args) -> None:
        self.inner.register(node, *args)
        if self._local is not None:
            self._local.register(node, *args)

    def unregister(self, node: str) -> None:
        self.inner.unregister(node)
        if self._local is not None:
            self._local.unregister(node)

    def is_local(self, address: str) -> bool:
        return self._local is not None and address == self.address

    def send(self, address: str, frames: Sequence[wire_pb2.Frame], *, timeout: float) -> wire_pb2.Receipt:
        if self.is_local(address):
            return self._local.send(self._local.address, frames, timeout=timeout)
        return self._blocking(self.inner.send, address, frames, timeout=timeout)

    def __getattr__(self, name: str):  # e.g. GrpcTransport.set_serving
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        self.inner.close()
