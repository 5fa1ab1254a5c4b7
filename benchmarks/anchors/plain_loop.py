"""The anchor workload as a plain single-process loop (no framework): the 1.00x of the ratio table.

Usage: python plain_loop.py --clients N --rounds R --data DIR [--threads T]   (prints one RESULT JSON line)
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import anchor_workload as w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    data = [w.load_client(p) for p in w.client_files(a.data, a.clients)]
    global_state = w.initial_model(a.data).state_dict()
    nets = [w.Net() for _ in data]
    setup = time.perf_counter() - t_start
    round_s = []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        states = []
        for net, (x, y) in zip(nets, data):
            net.load_state_dict(global_state)
            w.train_epoch(net, x, y)
            states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        global_state = w.average(states, [float(len(y)) for _, y in data])
        round_s.append(time.perf_counter() - t0)
    print("RESULT " + json.dumps({"round_s": round_s, "setup_s": setup, "checksum": w.checksum(global_state),
                                  "torch_threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
