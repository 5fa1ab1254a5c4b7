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
metrics.csv (round,node,metric,value), timing.csv (compute_s and simulated sim_round_s per node),
comm.csv (one row per message sent), comm_received.csv (the receivers' view), labels.csv,
models/NODE.pt (final state_dicts; output.save_models: false to skip), summary.json.
then: fedsim report RUN_DIR (plots, report.html); fedsim sweep / fedsim compare for many runs.
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
    if cfg.get("_sweep"):
        print(f"note: {args.config} has a sweep: section; `fedsim run` runs the base experiment once "
              f"(`fedsim sweep {args.config}` runs the grid)", file=sys.stderr)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedsim", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    p.add_argument("--version", action="version", version=f"fedsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a simulated federation from an experiment YAML",
                         description="Run a simulated federation: Ray worker actors (or threads with "
                                     "--runtime local) host the nodes, which talk over real gRPC.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _list_policies_in_help(run)
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

    from fedsim.report.commands import add_commands as add_report_commands
    from fedsim.sweep.commands import add_commands as add_sweep_commands
    add_sweep_commands(sub)   # fedsim sweep
    add_report_commands(sub)  # fedsim report, fedsim compare
    from fedsim.reproduce.commands import add_commands as add_reproduce_commands
    add_reproduce_commands(sub)  # fedsim reproduce

    from fedsim.deploy.commands import add_commands
    add_commands(sub)  # fedsim node, fedsim deploy certs|compose|health
    from fedsim.catalog import add_command
    add_command(sub)   # fedsim options
    return p


def _list_policies_in_help(parser: argparse.ArgumentParser) -> None:
    """`run --help` ends with the registered policies, looked up only when help is shown: the registry
    imports torch, which `fedsim report` / `compare` must not (they start in well under a second)."""
    plain = parser.format_help

    def format_help() -> str:
        parser.epilog = RUN_EPILOG + _policy_lines()
        return plain()

    parser.format_help = format_help


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
