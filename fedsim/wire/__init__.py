"""fedsim.wire: typed payloads over gRPC (or in-process) with measured byte counts.

- codec: Payload <-> frames (header + 1 MiB raw chunks), ``wire_bytes`` is THE byte count.
- transport: the Transport interface; GrpcTransport and InprocTransport implement it.
- receiver: the shared frames -> Receipt + delivery path.
- ledger: per-message rows, CSV export, per-link balance checks and the link time model.
"""
from fedsim.v1.wire_pb2 import ErrorCode, Frame, Header, Receipt, TensorSpec
from fedsim.wire.codec import CHUNK_BYTES, CodecError, decode, encode, wire_bytes
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.inproc_transport import InprocTransport
from fedsim.wire.ledger import (
    DEFAULT_BANDWIDTH_MBPS,
    DEFAULT_LATENCY_MS,
    Ledger,
    LedgerRow,
    check_balanced,
    link_time,
)
from fedsim.wire.message import Message
from fedsim.wire.receiver import receive
from fedsim.wire.transport import DeliveryError, Transport

__all__ = [
    "CHUNK_BYTES", "DEFAULT_BANDWIDTH_MBPS", "DEFAULT_LATENCY_MS", "CodecError", "DeliveryError",
    "ErrorCode", "Frame", "GrpcTransport", "Header", "InprocTransport", "Ledger", "LedgerRow",
    "Message", "Receipt", "TensorSpec", "Transport", "check_balanced", "decode", "encode",
    "link_time", "receive", "wire_bytes",
]
