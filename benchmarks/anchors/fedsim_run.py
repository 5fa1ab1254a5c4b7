"""The anchor workload through fedsim's public API: the user's model and data files, fedsim.run.

fedavg on a star of N hospitals (node0 is the hub and trains too, as every client), Ray runtime
with 2 worker actors, real gRPC and the ledger on; the model is this folder's
'anchor_workload:make_model' (initial weights from init.pt), the data the per-client npz files.
Usage: python fedsim_run.py --clients N --rounds R --data DIR   (prints one RESULT JSON line)
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import fedsim

import anchor_workload as w


def config(n: int, rounds: int, data: str, out: str) -> dict:
    names = [f"node{i}" for i in range(n)]
    return {
        "name": f"anchor{n}", "seed": 0, "rounds": rounds,
        "topology": {"generator": "star", "n": n},
        "data": {"dataset": "npz", "paths": dict(zip(names, w.client_files(data, n))), "partition": {"kind": "natural"}},
        "model": {"name": "anchor_workload:make_model", "init": os.path.join(data, "init.pt")},
        "train": {"epochs": w.EPOCHS, "batch_size": w.BATCH, "lr": w.LR, "shuffle": False},
        "policy": {"name": "fedavg"},
        "runtime": {"kind": "ray", "workers": 2, "transport": "grpc"},
        "eval": {"every": 0, "federation_every": 0},
        "plugins": {"paths": [os.path.dirname(os.path.abspath(__file__))]},
        "output": {"dir": out, "progress": False},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        res = fedsim.run(config(a.clients, a.rounds, os.path.abspath(a.data), out))
        final = res.model_state("node0")
        s = res.summary
    print("RESULT " + json.dumps({"round_s": s["round_s"], "setup_s": s["setup_s"], "checksum": w.checksum(final),
                                  "startup_s": s.get("startup_s"), "wall_s": time.perf_counter() - t0,
                                  "ledger_balanced": s["ledger_balanced"]}), flush=True)


if __name__ == "__main__":
    main()
