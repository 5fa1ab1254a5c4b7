"""fedsim's gossip round vs the same local training steps in a plain single-process Python loop.

Reference workload (per node): 500 seeded 1x32x32 synthmed samples, 2 classes, SmallCNN
(conv16-pool-conv32-pool-linear 2048->2), SGD lr 0.01, batch 32, 1 local epoch, averaging with
ring neighbours (Metropolis–Hastings) every round.

Prints seconds per round (median of the steady rounds) for:
  plain-tensor   one process, torch's default threads, batches sliced from in-memory tensors
  plain-loader   the same with torch.utils.data.DataLoader (the usual way to write it)
  fedsim         `fedsim run` machinery: Ray worker actors, real gRPC, ledger on
and the ratio fedsim / plain, with fedsim's start-up (command to round 1 is in summary.json
`startup_s`) and the peak PSS of its whole process tree (driver, Ray's processes, workers; sampled
every 0.5 s while it runs).  Usage:  python benchmarks/overhead.py [--nodes 8 32] [--rounds 6]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from fedsim.config import load_config  # noqa: E402
from fedsim.data import load_federation  # noqa: E402
from fedsim.models import build_model  # noqa: E402
from fedsim.policies.averaging import weighted_average  # noqa: E402
from fedsim.runtime.driver import run_experiment  # noqa: E402
from fedsim.topology import load_topology, metropolis_hastings_weights  # noqa: E402
from proctree import Peak  # noqa: E402


def workload(n: int, rounds: int, out: str, scheduler: str = "auto") -> dict:
    return {
        "name": f"overhead{n}", "seed": 0, "rounds": rounds,
        "topology": {"generator": "ring", "n": n},
        # 625 per node with a 20% test split = 500 training samples
        "data": {"dataset": "synthmed", "samples_per_node": 625, "test_fraction": 0.2, "num_classes": 2},
        "model": {"name": "cnn"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.01},
        "policy": {"name": "gossip"},
        "runtime": {"kind": "ray", "transport": "grpc", "scheduler": scheduler},
        "eval": {"every": 0, "federation_every": 0},
        "output": {"dir": out, "progress": False},
    }


def plain_loop(cfg: dict, loader: bool) -> list[float]:
    graph = load_topology(cfg["topology"])
    names = list(graph)
    data = load_federation(cfg["data"], names, cfg["seed"])
    torch.manual_seed(0)
    models = {n: build_model(cfg["model"], data[n].input_shape, data[n].num_classes) for n in names}
    opts = {n: torch.optim.SGD(models[n].parameters(), lr=0.01) for n in names}
    mh = metropolis_hastings_weights(graph)
    loaders = {n: DataLoader(TensorDataset(data[n].x_train, data[n].y_train), batch_size=32, shuffle=True)
               for n in names}
    times = []
    for _ in range(cfg["rounds"]):
        t0 = time.perf_counter()
        for n in names:
            m, o, d = models[n], opts[n], data[n]
            batches = loaders[n] if loader else (
                (d.x_train[idx], d.y_train[idx]) for idx in torch.randperm(d.n_train).split(32))
            for xb, yb in batches:
                o.zero_grad()
                F.cross_entropy(m(xb), yb).backward()
                o.step()
        states = {n: {k: v.clone() for k, v in models[n].state_dict().items()} for n in names}
        for n in names:
            peers = sorted(graph.neighbors(n))
            models[n].load_state_dict(weighted_average([states[n]] + [states[p] for p in peers],
                                                       [mh[n][n]] + [mh[n][p] for p in peers]))
        times.append(time.perf_counter() - t0)
    return times


def steady(times: list[float]) -> float:
    """Median round time without the warm-up round (and without the final evaluation round)."""
    body = times[1:-1] if len(times) > 3 else times[1:]
    return statistics.median(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--scheduler", choices=["auto", "threads", "tasks"], default="auto",
                    help="runtime.scheduler of the fedsim run")
    ap.add_argument("--fedsim-only", action="store_true", help="skip the plain loops")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, default torch threads {torch.get_num_threads()}")
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'nodes':>5} {'plain-tensor s':>15} {'plain-loader s':>15} {'fedsim s':>10} "
          f"{'fedsim/tensor':>14} {'fedsim/loader':>14} {'setup s':>8} {'peak PSS MB':>12} {'procs':>5}")
    with tempfile.TemporaryDirectory() as out:
        for n in args.nodes:
            cfg = load_config(data=workload(n, args.rounds, out, args.scheduler))
            with Peak() as peak:
                res = run_experiment(cfg, progress=False)
            fed = steady(res.summary["round_s"])
            if args.fedsim_only:
                tensor = dl = float("nan")
            else:
                tensor = steady(plain_loop(cfg, loader=False))
                dl = steady(plain_loop(cfg, loader=True))
            print(f"{n:>5} {tensor:>15.3f} {dl:>15.3f} {fed:>10.3f} {fed / tensor:>14.2f} {fed / dl:>14.2f} "
                  f"{res.summary['setup_s']:>8.1f} {peak.max['pss_mb']:>12.0f} {peak.max['processes']:>5}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
