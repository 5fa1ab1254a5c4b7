"""GrpcTransport: one gRPC server per process side plus cached client channels to peers.

Each message is one client-streaming ``Deliver`` call (header frame, then chunks); the server
answers with a Receipt once the message was decoded and handed to the destination node.
``server_credentials``/``channel_credentials`` switch on (mutual) TLS, see fedsim.wire.tls; None =
plaintext. ``authorize(peer, header)`` runs on each incoming header with the caller's certificate
name (None on plaintext) and refuses the message by raising WireError; ``target_names`` maps a
peer address to the name its server certificate must carry.
"""
from __future__ import annotations

import threading
from concurrent import futures
from typing import Callable, Mapping, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fedsim.errors import WireError
from fedsim.v1 import wire_pb2, wire_pb2_grpc
from fedsim.wire.codec import parse_frame, serialize_frame
from fedsim.wire.message import Message
from fedsim.wire.receiver import Routes, receive
from fedsim.wire.tls import peer_name
from fedsim.wire.transport import Transport, check_receipt

SERVICE_NAME = "fedsim.v1.Transport"
# One frame is a 1 MiB chunk or a header; 64 MiB leaves room for headers with ~10^6 tensor specs.
MAX_FRAME_BYTES = 64 << 20

_COMMON_OPTIONS = [
    ("grpc.max_send_message_length", MAX_FRAME_BYTES),
    ("grpc.max_receive_message_length", MAX_FRAME_BYTES),
]
_SERVER_OPTIONS = _COMMON_OPTIONS + [
    # Accept the clients' keepalive pings instead of answering them with GOAWAY.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),  # port 0 must give every server its own port
]
_CHANNEL_OPTIONS = _COMMON_OPTIONS + [
    # Notice dead peers during long idle gaps between rounds.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Peers start at slightly different times: retry connecting quickly rather than after ~1 s+.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


Authorize = Callable[[str | None, wire_pb2.Header], None]


def _deliver_handler(routes: Routes, max_payload_bytes: int | None, authorize: Authorize | None) -> grpc.GenericRpcHandler:
    """The Transport service, registered by hand (not via the generated servicer) so that frames
    are parsed with codec.parse_frame, which hands chunks over without protobuf copies."""

    def deliver(request_iterator, context) -> wire_pb2.Receipt:
        check = None
        if authorize is not None:
            peer = peer_name(context)
            check = lambda header: authorize(peer, header)  # noqa: E731
        return receive(request_iterator, routes, max_payload_bytes, check)

    handler = grpc.stream_unary_rpc_method_handler(
        deliver, request_deserializer=parse_frame, response_serializer=wire_pb2.Receipt.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE_NAME, {"Deliver": handler})


class GrpcTransport(Transport):
    """Serves ``fedsim.v1.Transport`` and ``grpc.health.v1.Health`` on host:port (0 = any free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_payload_bytes: int | None = 2**31,
        max_workers: int = 16,
        server_credentials: grpc.ServerCredentials | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        authorize: Authorize | None = None,
        target_names: Mapping[str, str] | None = None,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._routes = Routes()
        self._channel_credentials = channel_credentials
        self._target_names = dict(target_names or {})
        self._channels: dict[str, tuple[grpc.Channel, Callable]] = {}
        self._lock = threading.Lock()
        self._closed = False

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=_SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers([_deliver_handler(self._routes, max_payload_bytes, authorize)])
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        target = _host_port(host, port)
        try:
            if server_credentials is None:
                bound = self._server.add_insecure_port(target)
            else:
                bound = self._server.add_secure_port(target, server_credentials)
        except RuntimeError as err:
            raise WireError(f"cannot listen on {target}: {err}") from None
        if not bound:
            raise WireError(f"cannot listen on {target}")
        self.address = _host_port(host, bound)
        self._server.start()
        for service in ("", SERVICE_NAME):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def set_serving(self, service: str, serving: bool = True) -> None:
        """Publish ``service`` in the standard health service (a deployed node: once it is ready)."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        self._health.set(service, status)

    def register(self, node: str, on_message: Callable[[Message], None]) -> None:
        self._routes.add(node, on_message)

    def unregister(self, node: str) -> None:
        self._routes.remove(node)

    def _deliver(self, address: str) -> Callable:
        with self._lock:
            if self._closed:
                raise WireError("transport is closed")
            cached = self._channels.get(address)
            if cached is None:
                if self._channel_credentials is None:
                    channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
                else:
                    options = list(_CHANNEL_OPTIONS)
                    if address in self._target_names:  # verify the server is the node we mean to reach
                        options.append(("grpc.ssl_target_name_override", self._target_names[address]))
                    channel = grpc.secure_channel(address, self._channel_credentials, options=options)
                # Raw chunk buffers (codec.encode(lazy=True)) are serialized here, in gRPC's sending thread.
                deliver = channel.stream_unary(f"/{SERVICE_NAME}/Deliver", request_serializer=serialize_frame,
                                               response_deserializer=wire_pb2.Receipt.FromString)
                cached = self._channels[address] = (channel, deliver)
            return cached[1]

    def send(self, address: str, frames: Sequence[wire_pb2.Frame], *, timeout: float) -> wire_pb2.Receipt:
        deliver = self._deliver(address)
        try:
            receipt = deliver(iter(frames), timeout=timeout)
        except grpc.RpcError as err:
            raise WireError(_describe(err, address, timeout, tls=self._channel_credentials is not None)) from None
        except ValueError as err:  # grpc's answer when close() ran concurrently with this send
            raise WireError(f"sending to peer at {address} failed: {err}") from None
        return check_receipt(address, receipt)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            channels, self._channels = list(self._channels.values()), {}
        self._health.enter_graceful_shutdown()
        self._server.stop(grace=1.0).wait()
        for channel, _ in channels:
            channel.close()


def _describe(err: grpc.RpcError, address: str, timeout: float, tls: bool = False) -> str:
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.UNAVAILABLE:
        # gRPC reports a refused TLS handshake like a dead peer; say what else it may be
        hint = (" (with mutual TLS this is also how a rejected handshake looks: both certificates must come "
                "from the federation's CA and the server's must name the node dialled)") if tls else ""
        return f"peer at {address} unreachable: {details}{hint}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"sending to peer at {address} timed out after {timeout:g}s"
    name = code.name if code is not None else "UNKNOWN"
    return f"sending to peer at {address} failed ({name}): {details}"
