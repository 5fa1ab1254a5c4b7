"""`fedsim reproduce PAPER [--seeds ...] [--quick] [--gpu] [--out DIR] [--jobs N]`."""
from __future__ import annotations

import argparse

from fedsim.errors import ConfigError

EPILOG = """\
papers:
  fedrewind  FedRewind vs model exchange, equal-bytes gossip, FedAvg, local (10 hospitals, Dirichlet 0.1)
  feder      FedER vs pooled, FedAvg, FedProx, FedBN, gossip, model exchange, real-replay ablation, on a
             2-hospital acquisition-shift setting and a 3-hospital label-skew one; membership attack
  zerodfl    ZeroDFL vs CoOp alone, CoOp-FedAvg, FedTPG: base/new accuracy and bytes (measured, and the
             paper's way)

writes results.md (tables: mean ± std over seeds with each seed's value, bytes per round; every claim
with a verdict computed from the numbers), accuracy.png and results.json into
OUT/reproduce-PAPER[-quick]/STAMP/, with every run's directory under runs/.
"""


def _cmd_reproduce(args) -> int:
    from fedsim.reproduce import reproduce

    if args.gpu:
        import torch
        if not torch.cuda.is_available():
            raise ConfigError("--gpu", True, "a machine with a CUDA device", "torch sees no GPU here")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs", args.jobs, "an integer >= 1")
    reproduce(args.paper, args.seeds, quick=args.quick, gpu=args.gpu, out=args.out, jobs=args.jobs)
    return 0


def add_commands(sub) -> None:
    from fedsim.reproduce import PAPERS

    repro = sub.add_parser("reproduce", help="rerun a paper's comparison like for like and write its tables",
                           description="Rerun one paper's comparison like for like (the authors' settings where a "
                                       "CPU allows, every difference stated in results.md) over several seeds.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    repro.add_argument("paper", choices=PAPERS)
    repro.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED",
                       help="seeds to run (default: 0 1 2)")
    repro.add_argument("--quick", action="store_true",
                       help="a small budget for 2 CPU cores (same methods and claims, fewer rounds and scans)")
    repro.add_argument("--gpu", action="store_true", help="the paper-scale setting (bigger data and models) on a CUDA GPU")
    repro.add_argument("--out", default="runs", metavar="DIR", help="parent folder of the results (default: runs)")
    repro.add_argument("--jobs", type=int, metavar="N", help="runs at a time (default: one per CPU core)")
    repro.set_defaults(func=_cmd_reproduce)
