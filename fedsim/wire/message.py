"""Message: one decoded delivery — the payload plus who sent it, for what and what it cost on the wire."""
from __future__ import annotations

from dataclasses import dataclass

from fedsim.payload import Kind, Payload


@dataclass
class Message:
    src: str
    dst: str
    round: int
    tag: str
    kind: Kind
    message_id: str
    run_id: str
    payload: Payload
    payload_bytes: int   # raw tensor bytes
    wire_bytes: int      # measured bytes on the wire, see fedsim.wire.codec.wire_bytes
    frames: int          # header + chunks
