"""`fedsim` command line: run simulations, inspect topologies, summarise runs."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fedsim._version import __version__
from fedsim.errors import FedsimError

DESCRIPTION = """\
fedsim — decentralized federated learning between hospitals.

Hospitals are nodes of a networkx topology; each holds private data and exchanges models,
prompts, generators or samples only with its neighbours, over real gRPC sockets. Every byte
that crosses a link is measured and written to the run's comm.csv.
"""

RUN_EPILOG = """\
examples:
  fedsim run examples/quickstart.yaml
  fedsim run examples/quickstart.yaml --set rounds=3 --set runtime.kind=local
  fedsim run examples/quickstart.yaml --set topology=full8 --set policy.name=fedavg

outputs (in output.dir/NAME/STAMP/): config.yaml (resolved), topology.graphml,
metrics.csv (round,node,metric,value), comm.csv (one row per message sent),
comm_received.csv (the receivers' view), summary.json.
runtimes: ray (default), local.
policies: (`fedsim options policy NAME` lists their options)
"""


def _cmd_run(args) -> int:
    from fedsim.config import load_config
    from fedsim.runtime.driver import run_experiment

    overrides = list(args.set or [])
    if args.runtime:
        overrides.append(f"runtime.kind={args.runtime}")
    if args.out:
        overrides.append(f"output.dir={args.out}")
    cfg = load_config(args.config, overrides)
    result = run_experiment(cfg, progress=False if args.quiet else None)
    if args.quiet:
        print(result.run_dir)
    return 0


def _cmd_topology_show(args) -> int:
    from fedsim.topology import draw, load_topology, summary

    graph = load_topology(args.file)
    print(summary(graph))
    png = Path(args.png) if args.png else Path(f"{graph.graph.get('name') or Path(args.file).stem}.png")
    draw(graph, png)
    print(f"drawing written to {png}")
    return 0


def _cmd_report(args) -> int:
    from fedsim.report.nodes import format_deployment, is_node_run, merge_nodes
    from fedsim.report.summary import format_report

    run_dir = Path(args.run_dir)
    if is_node_run(run_dir):  # folders of deployed nodes: merge them into one run view first
        summary = merge_nodes(run_dir)
        print(format_report(run_dir) + format_deployment(summary))
        return 0
    print(format_report(run_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedsim", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    p.add_argument("--version", action="version", version=f"fedsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a simulated federation from an experiment YAML",
                         description="Run a simulated federation: Ray worker actors (or threads with "
                                     "--runtime local) host the nodes, which talk over real gRPC.",
                         epilog=RUN_EPILOG + _policy_lines(), formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("config", help="experiment YAML (see examples/)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config value, e.g. --set rounds=5 --set train.lr=0.05 (repeatable)")
    run.add_argument("--runtime", choices=["ray", "local"], help="shortcut for --set runtime.kind=...")
    run.add_argument("--out", metavar="DIR", help="shortcut for --set output.dir=DIR")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress display; print the run directory")
    run.set_defaults(func=_cmd_run)

    topo = sub.add_parser("topology", help="inspect topologies")
    tsub = topo.add_subparsers(dest="topology_command", required=True, metavar="ACTION")
    show = tsub.add_parser("show", help="print a summary of a topology and write a PNG drawing",
                           description="FILE: a topologies/*.yaml name or path, GraphML, GML or edge list.")
    show.add_argument("file")
    show.add_argument("--png", help="where to write the drawing (default: NAME.png in the current directory)")
    show.set_defaults(func=_cmd_topology_show)

    rep = sub.add_parser("report", help="summarise a run directory (accuracy, bytes per kind and link)",
                         description="RUN_DIR: a `fedsim run` directory, or a folder holding the per-node folders "
                                     "of a deployment (`fedsim node` outputs), which are merged into one run view "
                                     "(metrics.csv, comm.csv, comm_received.csv, summary.json written there).")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_cmd_report)

    from fedsim.deploy.commands import add_commands
    add_commands(sub)  # fedsim node, fedsim deploy certs|compose|health
    from fedsim.catalog import add_command
    add_command(sub)   # fedsim options
    return p


def _policy_lines() -> str:
    """Every registered policy with its one-line summary (from the registry, so it cannot drift)."""
    from fedsim.catalog import summary_line
    from fedsim.policies import builtin_policies

    width = max(len(n) for n in builtin_policies())
    lines = [f"  {name:<{width}}  {summary_line(cls)}".rstrip() for name, cls in sorted(builtin_policies().items())]
    return "\n".join(lines) + "\n  or 'package.module:Class' / an installed entry point (docs/plugins.md)\n"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except FedsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; partial results are in the run directory", file=sys.stderr)
        return 130
    except Exception as exc:
        # Ray re-raises a worker's FedsimError wrapped; unwrap it to a clean message.
        cause = getattr(exc, "cause", None)
        if isinstance(cause, FedsimError):
            print(f"error: {cause}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
