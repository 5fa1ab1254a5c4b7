"""FedER against the baselines on the strongly non-IID synthmed setting of examples/feder.yaml.

Same data, seeds, rounds and local epochs for every method:
  centralized      pooled data at a hub (the upper bound FedER claims to approach)
  fedavg, gossip   model averaging (with a hub / with neighbours)
  model_exchange   models routed along a random permutation, no replay
  feder/*          FedER, buffer shared as generator weights + latents or as samples; and
                   feder/all, replaying every buffer received so far (our extension)
Prints, over seeds: the mean across hospitals of each hospital's final model scored on every
hospital's test set (fed_bacc; the paper's evaluation) and on its own test set (test_bacc), as
mean ± std over seeds; wire bytes per round by payload kind; FedER's privacy figures.

    nice -n 10 .venv/bin/python benchmarks/feder_vs_baselines.py            # ~25-50 min on 2 cores (40 rounds, 8 methods, 3 seeds)
    nice -n 10 .venv/bin/python benchmarks/feder_vs_baselines.py --seeds 5 --rounds 20 --epochs 3
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from fedsim.config import load_config
from fedsim.runtime.driver import run_experiment

ROOT = Path(__file__).resolve().parents[1]
FEDER = {"name": "feder"}
METHODS = {
    "centralized": {"name": "centralized"},
    "fedavg": {"name": "fedavg"},
    "gossip": {"name": "gossip"},
    "model_exchange": {"name": "model_exchange"},
    "feder/generator": {**FEDER, "share": "generator"},
    "feder/samples": {**FEDER, "share": "samples"},
    "feder/all": {**FEDER, "share": "generator", "replay_from": "all"},
    "feder/no-privacy": {**FEDER, "share": "generator", "privacy": "none", "dup_ratio": 0.0},
}
PRIVACY = ("shared_mia_acc", "raw_mia_acc", "shared_nn_dist", "raw_nn_dist", "real_gap", "buffer_rejected",
           "walk_identity_kl_start", "walk_identity_kl")


def config(base: dict, policy: dict, seed: int, args, out_dir: str, cache: str) -> dict:
    raw = copy.deepcopy(base)
    raw.update(seed=seed, rounds=args.rounds, name=policy["name"])
    raw["train"]["epochs"] = args.epochs
    raw["policy"] = dict(policy)
    if policy["name"] == "feder":
        raw["policy"].update(gan_cache=cache, gan_epochs=args.gan_epochs)
    raw["runtime"] = {"kind": "local", "transport": "grpc"}
    raw["output"] = {"dir": out_dir, "progress": False}
    raw["_base_dir"] = str(ROOT / "examples")
    return load_config(data=raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "examples" / "feder.yaml"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--gan-epochs", type=int, default=120)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    ap.add_argument("--json", default=None, help="write every run's figures here")
    args = ap.parse_args()
    base = yaml.safe_load(Path(args.config).read_text())
    methods = [m.strip() for m in args.methods.split(",")]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "gans")  # each hospital trains its GAN once per seed, shared by the feder variants
        for seed in range(args.seeds):
            for m in methods:
                t0 = time.perf_counter()
                s = run_experiment(config(base, METHODS[m], seed, args, tmp, cache), progress=False).summary
                nodes = list(s["final"])
                row = {"seed": seed, "wall_s": time.perf_counter() - t0,
                       "fed_bacc": float(np.mean([s["final"][n]["fed_bacc"] for n in nodes])),
                       "test_bacc": float(np.mean([s["final"][n]["test_bacc"] for n in nodes])),
                       "per_hospital_test_bacc": {n: s["final"][n]["test_bacc"] for n in nodes},
                       "bytes_per_round": {k: v / args.rounds for k, v in s["bytes"]["per_kind"].items()},
                       "privacy": {k: s["mean_final"][k] for k in PRIVACY if k in s["mean_final"]}}
                results[m].append(row)
                print(f"seed {seed} {m:18s} fed_bacc {row['fed_bacc']:.3f} test_bacc {row['test_bacc']:.3f} "
                      f"({row['wall_s']:.0f} s)", flush=True)
    report(results, args, time.perf_counter() - t_all)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


def report(results: dict[str, list[dict]], args, wall: float) -> None:
    print(f"\nsynthmed, {args.config}: {args.seeds} seeds, {args.rounds} rounds x {args.epochs} local epochs "
          f"({wall / 60:.1f} min)")
    print("balanced accuracy, mean over hospitals, mean ± std over seeds")
    print(f"{'method':18s} {'all test sets':>15s} {'own test set':>15s}   MB/round by kind")
    for m, rows in results.items():
        f = np.array([r["fed_bacc"] for r in rows])
        t = np.array([r["test_bacc"] for r in rows])
        kinds = sorted({k for r in rows for k in r["bytes_per_round"]})
        mb = ", ".join(f"{k} {np.mean([r['bytes_per_round'].get(k, 0) for r in rows]) / 1e6:.3f}" for k in kinds)
        print(f"{m:18s} {f.mean():.3f} ± {f.std():.3f}   {t.mean():.3f} ± {t.std():.3f}   {mb}")
    priv = {m: rows for m, rows in results.items() if rows and rows[0]["privacy"]}
    if priv:
        print("\nprivacy of the shared buffer (mean over hospitals and seeds); mia = distance-threshold "
              "membership attack accuracy (0.5 = chance); raw = plain GAN samples of the same GAN")
        keys = [k for k in PRIVACY if any(k in r["privacy"] for rows in priv.values() for r in rows)]
        print(f"{'method':18s} " + " ".join(f"{k:>22s}" for k in keys))
        for m, rows in priv.items():
            vals = [np.mean([r["privacy"].get(k, np.nan) for r in rows]) for k in keys]
            print(f"{m:18s} " + " ".join(f"{v:22.3f}" for v in vals))


if __name__ == "__main__":
    main()
