"""Codec round trips: bit-exact tensors of every supported kind, chunking and byte accounting."""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsim.payload import Kind, Payload
from fedsim.v1 import wire_pb2
from fedsim.wire.checksum import RunningCrc32, crc32, crc32_combine
from fedsim.wire.codec import CHUNK_BYTES, CodecError, decode, encode, parse_frame, wire_bytes

TORCH_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.uint8,
                torch.int16, torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128]
NUMPY_DTYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16, np.int32, np.int64,
                np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128]

HEADER = dict(run_id="run-1", round=3, src="alice", dst="bob", tag="fedavg", message_id="m-1")


def raw(t: torch.Tensor | np.ndarray) -> bytes:
    """The tensor's bytes in row-major order, whatever its strides."""
    if isinstance(t, torch.Tensor):
        fresh = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # plain strides, view-able
        return fresh.view(torch.uint8).numpy().tobytes()
    return np.ascontiguousarray(t).tobytes()


@st.composite
def tensors(draw) -> torch.Tensor | np.ndarray:
    lib = draw(st.sampled_from(["torch", "numpy"]))
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    strided = draw(st.booleans()) and len(shape) > 0
    full = (shape[0] * 2, *shape[1:]) if strided else shape
    count = int(np.prod(full, dtype=np.int64))
    if lib == "torch":
        dtype = draw(st.sampled_from(TORCH_DTYPES))
        size = count * dtype.itemsize
        data = np.frombuffer(draw(st.binary(min_size=size, max_size=size)), np.uint8).copy()
        t = torch.empty(size, dtype=torch.uint8).copy_(torch.from_numpy(data))
        t = (t & 1) if dtype == torch.bool else t  # only 0/1 are valid bools
        t = t.view(dtype).reshape(full)
    else:
        dtype = np.dtype(draw(st.sampled_from(NUMPY_DTYPES)))
        size = count * dtype.itemsize
        data = np.frombuffer(draw(st.binary(min_size=size, max_size=size)), np.uint8).copy()
        data = (data & 1) if dtype == np.bool_ else data
        t = data.view(dtype).reshape(full)
    return t[::2] if strided else t  # every other row: not contiguous


payloads = st.builds(
    Payload,
    kind=st.sampled_from(list(Kind)),
    tensors=st.dictionaries(st.text(min_size=1, max_size=12), tensors(), max_size=6),
    meta=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


def assert_same(sent: Payload, got: Payload) -> None:
    assert got.kind == sent.kind
    assert got.meta == sent.meta
    assert list(got.tensors) == list(sent.tensors)
    for name, a in sent.tensors.items():
        b = got.tensors[name]
        assert type(b) is (torch.Tensor if isinstance(a, torch.Tensor) else np.ndarray), name
        assert b.dtype == a.dtype and tuple(b.shape) == tuple(a.shape), name
        assert raw(b) == raw(a), name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, chunk_bytes=st.integers(1, 5000))
def test_round_trip_is_bit_exact(payload: Payload, chunk_bytes: int) -> None:
    frames = encode(payload, **HEADER, chunk_bytes=chunk_bytes)
    chunks = frames[1:]
    assert frames[0].WhichOneof("body") == "header"
    assert all(f.WhichOneof("body") == "chunk" and 0 < len(f.chunk) <= chunk_bytes for f in chunks)
    assert sum(len(f.chunk) for f in chunks) == payload.nbytes == frames[0].header.payload_bytes

    msg = decode(frames)
    assert_same(payload, msg.payload)
    assert (msg.src, msg.dst, msg.round, msg.tag, msg.message_id, msg.run_id) == (
        "alice", "bob", 3, "fedavg", "m-1", "run-1")
    assert msg.frames == len(frames)
    assert msg.payload_bytes == payload.nbytes
    # wire_bytes is computed without serializing chunks; it must equal the real serialized size.
    serialized = [f.SerializeToString() for f in frames]
    assert msg.wire_bytes == wire_bytes(frames) == sum(len(s) + 5 for s in serialized)

    # The receiving side parses raw frames itself (chunks as views): same result, same bytes.
    again = decode(parse_frame(s) for s in serialized)
    assert_same(payload, again.payload)
    assert again.wire_bytes == msg.wire_bytes


def test_decoded_tensors_are_writable_and_independent_of_the_sender() -> None:
    # int8[3] first puts the float64 at offset 3: misaligned, so it takes the copy path.
    sent = Payload(Kind.MODEL, {"i": torch.arange(3, dtype=torch.int8), "d": torch.arange(4, dtype=torch.float64),
                                "n": np.arange(5, dtype=np.float32), "z": torch.tensor(2.5, dtype=torch.bfloat16)})
    got = decode(encode(sent, **HEADER, chunk_bytes=4)).payload.tensors
    got["d"].add_(1)
    got["n"] += 1
    got["z"].mul_(2)
    assert torch.equal(got["d"], torch.arange(4, dtype=torch.float64) + 1)
    assert np.array_equal(got["n"], np.arange(5, dtype=np.float32) + 1)
    assert got["z"].item() == 5.0
    assert torch.equal(sent.tensors["d"], torch.arange(4, dtype=torch.float64))
    assert np.array_equal(sent.tensors["n"], np.arange(5, dtype=np.float32))


def test_lazy_views_and_foreign_byte_order_are_materialized() -> None:
    c = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    sent = Payload(Kind.SAMPLES, {"conj": c.conj(), "neg": torch.arange(3.0)._neg_view(),
                                  "big_endian": np.arange(4, dtype=">i4"), "grad": torch.ones(2, requires_grad=True)})
    got = decode(encode(sent, **HEADER)).payload.tensors
    assert torch.equal(got["conj"], torch.tensor([1 - 2j, 3 + 4j], dtype=torch.complex64))
    assert torch.equal(got["neg"], -torch.arange(3.0))
    assert got["big_endian"].dtype == np.int32 and got["big_endian"].tolist() == [0, 1, 2, 3]
    assert not got["grad"].requires_grad


@pytest.mark.parametrize("bad, text", [
    (np.array(["a", "b"]), "numpy dtype <U1 cannot be sent"),
    (np.array([1.0], dtype=np.longdouble), "cannot be sent"),
    ([1, 2, 3], "expected a torch.Tensor or numpy.ndarray, got list"),
    (torch.zeros(2).to_sparse(), "only dense tensors"),
])
def test_unsendable_tensors_are_rejected_clearly(bad: object, text: str) -> None:
    with pytest.raises(CodecError, match="tensor 'x'") as err:
        encode(Payload(Kind.MODEL, {"x": bad}), **HEADER)
    assert text in str(err.value)
    assert err.value.code == wire_pb2.BAD_HEADER


@pytest.mark.parametrize("mb", [1, 4, 16])
def test_wire_overhead_is_below_one_percent_for_large_payloads(mb: int) -> None:
    payload = Payload(Kind.MODEL, {f"layer{i}.weight": torch.randn(mb << 16) for i in range(4)})
    frames = encode(payload, **HEADER)
    assert payload.nbytes == mb << 20
    assert len(frames) == 1 + mb
    assert wire_bytes(frames) / payload.nbytes <= 1.01
    one_mb = Payload(Kind.MODEL, {"w": np.zeros(250_000, dtype=np.float32)})  # 10^6 bytes
    assert wire_bytes(encode(one_mb, **HEADER)) / 1_000_000 <= 1.01


def test_default_chunk_size_is_one_mebibyte() -> None:
    frames = encode(Payload(Kind.MODEL, {"w": torch.zeros((3 << 20) // 4 + 1)}), **HEADER)
    assert CHUNK_BYTES == 1 << 20
    assert [len(f.chunk) for f in frames[1:]] == [CHUNK_BYTES] * 3 + [4]


def test_empty_payload_has_only_a_header() -> None:
    frames = encode(Payload(Kind.CONTROL, meta={"stop": "1"}), **HEADER)
    assert len(frames) == 1 and frames[0].header.num_chunks == 0
    msg = decode(frames)
    assert msg.payload.tensors == {} and msg.payload.meta == {"stop": "1"} and msg.kind == Kind.CONTROL


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_crc32_combine_matches_zlib(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_parallel_crc32_equals_one_zlib_pass() -> None:
    data = np.frombuffer(os.urandom(13 << 20), np.uint8)
    views = [memoryview(data[:7]), memoryview(data[7:5 << 20]), memoryview(data[5 << 20:])]
    assert crc32(views) == zlib.crc32(data)


def test_running_crc32_matches_zlib_for_any_split() -> None:
    data = np.frombuffer(os.urandom(11 << 20), np.uint8)
    running = RunningCrc32()
    for start, end in [(0, 1), (1, 1), (1, 3 << 20), (3 << 20, (9 << 20) + 5), ((9 << 20) + 5, 11 << 20)]:
        running.add(memoryview(data[start:end]))
    assert running.value() == zlib.crc32(data)
    assert RunningCrc32().value() == 0 == zlib.crc32(b"")


def test_corruption_in_a_big_payload_is_caught() -> None:
    # Big enough that both ends checksum on worker threads.
    frames = encode(Payload(Kind.MODEL, {"w": torch.randn(9 << 18)}), **HEADER)
    assert decode(frames).payload_bytes == 9 << 20
    data = bytearray(frames[6].chunk)
    data[12345] ^= 1
    frames[6] = wire_pb2.Frame(chunk=bytes(data))
    with pytest.raises(CodecError, match="checksum mismatch") as err:
        decode(frames)
    assert err.value.code == wire_pb2.CORRUPT
