"""Scale: thousands of logical hospitals on 2 Ray worker actors of one machine.

Workload per size N: gossip on a small-world graph (Watts–Strogatz, k = 4, p = 0.05, contiguous
blocks per worker), an MLP (256 -> 16 -> 2) on 20 synthmed scans of 16x16 per hospital, 5 rounds,
Ray runtime with 2 workers, nodes as tasks (runtime.scheduler: tasks), in-process delivery between
nodes of the same worker and gRPC between workers (runtime.transport: inproc), ledger on, local test
metrics in the last round, no federation accuracy. Each size runs in a fresh process (its own
private Ray). Prints, per size: setup (command to round 0: Ray, workers, data, models, policy
setup), seconds per round, messages (and how many crossed workers), peak PSS, threads and file
descriptors of the whole process tree (driver, Ray's processes, workers), sampled every 0.5 s.

Usage: python benchmarks/scale.py [--nodes 1000 3000 10000] [--rounds 5] [--scheduler tasks|threads]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def workload(n: int, rounds: int, scheduler: str, out: str) -> dict:
    return {
        "name": f"scale{n}", "seed": 0, "rounds": rounds,
        "topology": {"generator": "watts_strogatz", "n": n, "k": 4, "p": 0.05, "seed": 1},
        "data": {"dataset": "synthmed", "samples_per_node": 20, "num_classes": 2, "image_size": 16},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.05},
        "policy": {"name": "gossip"},
        "runtime": {"kind": "ray", "workers": 2, "transport": "inproc", "scheduler": scheduler,
                    "recv_timeout_s": 1800.0, "send_timeout_s": 600.0},
        "eval": {"every": rounds, "federation_every": 0},
        "output": {"dir": out, "progress": True, "save_models": False},
    }


def one(n: int, rounds: int, scheduler: str) -> dict:
    from proctree import Peak

    t0 = time.perf_counter()
    from fedsim.config import load_config
    from fedsim.runtime.driver import run_experiment

    with tempfile.TemporaryDirectory() as out, Peak() as peak:
        cfg = load_config(data=workload(n, rounds, scheduler, out))
        res = run_experiment(cfg)
        s = res.summary
        with open(res.run_dir / "comm.csv") as f:
            rows = list(csv.DictReader(f))
    blocks = {name: i * 2 // n for i, name in enumerate(f"node{i}" for i in range(n))}
    crossing = sum(1 for r in rows if blocks.get(r["src"]) != blocks.get(r["dst"]))
    return {"nodes": n, "setup_s": s["setup_s"], "round_s": s["round_s"], "messages": s["bytes"]["messages"],
            "crossing": crossing, "wire_bytes": s["bytes"]["wire_total"], "balanced": s["ledger_balanced"],
            "test_acc": s["mean_final"].get("test_acc"), "wall_s": time.perf_counter() - t0, **peak.max}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scheduler", choices=["tasks", "threads"], default="tasks")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.rounds, args.scheduler)), flush=True)
        return 0
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}, {os.cpu_count()} CPUs")
    results = []
    for n in args.nodes:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", str(n), "--rounds", str(args.rounds),
               "--scheduler", args.scheduler]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{n} nodes FAILED (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            continue
        results.append(json.loads(line[0][len("RESULT "):]))
        print(f"  {n} nodes done in {results[-1]['wall_s']:.0f} s", flush=True)
    print(f"\nload after: {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'nodes':>6} {'setup s':>8} {'s/round (median, each)':>34} {'messages':>9} {'x-worker':>8} "
          f"{'peak PSS MB':>11} {'threads':>7} {'fds':>5} {'procs':>5} {'balanced':>8} {'test acc':>8}")
    for r in results:
        rs = sorted(r["round_s"])
        each = " ".join(f"{t:.1f}" for t in r["round_s"])
        print(f"{r['nodes']:>6} {r['setup_s']:>8.1f} {rs[len(rs) // 2]:>8.2f} ({each:>22}) {r['messages']:>9} "
              f"{r['crossing']:>8} {r['pss_mb']:>11.0f} {r['threads']:>7} {r['fds']:>5} {r['processes']:>5} "
              f"{str(r['balanced']):>8} {r['test_acc']:>8.3f}")
    return 0 if len(results) == len(args.nodes) else 1


if __name__ == "__main__":
    sys.exit(main())
