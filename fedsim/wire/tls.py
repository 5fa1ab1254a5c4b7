"""Mutual TLS for GrpcTransport, and who a TLS peer is.

Both sides present a certificate signed by the federation CA (fedsim/deploy/certs.py). The
server learns the client's node name from its certificate's common name; `check_sender` then
insists that this name is the header's `src` and a topology neighbour of `dst`. The client
checks the server's certificate against the node name it meant to reach (target name override).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import networkx as nx

from fedsim.errors import FedsimError, WireError


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, folder: Path) -> "TlsFiles":
        files = cls(folder / "ca.pem", folder / "node.pem", folder / "node.key")
        missing = [str(p) for p in (files.ca, files.cert, files.key) if not p.is_file()]
        if missing:
            raise FedsimError(f"TLS files missing: {', '.join(missing)} (create them with `fedsim deploy certs`, "
                              "or run with --insecure on a trusted test network)")
        return files


def credentials(files: TlsFiles) -> tuple[grpc.ServerCredentials, grpc.ChannelCredentials]:
    """(server, channel) credentials: the server requires and verifies a client certificate."""
    ca, cert, key = files.ca.read_bytes(), files.cert.read_bytes(), files.key.read_bytes()
    server = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
    channel = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    return server, channel


def peer_name(context: grpc.ServicerContext) -> str | None:
    """The authenticated node name of the caller (certificate common name), None on plaintext."""
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else None


def check_sender(identity: str | None, src: str, dst: str, graph: nx.Graph, *, relay: bool = False) -> None:
    """Raise WireError unless the TLS identity is the header's sender and a neighbour of `dst`."""
    if identity is None:
        raise WireError(f"unauthenticated sender: {dst} requires a client certificate (mutual TLS)")
    if identity != src:
        raise WireError(f"unauthorized: the certificate belongs to {identity!r} but the header claims sender {src!r}")
    if not relay and not graph.has_edge(src, dst):
        raise WireError(f"unauthorized: {src!r} is not a topology neighbour of {dst!r}")
