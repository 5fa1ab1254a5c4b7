"""Payload <-> frames: one header frame, then the raw tensor bytes cut into chunks.

Byte accounting
---------------
``wire_bytes(frames)`` is THE byte count fedsim reports for a message, on both sides of a link
and for every transport: for each frame, its serialized protobuf size plus the 5-byte gRPC
length prefix (1 compression flag + 4 length bytes). HTTP/2 framing (9 bytes per <=16 KiB DATA
frame), HTTP/2 headers and TCP/IP overhead are not counted. ``payload_bytes`` is the raw tensor
bytes alone; for payloads of 1 MB or more wire_bytes/payload_bytes stays below 1.01.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from fedsim.errors import WireError
from fedsim.payload import Kind, Payload
from fedsim.v1 import wire_pb2
from fedsim.wire.checksum import RunningCrc32
from fedsim.wire.message import Message
from fedsim.wire.tensors import Layout, TensorError, layout_of, raw_bytes, rebuild

CHUNK_BYTES = 1 << 20
GRPC_PREFIX_BYTES = 5
_CHUNK_TAG_BYTES = 1  # field 2, wire type 2 -> one tag byte


class CodecError(WireError):
    """A frame stream cannot be turned into a message; ``code`` is a wire_pb2.ErrorCode value.

    ``frames`` and ``wire_bytes`` tell how much of the stream was read before giving up.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.frames = 0
        self.wire_bytes = 0

    @property
    def code_name(self) -> str:
        return wire_pb2.ErrorCode.Name(self.code)


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def chunk_frame_size(n: int) -> int:
    """Serialized size of a Frame holding an n-byte chunk (computed: serializing 1 MiB to measure it is waste)."""
    return _CHUNK_TAG_BYTES + _varint_len(n) + n


def frame_size(frame: "wire_pb2.Frame | memoryview") -> int:
    """Serialized protobuf size of one frame (or of a raw chunk, see parse_frame), without the gRPC prefix."""
    if not isinstance(frame, wire_pb2.Frame):
        return chunk_frame_size(len(frame))
    if frame.WhichOneof("body") == "chunk":
        return chunk_frame_size(len(frame.chunk))
    return frame.ByteSize()


def is_header(frame: "wire_pb2.Frame | memoryview") -> bool:
    return isinstance(frame, wire_pb2.Frame) and frame.WhichOneof("body") == "header"


def parse_frame(raw: bytes) -> "wire_pb2.Frame | memoryview":
    """Deserialize one received frame; a chunk frame comes back as a view of its bytes inside ``raw``.

    Receivers use this instead of Frame.FromString to skip two copies of every chunk (into the
    protobuf arena, then out again on ``frame.chunk``); ``decode`` accepts both forms.
    """
    # A chunk frame is exactly: tag 0x12 (field 2, length-delimited), varint length, bytes.
    if raw[:1] == b"\x12":
        n, shift, pos = 0, 0, 1
        while pos < len(raw) and pos <= 10:
            byte = raw[pos]
            n |= (byte & 0x7F) << shift
            pos += 1
            if not byte & 0x80:
                if pos + n == len(raw):
                    return memoryview(raw)[pos:]
                break
            shift += 7
    return wire_pb2.Frame.FromString(raw)


def serialize_frame(frame: "wire_pb2.Frame | memoryview | bytes") -> bytes:
    """Wire form of one frame; a raw chunk buffer becomes a chunk Frame with one copy of its bytes."""
    if isinstance(frame, wire_pb2.Frame):
        return frame.SerializeToString()
    n = len(frame)
    prefix = bytearray(b"\x12")  # field 2 (chunk), length-delimited
    while True:  # varint length
        byte, n = n & 0x7F, n >> 7
        prefix.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(prefix) + frame


def wire_bytes(frames: "Iterable[wire_pb2.Frame | memoryview]") -> int:
    """Measured bytes of a frame stream: serialized size + 5-byte gRPC prefix per frame."""
    return sum(frame_size(f) + GRPC_PREFIX_BYTES for f in frames)


def _chunks(views: Sequence[memoryview], chunk_bytes: int, copy: bool = True) -> Iterator[bytes | memoryview]:
    """Cut the end-to-end concatenation of ``views`` into chunks, copying each byte exactly once.

    With ``copy=False`` a chunk that lies inside one view is yielded as a view (no copy at all).
    """
    pieces: list[memoryview] = []
    room = chunk_bytes
    for view in views:
        pos, n = 0, len(view)
        while pos < n:
            take = min(room, n - pos)
            pieces.append(view[pos:pos + take])
            pos += take
            room -= take
            if room == 0:
                if len(pieces) == 1:
                    yield pieces[0].tobytes() if copy else pieces[0]
                else:
                    yield b"".join(pieces)
                pieces, room = [], chunk_bytes
    if pieces:
        yield b"".join(pieces) if copy or len(pieces) > 1 else pieces[0]


def encode(
    payload: Payload,
    *,
    run_id: str,
    round: int,
    src: str,
    dst: str,
    tag: str,
    message_id: str,
    chunk_bytes: int = CHUNK_BYTES,
    lazy: bool = False,
) -> "list[wire_pb2.Frame | memoryview]":
    """Frames for ``payload``: the header first, then chunks of at most ``chunk_bytes`` raw bytes.

    With ``lazy=True`` chunk frames are left as raw buffers (views of the tensors' own memory where
    a chunk lies inside one tensor): `serialize_frame` writes each straight to the wire with a single
    copy, while gRPC streams the previous one. Both forms have the same `wire_bytes` and decode alike.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    if not 0 <= round < 2**32:
        raise CodecError(wire_pb2.BAD_HEADER, f"round must fit in uint32, got {round}")
    # Tensor bytes are checksummed and cut before the header exists: it carries both results.
    specs, views = [], []
    try:
        for name, tensor in payload.tensors.items():
            spec, view = raw_bytes(name, tensor)
            specs.append(spec)
            views.append(view)
    except TensorError as err:
        raise CodecError(wire_pb2.BAD_HEADER, str(err)) from None
    running = RunningCrc32()
    for view in views:
        running.add(view)  # big payloads: checksummed on worker threads while chunks are cut below
    total = sum(len(v) for v in views)
    chunk_frames = list(_chunks(views, chunk_bytes, copy=not lazy))
    if not lazy:
        chunk_frames = [wire_pb2.Frame(chunk=chunk) for chunk in chunk_frames]
    checksum = running.value()
    try:
        header = wire_pb2.Header(
            run_id=run_id, round=round, src=src, dst=dst, kind=int(payload.kind), tag=tag,
            message_id=message_id, tensors=specs, payload_bytes=total, num_chunks=len(chunk_frames),
            checksum=checksum, meta=payload.meta,
        )
    except (TypeError, ValueError) as err:  # e.g. a non-string meta value
        raise CodecError(wire_pb2.BAD_HEADER, f"cannot build the message header: {err}") from None
    return [wire_pb2.Frame(header=header), *chunk_frames]


class _Reader:
    """One pass over a frame stream; keeps counts so errors can say how far it got."""

    def __init__(self, max_payload_bytes: int | None) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.frames = 0
        self.wire_bytes = 0

    def read(self, frames: Iterable[wire_pb2.Frame | memoryview]) -> Message:
        it = iter(frames)
        first = next(it, None)
        if first is None:
            raise CodecError(wire_pb2.BAD_HEADER, "stream ended before the header frame")
        self.frames, self.wire_bytes = 1, frame_size(first) + GRPC_PREFIX_BYTES
        if not is_header(first):
            raise CodecError(wire_pb2.BAD_HEADER, "first frame is not the header")
        header = first.header
        layouts = self._check(header)
        buf = self._fill(header, it)
        payload = Payload(Kind(header.kind), rebuild(buf, layouts), dict(header.meta))
        return Message(
            src=header.src, dst=header.dst, round=header.round, tag=header.tag, kind=payload.kind,
            message_id=header.message_id, run_id=header.run_id, payload=payload,
            payload_bytes=header.payload_bytes, wire_bytes=self.wire_bytes, frames=self.frames,
        )

    def _check(self, header: wire_pb2.Header) -> list[Layout]:
        size, limit = header.payload_bytes, self.max_payload_bytes
        if limit is not None and size > limit:
            raise CodecError(wire_pb2.OVERSIZED, f"payload of {size} bytes exceeds the limit of {limit} bytes")
        try:
            Kind(header.kind)
        except ValueError:
            raise CodecError(wire_pb2.BAD_HEADER, f"unknown payload kind {header.kind}") from None
        try:
            layouts = [layout_of(spec) for spec in header.tensors]
        except TensorError as err:
            raise CodecError(wire_pb2.BAD_HEADER, str(err)) from None
        if len({lay.name for lay in layouts}) != len(layouts):
            raise CodecError(wire_pb2.BAD_HEADER, "duplicate tensor names in header")
        described = sum(lay.nbytes for lay in layouts)
        if described != size:
            raise CodecError(
                wire_pb2.BAD_HEADER, f"tensor specs add up to {described} bytes but payload_bytes is {size}")
        return layouts

    def _fill(self, header: wire_pb2.Header, it: Iterator[wire_pb2.Frame | memoryview]) -> np.ndarray:
        """Copy chunk bytes into one preallocated buffer, then checksum it."""
        size, limit = header.payload_bytes, self.max_payload_bytes
        # numpy rather than bytearray: it asks for huge pages on big buffers, which makes first
        # touch of the fresh memory several times cheaper, and it need not be zero-filled.
        buf = np.empty(size, dtype=np.uint8)
        view = memoryview(buf)
        running = RunningCrc32()  # checksums arrived bytes on worker threads while more stream in
        filled = chunks = 0
        for frame in it:
            self.frames += 1
            if isinstance(frame, wire_pb2.Frame):
                if frame.WhichOneof("body") != "chunk":
                    self.wire_bytes += frame_size(frame) + GRPC_PREFIX_BYTES
                    raise CodecError(
                        wire_pb2.BAD_HEADER,
                        f"frame {self.frames - 1} is not a chunk (only the first frame may be a header)")
                data = frame.chunk
            else:  # already-unwrapped chunk bytes, see parse_frame
                data = frame
            n = len(data)
            self.wire_bytes += chunk_frame_size(n) + GRPC_PREFIX_BYTES
            chunks += 1
            end = filled + n
            if end <= size:
                view[filled:end] = data
                running.add(view[filled:end])
            elif limit is not None and end > limit:
                # The header under-announced: stop reading rather than buffer a stream we will refuse.
                raise CodecError(
                    wire_pb2.OVERSIZED,
                    f"chunks carry more than the limit of {limit} bytes (header announced {size})")
            filled = end
        if filled != size or chunks != header.num_chunks:
            raise CodecError(
                wire_pb2.PARTIAL,
                f"received {filled} bytes in {chunks} chunks; header announced {size} bytes in {header.num_chunks} chunks")
        checksum = running.value()
        if checksum != header.checksum:
            raise CodecError(
                wire_pb2.CORRUPT, f"checksum mismatch: crc32 {checksum:#010x}, header says {header.checksum:#010x}")
        return buf


def decode(frames: Iterable[wire_pb2.Frame | memoryview], *, max_payload_bytes: int | None = None) -> Message:
    """Rebuild the message from its frames; raises CodecError (with a wire_pb2.ErrorCode) when it cannot.

    Chunk frames may also be given as their raw chunk bytes, as ``parse_frame`` returns them.

    Decoded tensors are writable views into one buffer owned by the message, bit-exact and of the
    same library (torch/numpy), dtype and shape as the sender's.
    """
    reader = _Reader(max_payload_bytes)
    try:
        return reader.read(frames)
    except CodecError as err:
        err.frames, err.wire_bytes = reader.frames, reader.wire_bytes
        raise
