"""Scale: many logical hospitals on a few Ray worker actors.

Default: 64 nodes on a ring, gossip with an MLP, 5 rounds, real gRPC, on K = CPUs worker actors.
Prints setup time, seconds per round, messages and bytes, and the peak RSS of the driver and of
each worker process (what 64 nodes cost on this machine).
Usage: python benchmarks/scale.py [--nodes 64] [--rounds 5] [--transport grpc|inproc]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from fedsim.config import load_config  # noqa: E402
from fedsim.runtime.driver import run_experiment  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--transport", choices=["grpc", "inproc"], default="grpc")
    args = ap.parse_args()
    if args.transport == "inproc":
        print("inproc transport needs every node in one process: using 1 worker actor")
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(data={
            "name": f"scale{args.nodes}", "rounds": args.rounds,
            "topology": {"generator": "ring", "n": args.nodes},
            "data": {"dataset": "synthmed", "samples_per_node": 200, "num_classes": 2},
            "model": {"name": "mlp", "hidden": [64]},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
            "policy": {"name": "gossip"},
            "runtime": {"kind": "ray", "transport": args.transport,
                        "workers": 1 if args.transport == "inproc" else "auto"},
            "eval": {"every": 1, "federation_every": 0},
            "output": {"dir": out, "progress": False},
        })
        t0 = time.perf_counter()
        s = run_experiment(cfg, progress=True).summary
    print(f"\n{args.nodes} nodes, {args.rounds} rounds, transport {args.transport}")
    print(f"  setup (Ray + actors + data + models): {s['setup_s']:.1f} s")
    print(f"  seconds per round: {', '.join(f'{t:.2f}' for t in s['round_s'])}")
    print(f"  messages {s['bytes']['messages']}, wire bytes {s['bytes']['wire_total']:,}, "
          f"ledger balanced {s['ledger_balanced']}")
    print(f"  mean final test acc {s['mean_final']['test_acc']:.3f}, fed acc {s['mean_final'].get('fed_acc', float('nan')):.3f}")
    rss = s["peak_rss_mb"]
    print(f"  peak RSS: driver {rss['driver']:.0f} MB, workers {', '.join(f'{w:.0f}' for w in rss['workers'])} MB; "
          f"total wall {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
