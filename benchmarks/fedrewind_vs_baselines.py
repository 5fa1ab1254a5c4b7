"""FedRewind vs model exchange (no rewind) vs gossip: same data, seeds, local epochs and rounds.

Setting (issue 3): synthmed with Dirichlet label skew alpha = 0.1, 10 hospitals on a complete
topology. Prints final Federation Accuracy (FA: each model on every node's test set, pooled =
mean fed_acc) and Personalized Federation Accuracy (PFA: each node's model on its own test set =
mean test_acc), mean ± std over seeds, and measured wire bytes per round.

    nice -n 10 .venv/bin/python benchmarks/fedrewind_vs_baselines.py            # default: ~10 min on 2 cores
    nice -n 10 .venv/bin/python benchmarks/fedrewind_vs_baselines.py --rounds 50 --epochs 10 \\
        --samples 600 --seeds 5 --rewind-ratio 0.1                              # closer to the paper

Runs use runtime.kind=local with the inproc transport (one process, same frames and byte counts as
gRPC, no sockets) so that many runs fit the budget; pass --runtime ray for Ray workers over gRPC.
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time

import numpy as np

from fedsim.config import load_config
from fedsim.runtime.driver import run_experiment


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--epochs", type=int, default=4, help="local epochs E, the same for every policy")
    p.add_argument("--samples", type=int, default=150, help="samples per node (80%% train)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--alpha", type=float, default=0.1, help="Dirichlet label skew")
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rewind-ratio", type=float, default=0.25)
    p.add_argument("--rewind-strategy", default="atend_pre")
    p.add_argument("--rewind-lr-scale", type=float, default=1.0)
    p.add_argument("--rewind-to", default="previous")
    p.add_argument("--routing", default="random_permutation")
    p.add_argument("--policies", default="gossip,model_exchange,fedrewind")
    p.add_argument("--runtime", choices=("local", "ray"), default="local")
    p.add_argument("--json", help="also write the per-run results here")
    return p.parse_args()


def config(a: argparse.Namespace, policy: str, seed: int, out: str) -> dict:
    pol: dict = {"name": policy}
    if policy in ("model_exchange", "fedrewind"):
        pol["routing"] = a.routing
    if policy == "fedrewind":
        pol.update(rewind_ratio=a.rewind_ratio, rewind_strategy=a.rewind_strategy,
                   rewind_lr_scale=a.rewind_lr_scale, rewind_to=a.rewind_to)
    rt = {"kind": "local", "transport": "inproc"} if a.runtime == "local" else {"kind": "ray", "transport": "grpc"}
    return load_config(data={
        "name": f"bench-{policy}", "seed": seed, "rounds": a.rounds,
        "topology": {"generator": "complete", "n": a.nodes},
        "data": {"dataset": "synthmed", "samples_per_node": a.samples, "num_classes": a.classes,
                 "label_alpha": a.alpha, "image_size": a.image_size},
        "model": {"name": "cnn"},
        "train": {"epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "momentum": a.momentum,
                  "optimizer": a.optimizer},
        "policy": pol, "runtime": rt,
        "eval": {"every": a.rounds, "federation_every": a.rounds},  # score the final round only
        "output": {"dir": out, "progress": False},
    })


def fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    a = parse()
    policies = a.policies.split(",")
    print(f"synthmed {a.classes} classes, Dirichlet alpha={a.alpha}, {a.nodes} nodes complete, {a.samples} samples/node, "
          f"{a.image_size}px; E={a.epochs} local epochs, {a.rounds} rounds, {a.optimizer} lr={a.lr} momentum={a.momentum}; "
          f"fedrewind: ratio={a.rewind_ratio} ({a.rewind_strategy}, to {a.rewind_to}, lr x{a.rewind_lr_scale}), "
          f"routing {a.routing}; seeds 0..{a.seeds - 1}")
    print(f"runtime {a.runtime}" + (" with the inproc transport (same frames and byte counts as gRPC, no sockets)"
                                    if a.runtime == "local" else " with gRPC") + "\n", flush=True)
    results: dict[str, list[dict]] = {p: [] for p in policies}
    with tempfile.TemporaryDirectory() as out:
        for seed in range(a.seeds):
            for policy in policies:
                t0 = time.perf_counter()
                res = run_experiment(config(a, policy, seed, out), progress=False)
                s = res.summary
                row = {"seed": seed, "fa": s["mean_final"]["fed_acc"], "pfa": s["mean_final"]["test_acc"],
                       "bytes_per_round": s["bytes"]["wire_total"] / a.rounds, "wall_s": time.perf_counter() - t0,
                       "rewind_bytes_per_round": _tag_bytes(res.run_dir, "rewind") / a.rounds}
                results[policy].append(row)
                print(f"  seed {seed} {policy:<15} FA {row['fa']:.3f}  PFA {row['pfa']:.3f}  "
                      f"{row['bytes_per_round'] / 1e6:7.2f} MB/round  {row['wall_s']:6.1f} s", flush=True)
    print(f"\n{'policy':<16}{'FA (fed_acc)':>18}{'PFA (test_acc)':>18}{'MB/round':>10}{'(rewind)':>10}{'s/run':>8}")
    for policy, rows in results.items():
        print(f"{policy:<16}{fmt([r['fa'] for r in rows]):>18}{fmt([r['pfa'] for r in rows]):>18}"
              f"{np.mean([r['bytes_per_round'] for r in rows]) / 1e6:>10.2f}"
              f"{np.mean([r['rewind_bytes_per_round'] for r in rows]) / 1e6:>10.2f}"
              f"{np.mean([r['wall_s'] for r in rows]):>8.1f}")
    if "fedrewind" in results:
        fr = np.mean([r["fa"] for r in results["fedrewind"]])
        for other in (p for p in policies if p != "fedrewind"):
            o = np.mean([r["fa"] for r in results[other]])
            wins = sum(x["fa"] > y["fa"] for x, y in zip(results["fedrewind"], results[other]))
            print(f"fedrewind FA {'>' if fr > o else '<='} {other} FA: {fr:.3f} vs {o:.3f} "
                  f"(fedrewind higher in {wins}/{len(results[other])} seeds)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results}, f, indent=1)


def _tag_bytes(run_dir, part: str) -> int:
    with open(run_dir / "comm.csv") as f:
        return sum(int(r["wire_bytes"]) for r in csv.DictReader(f) if part in r["tag"])


if __name__ == "__main__":
    main()
