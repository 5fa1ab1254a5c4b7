"""`fedsim sweep`: every combination of a grid of settings × seeds, into one folder with an index."""
from __future__ import annotations

import argparse

SWEEP_EPILOG = """\
examples:
  fedsim sweep examples/quickstart.yaml --grid policy.name=gossip,fedavg --grid train.lr=0.01,0.05 --seeds 0 1 2
  fedsim sweep examples/quickstart.yaml --grid 'data.label_alpha=[0.1, 1.0]' --seeds 0 1 --runtime local
  fedsim sweep my_sweep.yaml                      # the grid and seeds from its sweep: section

SWEEP_DIR (default OUTPUT_DIR/NAME-sweep, or sweep.dir, or --out) holds index.json and index.csv (one
row per run: status, settings, final accuracy, error), runs/KEY/ (ordinary run folders) and attempts/
(earlier failed/interrupted attempts). Running the same command again skips completed runs and retries
the others. A failed run is recorded and the sweep goes on. Then: fedsim compare SWEEP_DIR; fedsim report
SWEEP_DIR. Exit status 1 when a run failed. Runs go one after another, or several at once on Ray when runtime.workers is a number and the
cluster has CPUs for that many runs' workers (--parallel N to choose).
"""


def add_commands(sub) -> None:
    sw = sub.add_parser("sweep", help="run every combination of a grid of settings and seeds",
                        description="Run an experiment for every combination of --grid values and --seeds.",
                        epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("config", help="experiment YAML; an optional sweep: section gives grid, seeds, dir, parallel")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="a config key and its values (repeatable; a YAML list [..] for values with commas)")
    sw.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="seeds to run each setting with")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value for every run (repeatable)")
    sw.add_argument("--runtime", choices=["ray", "local"], help="shortcut for --set runtime.kind=...")
    sw.add_argument("--out", metavar="SWEEP_DIR", help="the sweep folder (default: OUTPUT_DIR/NAME-sweep)")
    sw.add_argument("--parallel", metavar="N|auto", help="runs at once (default auto: what the Ray cluster fits)")
    sw.add_argument("--force", action="store_true", help="rerun finished runs whose settings changed")
    sw.add_argument("-q", "--quiet", action="store_true", help="no per-round progress of each run")
    sw.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from fedsim.errors import ConfigError
    from fedsim.sweep.runner import plan_sweep, run_sweep

    sets = list(args.set)
    if args.runtime:
        sets.append(f"runtime.kind={args.runtime}")
    parallel = args.parallel
    if parallel is not None and parallel != "auto":
        if not parallel.isdigit() or int(parallel) < 1:
            raise ConfigError("--parallel", parallel, "auto or an integer >= 1")
        parallel = int(parallel)
    plan = plan_sweep(args.config, args.grid, args.seeds, sets, args.out, parallel)
    index = run_sweep(plan, force=args.force, progress=not args.quiet)
    return 1 if any(e["status"] == "failed" for e in index["runs"]) else 0
