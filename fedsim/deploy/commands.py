"""The deployment subcommands of the `fedsim` CLI: `fedsim node` and `fedsim deploy certs|compose|health`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

NODE_EPILOG = """\
examples:
  fedsim node --config federation.yaml --name hospital-a
  fedsim node --config federation.yaml --name hospital-a --certs /certs --out /out --listen 0.0.0.0:50051
  fedsim node --config federation.yaml --name hospital-a --insecure     # plaintext: trusted test networks only

The node serves on nodes.<NAME>.listen (default: its address), waits up to deploy.startup_timeout_s
for its neighbours' health checks, then runs `rounds` rounds of the policy on its own. A neighbour
that does not deliver within runtime.recv_timeout_s is left out of that round and logged.
SIGTERM/SIGINT: the current round is finished, logs are flushed and model.pt is written.
Outputs in --out (default deploy.output/NAME/NODE): metrics.csv, comm.csv, comm_received.csv,
node.json, node.log, model.pt. Merge the nodes' folders with `fedsim report deploy.output/NAME`.
"""

DEPLOY_EPILOG = """\
a site runs:
  fedsim deploy certs federation.yaml -o certs/           # once, by whoever holds the CA
  fedsim deploy compose federation.yaml -o compose.yaml    # one service per hospital
  docker compose -f compose.yaml up -d hospital-a          # each site starts its own service
"""


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    node = sub.add_parser("node", help="run one hospital's node as a long-lived process (real deployment)",
                          description="Run ONE node of a federation file with its own gRPC server; rounds are "
                                      "driven by the node itself, no coordinator. Mutual TLS by default.",
                          epilog=NODE_EPILOG, formatter_class=fmt)
    node.add_argument("--config", required=True, metavar="FEDERATION_YAML",
                      help="federation file: experiment config plus nodes: name -> {address, ...}")
    node.add_argument("--name", required=True, help="which node of the federation file this process is")
    node.add_argument("--certs", metavar="DIR", help="TLS folder with ca.pem, node.pem, node.key, or the tree "
                      "written by `fedsim deploy certs` (default: deploy.certs of the federation file)")
    node.add_argument("--insecure", action="store_true", help="plaintext gRPC without authentication (tests only)")
    node.add_argument("--listen", metavar="HOST:PORT", help="bind address (default: nodes.NAME.listen or address)")
    node.add_argument("--out", metavar="DIR", help="this node's output folder")
    node.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")
    node.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    node.set_defaults(func=cmd_node)

    dep = sub.add_parser("deploy", help="certificates and compose files for a real-node federation",
                         description="Prepare a real deployment from a federation file.",
                         epilog=DEPLOY_EPILOG, formatter_class=fmt)
    dsub = dep.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    certs = dsub.add_parser("certs", help="create a CA and one key/certificate per node",
                            description="Write OUT/ca.pem, OUT/ca.key (keep it offline) and OUT/<node>/{ca.pem,node.pem,"
                                        "node.key}. An existing CA in OUT is reused unless --force.")
    certs.add_argument("federation")
    certs.add_argument("-o", "--out", default="certs", help="output folder (default: certs)")
    certs.add_argument("--days", type=int, default=825, help="validity in days (default: 825)")
    certs.add_argument("--force", action="store_true", help="create a new CA even if OUT has one")
    certs.set_defaults(func=cmd_certs)
    comp = dsub.add_parser("compose", help="write a Docker Compose file with one service per hospital",
                           description="One service per node: image, address, certificate and data mounts, "
                                       "health check, restart policy, GPU reservation for nodes with gpu: true.")
    comp.add_argument("federation")
    comp.add_argument("-o", "--out", default="compose.yaml", help="output file (default: compose.yaml)")
    comp.add_argument("--image", help="image name (default: deploy.image of the federation file)")
    comp.set_defaults(func=cmd_compose)
    health = dsub.add_parser("health", help="exit 0 when a node answers its gRPC health check as ready",
                             description="Used as the container health check; speaks mTLS with the node's own "
                                         "certificate unless --insecure.")
    health.add_argument("federation")
    health.add_argument("--name", required=True)
    health.add_argument("--certs", metavar="DIR")
    health.add_argument("--insecure", action="store_true")
    health.add_argument("--address", metavar="HOST:PORT",
                        help="where to probe (default: the node's address; containers use 127.0.0.1:PORT)")
    health.add_argument("--timeout", type=float, default=3.0)
    health.set_defaults(func=cmd_health)


def _tls_dir(fed, name: str, certs: str | None, insecure: bool) -> Path | None:
    if insecure:
        return None
    from fedsim.deploy.certs import node_cert_dir
    return node_cert_dir(Path(certs) if certs else fed.resolve(fed.deploy["certs"]), name)


def cmd_node(args) -> int:
    from fedsim.deploy.federation import load_federation_file
    from fedsim.deploy.health import client_credentials

    fed = load_federation_file(args.config, args.set or ())
    fed.node(args.name)
    tls = _tls_dir(fed, args.name, args.certs, args.insecure)
    if tls is not None:
        client_credentials(tls)  # missing certificates: say so before loading torch, data and model
    out = Path(args.out) if args.out else fed.resolve(fed.deploy["output"]) / fed.cfg["name"] / args.name
    if args.insecure:
        print(f"warning: {args.name} runs WITHOUT TLS: any host can send it models", file=sys.stderr)
    from fedsim.deploy.standalone import StandaloneNode
    node = StandaloneNode(fed, args.name, out_dir=out, tls_dir=tls, listen=args.listen, threads=args.threads)
    node.install_signal_handlers()
    try:
        summary = node.run()
    finally:
        node.close()
    missing = ", ".join(f"{p} (rounds {v})" for p, v in summary["missing"].items()) or "none"
    print(f"{args.name}: {summary['status']} after {summary['rounds_done']} rounds in {summary['wall_s']:.1f} s; "
          f"missing peers: {missing}; outputs in {out}")
    # Everything is written, flushed and closed. Tearing down the interpreter's native state (torch,
    # gRPC core) took 10+ s on a busy host, which a supervisor would count as a hung stop: leave now.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_certs(args) -> int:
    from fedsim.deploy.certs import write_certs
    from fedsim.deploy.federation import load_federation_file

    fed = load_federation_file(args.federation)
    dirs = write_certs(fed, Path(args.out), force=args.force, days=args.days)
    print(f"CA: {Path(args.out) / 'ca.pem'} (keep {Path(args.out) / 'ca.key'} offline)")
    for d in dirs:
        print(f"  {d.name}: {d}/node.pem, {d}/node.key")
    return 0


def cmd_compose(args) -> int:
    from fedsim.deploy.compose import write_compose
    from fedsim.deploy.federation import load_federation_file

    fed = load_federation_file(args.federation)
    path = write_compose(fed, Path(args.out), image=args.image)
    print(f"wrote {path}: services {', '.join(fed.nodes)}")
    return 0


def cmd_health(args) -> int:
    from fedsim.deploy.federation import load_federation_file
    from fedsim.deploy.health import client_credentials, probe_health

    fed = load_federation_file(args.federation)
    spec = fed.node(args.name)
    tls = _tls_dir(fed, args.name, args.certs, args.insecure)
    creds = client_credentials(tls) if tls is not None else None
    address = args.address or spec.address
    ok = probe_health(address, creds, args.name, timeout=args.timeout)
    print(f"{args.name} at {address}: {'SERVING' if ok else 'NOT SERVING'}")
    return 0 if ok else 1
