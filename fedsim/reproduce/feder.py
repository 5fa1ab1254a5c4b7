"""FedER (arXiv 2206.10048) like for like: its two settings, its baselines, its metric.

As the released code (perceivelab/FedER) runs it: a few hospitals, each trains a class-conditional
GAN on its own scans first; every round each trains the classifier it holds on real batches
topped up 1:1 with the buffer that came with the model, with a fresh Adam, then passes classifier
and its own buffer along a random ring; the metric is, per test set, the balanced accuracy of every
node's model, mean ± std over the models (`Controller/<test>/Acc/Mean|STD`). Settings:
  2 hospitals  tuberculosis-like (Shenzhen / Montgomery): 2 classes at both, acquisition shift only
  3 hospitals  melanoma-like and harder: 4 classes, acquisition shift and Dirichlet(0.5) label skew
Baselines the paper names: pooled training, FedAvg, FedProx, FedBN (with BatchNorm in the
classifier, so its local statistics have something to keep), plus gossip and model exchange
without replay; and an ablation replaying *real* scans of the previous holder — what a perfect
generator could give at no privacy — so the table shows how much of FedER's gap is the GAN's.
What differs, and why (CPU budget): synthmed 32 px scans, a small CNN instead of ResNet-18, a small
DCGAN instead of StyleGAN2-ADA, 400 training scans per hospital, 2 local epochs per round (the
released command runs 100), Adam lr 1e-3 (released: 1e-4 over 100 epochs per round).
The privacy claim (PLAN walk: membership attack near chance) is measured on a GAN trained to
memorise a 48-scan hospital (`privacy_check`), where the attack has something to find.
"""
from __future__ import annotations

import math

import numpy as np

from fedsim.reproduce import report
from fedsim.reproduce.runner import Job, per_round_over_seeds

CNN_BN = {"name": "cnn", "norm": "batch"}
METHODS = {
    "pooled (centralized)": {"name": "centralized"},
    "FedAvg": {"name": "fedavg"},
    "FedProx (mu 0.01)": {"name": "fedprox", "mu": 0.01},
    "FedBN": {"name": "fedbn"},
    "gossip": {"name": "gossip"},
    "model exchange (no replay)": {"name": "model_exchange", "optimizer_travels": False},
    "FedER": {"name": "feder"},
    "FedER, real-scan replay (ablation)": {"name": "feder", "buffer": "real"},
}
SETTINGS = {
    "2 hospitals, acquisition shift (tuberculosis-like)": {
        "topology": {"nodes": ["shenzhen", "montgomery"], "edges": [["shenzhen", "montgomery"]]},
        "data": {"num_classes": 2, "shift": 2.0, "label_alpha": None}},
    "3 hospitals, shift + label skew (melanoma-like)": {
        "topology": "hospitals-3", "data": {"num_classes": 4, "shift": 2.0, "label_alpha": 0.5}},
}


def _budget(quick: bool, gpu: bool) -> dict:
    if gpu:  # bigger GANs and a ResNet-18 classifier, more data and local epochs
        return {"rounds": 40, "epochs": 4, "samples": 1000, "gan_epochs": 300, "gan_width": 64, "buffer": 512,
                "model": {"name": "resnet18"}, "privacy_gan_epochs": 1000}
    if quick:
        return {"rounds": 8, "epochs": 2, "samples": 200, "gan_epochs": 30, "gan_width": 16, "buffer": 128,
                "model": CNN_BN, "privacy_gan_epochs": 300}
    return {"rounds": 40, "epochs": 2, "samples": 500, "gan_epochs": 120, "gan_width": 32, "buffer": 512,
            "model": CNN_BN, "privacy_gan_epochs": 1000}


def config(setting: str, seed: int, policy: dict, b: dict, gpu: bool) -> dict:
    s = SETTINGS[setting]
    pol = dict(policy)
    if pol["name"] == "feder":
        pol.update(gan_epochs=b["gan_epochs"], gan_width=b["gan_width"], buffer_size=b["buffer"])
    return {
        "name": "feder-" + pol["name"], "seed": seed, "rounds": b["rounds"], "topology": s["topology"],
        "data": {"dataset": "synthmed", "samples_per_node": b["samples"], "test_fraction": 0.2, **s["data"]},
        "model": b["model"], "train": {"epochs": b["epochs"], "batch_size": 32, "lr": 1e-3, "optimizer": "adam"},
        "policy": pol, "runtime": {"kind": "local", "transport": "inproc", "gpus_per_worker": 1.0 if gpu else 0.0},
        "eval": {"every": 1, "federation_every": 1},
    }


def jobs(seeds: list[int], quick: bool, gpu: bool) -> tuple[list[Job], dict]:
    b = _budget(quick, gpu)
    todo = [Job(f"{setting} | {label}", seed, config(setting, seed, pol, b, gpu), cross_eval=True)
            for setting in SETTINGS for seed in seeds for label, pol in METHODS.items()]
    setting = (f"Settings: {', '.join(SETTINGS)}; synthmed 32 px, {b['samples']} scans per hospital (80 % train), "
               f"scanner shift 2.0; classifier {b['model']['name']}{' with BatchNorm' if b['model'] is CNN_BN else ''}; "
               f"{b['rounds']} rounds × {b['epochs']} local epochs, batch 32 (+ 32 replay), Adam lr 1e-3, a fresh "
               f"optimizer for every adopted classifier; FedER GANs: width {b['gan_width']}, {b['gan_epochs']} epochs, "
               f"buffer {b['buffer']} labelled latents, k-same + PLAN walk. The paper's metric: per test set, the "
               "balanced accuracy of every hospital's final model, mean ± std over the models; pooled: each model on "
               "all test sets pooled (balanced), mean over models. Std over seeds is the sample std.")
    return todo, {"title": "FedER (arXiv 2206.10048): experience replay with private synthetic buffers",
                  "setting": setting, **{k: v for k, v in b.items() if k != "model"}, "model": b["model"]["name"]}


def extra(seeds: list[int], quick: bool, gpu: bool, say) -> dict:
    from fedsim.reproduce.feder_privacy import privacy_check
    b = _budget(quick, gpu)
    say(f"privacy check: a memorising GAN ({b['privacy_gan_epochs']} epochs on 48 scans), seeds {seeds}")
    return {"privacy": privacy_check(seeds, gan_epochs=b["privacy_gan_epochs"], say=say)}


def _paper_metric(rec) -> tuple[float, dict[str, tuple[float, float]]]:
    """(mean over test sets of the mean over models, {test set: (mean, std) over models})."""
    cross = rec.cross or {}
    tests = sorted({t for per in cross.values() for t in per})
    per_test = {}
    for t in tests:
        vals = [cross[m][t]["bacc"] for m in cross if t in cross[m]]
        per_test[t] = (float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    return (float(np.mean([v[0] for v in per_test.values()])) if per_test else float("nan")), per_test


def analyse(records, settings: dict, folder, extra: dict) -> str:
    out, claims_all, series = [], [], {}
    for setting in SETTINGS:
        recs = {m: [r for r in records if r.method == f"{setting} | {m}"] for m in METHODS}

        def col(m, fn):
            return [fn(r) if r.ok else float("nan") for r in recs[m]]

        paper = {m: col(m, lambda r: _paper_metric(r)[0]) for m in METHODS}
        pooled = {m: col(m, lambda r: r.final("fed_bacc")) for m in METHODS}
        tests = sorted({t for m in METHODS for r in recs[m] if r.ok for t in _paper_metric(r)[1]})
        rows = []
        for m in METHODS:
            per_test = []
            for t in tests:  # mean over seeds of (mean ± std over models) on test set t
                vals = [_paper_metric(r)[1].get(t, (math.nan, math.nan)) for r in recs[m] if r.ok]
                per_test.append(f"{np.mean([v[0] for v in vals]):.3f} ± {np.mean([v[1] for v in vals]):.3f}"
                                if vals else "n/a")
            kinds = sorted({k for r in recs[m] if r.ok for rnd in r.bytes.values() for k in rnd if k.startswith("kind:")})
            mb = ", ".join(f"{k[5:]} {np.mean(col(m, lambda r, k=k: r.bytes_per_round(k))) / 1e6:.3f}" for k in kinds)
            rows.append([m, *per_test, report.fmt(paper[m]), report.fmt(pooled[m]), mb or "0"])
        out += [f"## {setting}", "", report.table(
            ["method", *[f"test set {t}: mean ± std over models" for t in tests], "paper's metric, mean over test sets "
             "(seeds)", "pooled balanced acc (seeds)", "MB / round by kind"], rows), ""]
        claims_all += [
            report.within(f"{setting}: FedER ≈ pooled training (within 3 points, paper's metric)", paper["FedER"],
                          paper["pooled (centralized)"], 0.03),
            report.greater(f"{setting}: FedER > FedAvg (paper's metric)", paper["FedER"], paper["FedAvg"]),
            report.greater(f"{setting}: FedER > FedProx (paper's metric)", paper["FedER"], paper["FedProx (mu 0.01)"]),
            report.greater(f"{setting}: FedER > FedBN (paper's metric)", paper["FedER"], paper["FedBN"]),
            report.greater(f"{setting}: FedER > model exchange without replay (paper's metric)", paper["FedER"],
                           paper["model exchange (no replay)"]),
        ]
        short = "2 hospitals" if setting.startswith("2") else "3 hospitals"
        for m in ("pooled (centralized)", "FedAvg", "FedER", "FedER, real-scan replay (ablation)"):
            series[f"{short}: {m}"] = per_round_over_seeds(recs[m], "fed_bacc")
    priv = extra.get("privacy") or {}
    if priv:
        out += ["## Privacy of the shared buffer (a GAN that memorises)", "", priv["setting"], "",
                report.table(["privacy", "membership attack accuracy (seeds)", "mean |MIA − 0.5|",
                              "nearest real scan", "buffer-only CNN balanced acc"],
                             [[mode, report.fmt(v["mia"]), f"{np.mean(np.abs(np.array(v['mia']) - 0.5)):.3f}",
                               f"{np.mean(v['nn']):.2f}", f"{np.mean(v['useful']):.3f}"] for mode, v in priv["modes"].items()]),
                ""]
        claims_all += [report.closer_to("PLAN walk (ksame_walk) brings the membership attack closer to 50 % than raw "
                                        "GAN samples", 0.5, priv["modes"]["ksame_walk"]["mia"], priv["modes"]["none"]["mia"]),
                       report.closer_to("the walk alone brings it closer to 50 % than raw samples", 0.5,
                                        priv["modes"]["walk"]["mia"], priv["modes"]["none"]["mia"])]
    report.plot(series, "pooled balanced accuracy", settings["title"], folder / "accuracy.png")
    out += ["## Claims", "", report.claims_table(claims_all), "", "![balanced accuracy over rounds](accuracy.png)", ""]
    return "\n".join(out)

