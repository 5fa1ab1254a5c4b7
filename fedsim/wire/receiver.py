"""The receiving half every transport shares: frames in, one Receipt out, at most one delivery.

gRPC and in-process transports both call ``receive``, so they decode, count bytes and answer
errors identically. A stream that fails to decode never reaches a node's ``on_message``.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping
from typing import Callable, Iterable, Iterator

from fedsim.errors import WireError
from fedsim.v1 import wire_pb2
from fedsim.wire.codec import GRPC_PREFIX_BYTES, CodecError, decode, frame_size, is_header
from fedsim.wire.message import Message

log = logging.getLogger(__name__)

OnMessage = Callable[[Message], None]


class Routes(Mapping[str, OnMessage]):
    """Thread-safe node name -> on_message table of one transport."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[str, OnMessage] = {}

    def add(self, node: str, on_message: OnMessage) -> None:
        if not isinstance(node, str) or not node:
            raise WireError(f"node name must be a non-empty string, got {node!r}")
        with self._lock:
            if node in self._table:
                raise WireError(f"node {node!r} is already registered at this transport")
            self._table = {**self._table, node: on_message}

    def remove(self, node: str) -> None:
        with self._lock:
            self._table = {k: v for k, v in self._table.items() if k != node}

    # Readers see an immutable snapshot (the dict is replaced, never mutated), so no lock needed.
    def __getitem__(self, node: str) -> OnMessage:
        return self._table[node]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def _failure(code: int, error: str, *, message_id: str = "", frames: int = 0, wire_bytes: int = 0) -> wire_pb2.Receipt:
    return wire_pb2.Receipt(ok=False, code=code, error=error, message_id=message_id, frames=frames, wire_bytes=wire_bytes)


def receive(
    frames: Iterable[wire_pb2.Frame],
    routes: Mapping[str, OnMessage],
    max_payload_bytes: int | None,
    check_header: Callable[[wire_pb2.Header], None] | None = None,
) -> wire_pb2.Receipt:
    """Decode one stream and hand the message to ``routes[dst]``.

    ``check_header`` (deployment: who the authenticated peer may be, what it may send) sees the
    header before any payload is read and may raise WireError to refuse it (REFUSED receipt, logged).
    ``on_message`` may raise WireError to refuse the message (REFUSED receipt); any other
    exception becomes an INTERNAL receipt and is logged.
    """
    it = iter(frames)
    try:
        first = next(it, None)
    except Exception as exc:  # the stream itself broke (e.g. the client went away)
        return _failure(wire_pb2.INTERNAL, f"reading the stream failed: {exc}")
    message_id = ""
    if first is not None and is_header(first):
        header = first.header
        message_id = header.message_id
        # Refuse unknown destinations from the header alone, before reading any payload.
        if header.dst not in routes:
            known = ", ".join(sorted(routes)) or "none"
            return _failure(
                wire_pb2.UNKNOWN_DESTINATION,
                f"no node {header.dst!r} registered at this transport (registered: {known})",
                message_id=message_id, frames=1, wire_bytes=frame_size(first) + GRPC_PREFIX_BYTES)
        if check_header is not None:
            try:
                check_header(header)
            except WireError as exc:
                log.warning("refused message %s (%s -> %s): %s", message_id, header.src, header.dst, exc)
                return _failure(wire_pb2.REFUSED, str(exc), message_id=message_id, frames=1,
                                wire_bytes=frame_size(first) + GRPC_PREFIX_BYTES)
    elif check_header is not None:  # nothing to authorize a stream by: refuse before decoding anything
        return _failure(wire_pb2.BAD_HEADER, "the stream does not start with a header frame")
    stream = it if first is None else itertools.chain((first,), it)
    try:
        msg = decode(stream, max_payload_bytes=max_payload_bytes)
    except CodecError as err:
        return _failure(err.code, str(err), message_id=message_id, frames=err.frames, wire_bytes=err.wire_bytes)
    except Exception as exc:
        log.exception("decoding message %s failed", message_id)
        return _failure(wire_pb2.INTERNAL, f"decoding failed: {type(exc).__name__}: {exc}", message_id=message_id)
    on_message = routes.get(msg.dst)
    if on_message is None:  # unregistered while the payload was streaming in
        return _failure(wire_pb2.UNKNOWN_DESTINATION, f"node {msg.dst!r} was unregistered during delivery",
                        message_id=message_id, frames=msg.frames, wire_bytes=msg.wire_bytes)
    try:
        on_message(msg)
    except WireError as exc:
        return _failure(wire_pb2.REFUSED, str(exc), message_id=message_id, frames=msg.frames, wire_bytes=msg.wire_bytes)
    except Exception as exc:
        log.exception("on_message for %r failed on message %s", msg.dst, message_id)
        return _failure(wire_pb2.INTERNAL, f"node {msg.dst!r} failed to accept the message: {type(exc).__name__}: {exc}",
                        message_id=message_id, frames=msg.frames, wire_bytes=msg.wire_bytes)
    return wire_pb2.Receipt(ok=True, code=wire_pb2.OK, message_id=message_id, frames=msg.frames, wire_bytes=msg.wire_bytes)
