"""Transport: the interface every way of moving frames between nodes shares."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

from fedsim.errors import WireError
from fedsim.v1 import wire_pb2
from fedsim.wire.message import Message


class DeliveryError(WireError):
    """The peer answered with an error receipt; ``receipt`` and ``code`` say why."""

    def __init__(self, address: str, receipt: wire_pb2.Receipt) -> None:
        self.address = address
        self.receipt = receipt
        self.code = receipt.code
        code = wire_pb2.ErrorCode.Name(receipt.code)
        super().__init__(f"peer at {address} rejected message {receipt.message_id!r} ({code}): {receipt.error}")


def check_receipt(address: str, receipt: wire_pb2.Receipt) -> wire_pb2.Receipt:
    """Return ``receipt`` if it is a success, raise DeliveryError otherwise."""
    if not receipt.ok:
        raise DeliveryError(address, receipt)
    return receipt


class Transport(ABC):
    """Moves encoded frames to peers and routes incoming messages to registered nodes.

    One transport can host several nodes; each registers a callback that runs on a receiver
    thread once a message addressed to it decoded cleanly. The callback may raise WireError to
    refuse the message: the sender then gets a REFUSED receipt and nothing is delivered.
    """

    address: str  # where peers reach this transport

    @abstractmethod
    def register(self, node: str, on_message: Callable[[Message], None]) -> None:
        """Route messages whose header names ``node`` as destination to ``on_message``."""

    @abstractmethod
    def unregister(self, node: str) -> None:
        """Stop routing to ``node``; later messages for it get UNKNOWN_DESTINATION."""

    @abstractmethod
    def send(self, address: str, frames: Sequence[wire_pb2.Frame], *, timeout: float) -> wire_pb2.Receipt:
        """Deliver one message's frames to the transport at ``address``; return its success receipt.

        Raises WireError (DeliveryError for error receipts) with a message naming the peer and
        the reason when the peer refuses, cannot be reached or does not answer within ``timeout``.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop receiving and release connections. Idempotent."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
