#!/bin/sh
# Container entrypoint: run this container's hospital node. Settings come from the environment
# (fedsim deploy compose writes them); extra arguments are passed on to `fedsim node`.
#   FEDSIM_NODE    node name in the federation file (required)
#   FEDSIM_CONFIG  federation file (default /etc/fedsim/federation.yaml)
#   FEDSIM_CERTS   folder with ca.pem, node.pem, node.key (default /certs)
#   FEDSIM_OUT     output folder (default /out)
#   FEDSIM_LISTEN  bind address, e.g. 0.0.0.0:50051 (default: the node's address in the file)
set -eu
: "${FEDSIM_NODE:?set FEDSIM_NODE to this container's node name}"
: "${FEDSIM_CONFIG:=/etc/fedsim/federation.yaml}"
: "${FEDSIM_CERTS:=/certs}"
: "${FEDSIM_OUT:=/out}"
if [ -n "${FEDSIM_LISTEN:-}" ]; then
  set -- --listen "$FEDSIM_LISTEN" "$@"
fi
# exec: `fedsim node` replaces this shell, so it is the process `docker stop` sends SIGTERM to
exec fedsim node --config "$FEDSIM_CONFIG" --name "$FEDSIM_NODE" --certs "$FEDSIM_CERTS" --out "$FEDSIM_OUT" "$@"
