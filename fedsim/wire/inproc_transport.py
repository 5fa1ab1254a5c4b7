"""InprocTransport: the wire path without a socket, for simulations inside one process.

Frames go through exactly the receiver the gRPC server uses, so decoding, byte counts and
error receipts are identical; only the network hop is skipped.
"""
from __future__ import annotations

import threading
import uuid
from typing import Callable, Sequence

from fedsim.errors import WireError
from fedsim.v1 import wire_pb2
from fedsim.wire.message import Message
from fedsim.wire.receiver import Routes, receive
from fedsim.wire.transport import Transport, check_receipt

_REGISTRY_LOCK = threading.Lock()
_REGISTRY: dict[str, "InprocTransport"] = {}


class InprocTransport(Transport):
    """Reachable at ``inproc://<uuid>`` by any other InprocTransport in this process."""

    def __init__(self, *, max_payload_bytes: int | None = 2**31) -> None:
        self.address = f"inproc://{uuid.uuid4()}"
        self.max_payload_bytes = max_payload_bytes
        self._routes = Routes()
        with _REGISTRY_LOCK:
            _REGISTRY[self.address] = self

    def register(self, node: str, on_message: Callable[[Message], None]) -> None:
        self._routes.add(node, on_message)

    def unregister(self, node: str) -> None:
        self._routes.remove(node)

    def send(self, address: str, frames: Sequence[wire_pb2.Frame], *, timeout: float) -> wire_pb2.Receipt:
        """Deliver synchronously on the caller's thread; ``timeout`` is accepted for interface parity."""
        with _REGISTRY_LOCK:
            peer = _REGISTRY.get(address)
        if peer is None:
            raise WireError(f"peer at {address} unreachable (no open in-process transport there)")
        receipt = receive(frames, peer._routes, peer.max_payload_bytes)
        return check_receipt(address, receipt)

    def close(self) -> None:
        with _REGISTRY_LOCK:
            _REGISTRY.pop(self.address, None)
