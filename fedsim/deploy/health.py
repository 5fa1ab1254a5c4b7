"""Readiness over the standard gRPC health service: what peers and container health checks ask.

Kept free of torch so that `fedsim deploy health` (run by Docker every few seconds) starts fast.
"""
from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fedsim.errors import FedsimError

READY_SERVICE = "fedsim.node"            # SERVING: the node is up and accepts messages
STARTED_SERVICE = "fedsim.node.started"  # SERVING: its own neighbours are up too (start barrier, phase 2)


def probe_health(address: str, channel_creds: grpc.ChannelCredentials | None, name: str | None,
                 timeout: float = 2.0, service: str = READY_SERVICE) -> bool:
    """True when the node at `address` answers the health check for `service` with SERVING.

    With TLS the server's certificate must name `name` (the node we mean to reach)."""
    options = [("grpc.ssl_target_name_override", name)] if channel_creds is not None and name else []
    channel = (grpc.secure_channel(address, channel_creds, options=options) if channel_creds is not None
               else grpc.insecure_channel(address))
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=timeout)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def client_credentials(folder: Path) -> grpc.ChannelCredentials:
    """Channel credentials from a node's certificate folder (ca.pem, node.pem, node.key).

    The same files as fedsim.wire.tls.TlsFiles reads; not imported from there because fedsim.wire
    pulls in torch, which would make every container health probe cost seconds of CPU."""
    paths = [folder / n for n in ("ca.pem", "node.pem", "node.key")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FedsimError(f"TLS files missing: {', '.join(missing)} (create them with `fedsim deploy certs`, "
                          "or use --insecure on a trusted test network)")
    ca, cert, key = (p.read_bytes() for p in paths)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
