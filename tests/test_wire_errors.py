"""Broken or unwanted streams get the right error receipt and never reach a node's inbox.

Every case runs over a real gRPC pair and over the in-process transport (same receiver code).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fedsim.errors import WireError
from fedsim.payload import Kind, Payload
from fedsim.v1 import wire_pb2
from fedsim.wire.codec import CodecError, decode, encode
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.inproc_transport import InprocTransport
from fedsim.wire.transport import DeliveryError

LIMIT = 3 << 20  # receivers accept at most 3 MiB


@pytest.fixture(scope="module", params=["grpc", "inproc"])
def pair(request):
    if request.param == "grpc":
        sender, receiver = GrpcTransport(), GrpcTransport(max_payload_bytes=LIMIT)
    else:
        sender, receiver = InprocTransport(), InprocTransport(max_payload_bytes=LIMIT)
    yield sender, receiver
    sender.close()
    receiver.close()


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    def __call__(self, msg) -> None:
        self.messages.append(msg)


@pytest.fixture
def bob(pair):
    """Node 'bob' on the receiving transport; unregistered after the test."""
    _, receiver = pair
    inbox = Inbox()
    receiver.register("bob", inbox)
    yield inbox
    receiver.unregister("bob")


def frames_for(nbytes: int = 64 << 10, dst: str = "bob", message_id: str = "m1"):
    payload = Payload(Kind.MODEL, {"w": torch.arange(nbytes // 4, dtype=torch.float32), "b": np.ones(3, np.int8)})
    return encode(payload, run_id="r", round=1, src="alice", dst=dst, tag="t", message_id=message_id,
                  chunk_bytes=16 << 10)


def send_fails(pair, frames, code: int, text: str) -> DeliveryError:
    sender, receiver = pair
    with pytest.raises(DeliveryError) as err:
        sender.send(receiver.address, frames, timeout=10)
    assert err.value.code == code, str(err.value)
    assert wire_pb2.ErrorCode.Name(code) in str(err.value)
    assert text in str(err.value)
    assert isinstance(err.value, WireError)
    return err.value


def good_message_still_arrives(pair, inbox: Inbox) -> None:
    sender, receiver = pair
    receipt = sender.send(receiver.address, frames_for(message_id="good"), timeout=10)
    assert receipt.ok and receipt.code == wire_pb2.OK
    assert [m.message_id for m in inbox.messages] == ["good"]
    assert torch.equal(inbox.messages[0].payload.tensors["w"], torch.arange(16 << 10, dtype=torch.float32))


def test_corrupt_chunk(pair, bob) -> None:
    frames = frames_for()
    data = bytearray(frames[2].chunk)
    data[100] ^= 0x40
    frames[2] = wire_pb2.Frame(chunk=bytes(data))
    err = send_fails(pair, frames, wire_pb2.CORRUPT, "checksum mismatch")
    assert err.receipt.frames == len(frames)
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_missing_chunk(pair, bob) -> None:
    frames = frames_for()
    del frames[3]
    send_fails(pair, frames, wire_pb2.PARTIAL, f"received {(64 << 10) + 3 - (16 << 10)} bytes in 4 chunks; "
                                                f"header announced {(64 << 10) + 3} bytes in 5 chunks")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_extra_chunk_below_the_limit_is_partial(pair, bob) -> None:
    frames = frames_for()
    frames.append(wire_pb2.Frame(chunk=b"tail"))
    send_fails(pair, frames, wire_pb2.PARTIAL, "in 6 chunks; header announced")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_oversized_by_header(pair, bob) -> None:
    frames = frames_for(nbytes=4 << 20)
    err = send_fails(pair, frames, wire_pb2.OVERSIZED, f"payload of {(4 << 20) + 3} bytes exceeds the limit of {LIMIT} bytes")
    assert err.receipt.frames == 1  # refused from the header, before reading any chunk
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_oversized_with_lying_header(pair, bob) -> None:
    frames = frames_for(nbytes=1024)  # header announces ~1 KiB ...
    lies = frames[:1] + [wire_pb2.Frame(chunk=bytes(1 << 20)) for _ in range(8)]  # ... 8 MiB follow
    err = send_fails(pair, lies, wire_pb2.OVERSIZED, f"chunks carry more than the limit of {LIMIT} bytes")
    assert err.receipt.frames == 5  # stopped as soon as the limit was crossed
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_unknown_destination(pair, bob) -> None:
    send_fails(pair, frames_for(dst="carol"), wire_pb2.UNKNOWN_DESTINATION,
               "no node 'carol' registered at this transport (registered: bob)")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_refused_by_on_message(pair) -> None:
    _, receiver = pair
    calls, kept = [], []

    def picky(msg) -> None:
        calls.append(msg.src)
        if msg.src == "alice":
            raise WireError("alice is not a neighbour of dave")
        kept.append(msg)

    receiver.register("dave", picky)
    try:
        send_fails(pair, frames_for(dst="dave"), wire_pb2.REFUSED, "alice is not a neighbour of dave")
        assert calls == ["alice"] and kept == []
    finally:
        receiver.unregister("dave")


def test_crash_in_on_message_is_internal(pair) -> None:
    _, receiver = pair
    receiver.register("erin", lambda msg: 1 / 0)
    try:
        send_fails(pair, frames_for(dst="erin"), wire_pb2.INTERNAL, "ZeroDivisionError")
    finally:
        receiver.unregister("erin")


def test_header_not_first(pair, bob) -> None:
    frames = frames_for()
    send_fails(pair, frames[1:] + frames[:1], wire_pb2.BAD_HEADER, "first frame is not the header")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_second_header(pair, bob) -> None:
    frames = frames_for()
    send_fails(pair, frames[:2] + frames[:1] + frames[2:], wire_pb2.BAD_HEADER,
               "frame 2 is not a chunk (only the first frame may be a header)")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_empty_stream(pair, bob) -> None:
    send_fails(pair, [], wire_pb2.BAD_HEADER, "stream ended before the header frame")
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def tampered(mutate) -> list[wire_pb2.Frame]:
    frames = frames_for()
    header = wire_pb2.Header()
    header.CopyFrom(frames[0].header)
    mutate(header)
    return [wire_pb2.Frame(header=header), *frames[1:]]


@pytest.mark.parametrize("mutate, text", [
    (lambda h: setattr(h.tensors[0], "dtype", "float128"), "tensor 'w': unknown dtype 'float128'"),
    (lambda h: setattr(h.tensors[1], "lib", wire_pb2.TORCH) or setattr(h.tensors[1], "dtype", "int4"),
     "tensor 'b': unknown dtype 'int4'"),
    (lambda h: h.tensors[0].shape.append(2), "tensor 'w': shape (16384, 2) of float32 needs 131072 bytes"),
    (lambda h: setattr(h, "payload_bytes", h.payload_bytes + 1), "tensor specs add up to 65539 bytes but payload_bytes is 65540"),
    (lambda h: setattr(h, "kind", 9), "unknown payload kind 9"),
    (lambda h: setattr(h.tensors[1], "name", "w"), "duplicate tensor names"),
])
def test_inconsistent_header(pair, bob, mutate, text: str) -> None:
    send_fails(pair, tampered(mutate), wire_pb2.BAD_HEADER, text)
    assert bob.messages == []
    good_message_still_arrives(pair, bob)


def test_decode_errors_carry_code_and_progress() -> None:
    frames = frames_for()
    with pytest.raises(CodecError) as err:
        decode(frames[:-1])
    assert err.value.code == wire_pb2.PARTIAL and err.value.code_name == "PARTIAL"
    assert err.value.frames == len(frames) - 1
    assert isinstance(err.value, WireError)
    with pytest.raises(CodecError, match="exceeds the limit of 10 bytes") as err:
        decode(frames, max_payload_bytes=10)
    assert err.value.code == wire_pb2.OVERSIZED


def test_unreachable_inproc_peer() -> None:
    sender = InprocTransport()
    gone = InprocTransport()
    gone.close()
    with pytest.raises(WireError, match=f"peer at {gone.address} unreachable"):
        sender.send(gone.address, frames_for(), timeout=1)
    sender.close()
