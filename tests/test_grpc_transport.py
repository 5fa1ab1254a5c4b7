"""Real gRPC servers on 127.0.0.1: payloads both ways, big streams, health, failures, parity with inproc."""
from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fedsim.errors import WireError
from fedsim.payload import Kind, Payload
from fedsim.v1 import wire_pb2
from fedsim.wire.codec import encode, wire_bytes
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.inproc_transport import InprocTransport


class Inbox:
    def __init__(self) -> None:
        self.messages = []
        self.lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self.lock:
            self.messages.append(msg)


@pytest.fixture(scope="module")
def pair():
    a, b = GrpcTransport(), GrpcTransport()
    yield a, b
    a.close()
    b.close()


def test_address_is_the_bound_ephemeral_port(pair) -> None:
    a, b = pair
    assert a.address.startswith("127.0.0.1:") and b.address.startswith("127.0.0.1:")
    assert a.address != b.address and int(a.address.rsplit(":", 1)[1]) > 0


def test_payloads_flow_both_ways(pair) -> None:
    a, b = pair
    inbox_a, inbox_b = Inbox(), Inbox()
    a.register("alice", inbox_a)
    b.register("bob", inbox_b)
    try:
        model = Payload(Kind.MODEL, {"w": torch.randn(3, 5), "b": torch.zeros(5, dtype=torch.bfloat16)}, {"epoch": "2"})
        samples = Payload(Kind.SAMPLES, {"x": np.arange(12, dtype=np.int64).reshape(3, 4), "y": np.array([True, False])})
        to_bob = encode(model, run_id="r", round=1, src="alice", dst="bob", tag="fedavg", message_id="m1")
        to_alice = encode(samples, run_id="r", round=1, src="bob", dst="alice", tag="share", message_id="m2")
        r1 = a.send(b.address, to_bob, timeout=10)
        r2 = b.send(a.address, to_alice, timeout=10)
        for receipt, frames, id_ in ((r1, to_bob, "m1"), (r2, to_alice, "m2")):
            assert receipt.ok and receipt.message_id == id_
            assert receipt.frames == len(frames) and receipt.wire_bytes == wire_bytes(frames)
        (got_b,), (got_a,) = inbox_b.messages, inbox_a.messages
        assert (got_b.src, got_b.dst, got_b.round, got_b.tag, got_b.kind) == ("alice", "bob", 1, "fedavg", Kind.MODEL)
        assert got_b.wire_bytes == r1.wire_bytes and got_b.payload.meta == {"epoch": "2"}
        assert torch.equal(got_b.payload.tensors["w"], model.tensors["w"])
        assert got_b.payload.tensors["b"].dtype == torch.bfloat16
        assert got_a.kind == Kind.SAMPLES and np.array_equal(got_a.payload.tensors["x"], samples.tensors["x"])
        assert got_a.payload.tensors["y"].dtype == np.bool_
    finally:
        a.unregister("alice")
        b.unregister("bob")


def test_twenty_megabytes_stream_through(pair) -> None:
    a, b = pair
    inbox = Inbox()
    b.register("big", inbox)
    try:
        weights = torch.randn(5_000_000)  # 20 MB of float32
        frames = encode(Payload(Kind.MODEL, {"w": weights}), run_id="r", round=0, src="a", dst="big",
                        tag="t", message_id="big")
        receipt = a.send(b.address, frames, timeout=30)
        assert receipt.ok and receipt.frames == 1 + 20 == len(frames)  # 20 MB = 19.07 MiB -> 20 chunks
        (msg,) = inbox.messages
        assert msg.payload_bytes == 20_000_000
        assert torch.equal(msg.payload.tensors["w"], weights)
    finally:
        b.unregister("big")


def test_concurrent_senders_share_cached_channels(pair) -> None:
    a, b = pair
    inbox = Inbox()
    b.register("hub", inbox)
    errors = []

    def push(i: int) -> None:
        try:
            frames = encode(Payload(Kind.MODEL, {"w": torch.full((1000,), float(i))}), run_id="r", round=i,
                            src=f"n{i}", dst="hub", tag="t", message_id=f"m{i}")
            a.send(b.address, frames, timeout=10)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(m.round for m in inbox.messages) == list(range(12))
        assert all(torch.all(m.payload.tensors["w"] == m.round) for m in inbox.messages)
        assert len(a._channels) == 1
    finally:
        b.unregister("hub")


def test_health_reports_serving(pair) -> None:
    _, b = pair
    with grpc.insecure_channel(b.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "fedsim.v1.Transport"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unreachable_peer_is_a_clear_wire_error(pair) -> None:
    a, _ = pair
    gone = GrpcTransport()
    address = gone.address
    gone.close()
    frames = encode(Payload(Kind.CONTROL, {"x": torch.zeros(1)}), run_id="r", round=0, src="a", dst="b",
                    tag="t", message_id="m")
    with pytest.raises(WireError, match=f"peer at {address} unreachable"):
        a.send(address, frames, timeout=5)


def test_slow_peer_times_out(pair) -> None:
    a, b = pair
    release = threading.Event()
    b.register("slow", lambda msg: release.wait(5))
    frames = encode(Payload(Kind.CONTROL, {"x": torch.zeros(1)}), run_id="r", round=0, src="a", dst="slow",
                    tag="t", message_id="m")
    try:
        start = time.monotonic()
        with pytest.raises(WireError, match=f"sending to peer at {b.address} timed out after 0.3s"):
            a.send(b.address, frames, timeout=0.3)
        assert time.monotonic() - start < 3
    finally:
        release.set()
        b.unregister("slow")


def test_closed_transport_refuses_to_send_and_close_is_idempotent() -> None:
    t = GrpcTransport()
    t.close()
    t.close()
    with pytest.raises(WireError, match="transport is closed"):
        t.send("127.0.0.1:1", [], timeout=1)


def test_duplicate_registration_is_refused(pair) -> None:
    a, _ = pair
    a.register("twice", Inbox())
    try:
        with pytest.raises(WireError, match="node 'twice' is already registered"):
            a.register("twice", Inbox())
    finally:
        a.unregister("twice")


def test_inproc_matches_grpc_frames_and_bytes(pair) -> None:
    a, b = pair
    via_grpc, via_inproc = Inbox(), Inbox()
    b.register("same", via_grpc)
    src, dst = InprocTransport(), InprocTransport()
    dst.register("same", via_inproc)
    try:
        payload = Payload(Kind.GENERATOR, {"g": torch.randn(300_000), "h": np.arange(7, dtype=np.uint8),
                                           "s": torch.tensor(3, dtype=torch.int8)}, {"k": "v"})
        frames = encode(payload, run_id="r", round=4, src="a", dst="same", tag="gen", message_id="x")
        r_grpc = a.send(b.address, frames, timeout=10)
        r_inproc = src.send(dst.address, frames, timeout=10)
        assert r_grpc == r_inproc  # same ok, id, frames, wire_bytes, code
        assert r_grpc.wire_bytes == wire_bytes(frames) and r_grpc.frames == len(frames) == 3
        (g,), (i,) = via_grpc.messages, via_inproc.messages
        assert (g.wire_bytes, g.frames, g.payload_bytes) == (i.wire_bytes, i.frames, i.payload_bytes)
        for name in payload.tensors:
            assert type(g.payload.tensors[name]) is type(i.payload.tensors[name])
            assert np.array_equal(np.asarray(g.payload.tensors[name]), np.asarray(i.payload.tensors[name]))
        # Errors match too: the same broken stream gets the same receipt from both.
        broken = frames[:-1]
        with pytest.raises(WireError) as e_grpc:
            a.send(b.address, broken, timeout=10)
        with pytest.raises(WireError) as e_inproc:
            src.send(dst.address, broken, timeout=10)
        assert e_grpc.value.receipt == e_inproc.value.receipt
        assert e_grpc.value.receipt.code == wire_pb2.PARTIAL
    finally:
        b.unregister("same")
        src.close()
        dst.close()
