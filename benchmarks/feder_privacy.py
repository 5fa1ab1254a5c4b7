"""How private is a hospital's shared FedER buffer when its GAN *does* memorise?

On the default synthmed setting the small GANs do not memorise (membership attack at chance for
raw samples already), so the privacy tools have nothing to fix there. This benchmark builds the
case they exist for: a hospital with few scans whose GAN is trained long enough to copy them.
For each seed it trains that GAN once, then builds the shared buffer with every `privacy` mode
(none, ksame, walk, ksame_walk; near-duplicate filter on or off) and prints the distance-threshold
membership-inference accuracy (0.5 = the buffer reveals nothing about who was in training), the
mean and minimum distance from a shared sample to its nearest real training scan, the samples the
filter rejected, and how well a classifier trained on the buffer alone scores on the hospital's
real test scans (what the privacy costs in usefulness).

    nice -n 10 .venv/bin/python benchmarks/feder_privacy.py                     # ~10 min on 2 cores
    nice -n 10 .venv/bin/python benchmarks/feder_privacy.py --train 60 --gan-epochs 1500 --seeds 5
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fedsim import training
from fedsim.data import load_federation
from fedsim.models import build_model
from fedsim.models.gan import build_gan, train_gan
from fedsim.policies.feder import FedERPolicy
from fedsim.policies.feder_buffer import build_buffer, privacy_report

MODES = [("none", 0.0), ("none", 0.5), ("ksame", 0.0), ("walk", 0.0), ("ksame_walk", 0.0), ("ksame_walk", 0.5)]


def usefulness(x, y, nd, num_classes: int) -> float:
    """Balanced accuracy on the hospital's real test scans of a CNN trained on the buffer alone."""
    torch.manual_seed(0)
    model = build_model({"name": "cnn"}, x.shape[1:], num_classes)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    training.train_epochs(model, opt, x, y, epochs=15, batch_size=32, generator=torch.Generator().manual_seed(0))
    return training.balanced_accuracy(training.confusion(model, nd.x_test, nd.y_test, num_classes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train", type=int, default=48, help="training scans of the hospital (as many again held out)")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--gan-epochs", type=int, default=1000, help="long enough for the GAN to copy its few scans")
    ap.add_argument("--buffer", type=int, default=256)
    a = ap.parse_args()
    opts = {**FedERPolicy.options, "buffer_size": a.buffer}
    spec = {"dataset": "synthmed", "samples_per_node": 2 * a.train, "num_classes": a.classes, "test_fraction": 0.5}
    print(f"one hospital, synthmed {a.classes} classes, {a.train} training + {a.train} held-out scans; "
          f"GAN width {opts['gan_width']}, {a.gan_epochs} epochs; buffer {a.buffer}; seeds 0..{a.seeds - 1}\n")
    rows: dict[tuple[str, float], list[dict]] = {m: [] for m in MODES}
    for seed in range(a.seeds):
        nd = load_federation(spec, ["h0"], seed)["h0"]
        t0 = time.perf_counter()
        G, D = build_gan(nd.input_shape, a.classes, opts["gan_latent"], opts["gan_width"])
        train_gan(G, D, nd.x_train, nd.y_train, epochs=a.gan_epochs, batch_size=opts["gan_batch"],
                  lr=opts["gan_lr"], seed=seed, device=torch.device("cpu"), class_weight=opts["gan_class_weight"])
        print(f"seed {seed}: GAN trained in {time.perf_counter() - t0:.0f} s", flush=True)
        for privacy, dup in MODES:
            o = {**opts, "privacy": privacy, "dup_ratio": dup}
            z, y, x, rep = build_buffer(G, D, nd.x_train, nd.y_train, o, seed)
            pr = privacy_report(G, x, nd.x_train, nd.x_test, nd.y_train, seed)
            row = {"mia": pr["shared_mia_acc"], "nn": pr["shared_nn_dist"], "nn_min": pr["shared_nn_dist_min"],
                   "rejected": rep["buffer_rejected"], "gap": rep["real_gap"], "useful": usefulness(x, y, nd, a.classes)}
            rows[(privacy, dup)].append(row)
            print(f"  {privacy:<11} dup {dup:<4} MIA {row['mia']:.3f}  nearest real {row['nn']:.2f} (min {row['nn_min']:.2f}, "
                  f"real-real gap {row['gap']:.2f})  rejected {row['rejected']:.0f}  buffer-only bacc {row['useful']:.3f}",
                  flush=True)
    print(f"\n{'privacy':<12}{'dup_ratio':>10}{'MIA acc':>16}{'|MIA-0.5|':>11}{'nearest real':>14}{'min':>7}"
          f"{'rejected':>10}{'buffer-only bacc':>18}")
    for (privacy, dup), rs in rows.items():
        mia = np.array([r["mia"] for r in rs])
        print(f"{privacy:<12}{dup:>10}{mia.mean():>9.3f} ± {mia.std():.3f}{np.abs(mia - 0.5).mean():>11.3f}"
              f"{np.mean([r['nn'] for r in rs]):>14.2f}{np.mean([r['nn_min'] for r in rs]):>7.2f}"
              f"{np.mean([r['rejected'] for r in rs]):>10.1f}{np.mean([r['useful'] for r in rs]):>18.3f}")
    print(f"typical real-to-real gap {np.mean([r['gap'] for r in rows[MODES[0]]]):.2f}")


if __name__ == "__main__":
    main()
