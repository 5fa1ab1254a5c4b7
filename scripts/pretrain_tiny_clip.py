"""Pretrain the tiny CLIP contrastively on synthmed scans with captions over all classes.

Writes fedsim/assets/tiny_clip.pt (fp16 weights, < 1 MB), the frozen backbone of the offline
prompt-learning runs. The pretraining hospitals use their own seed, so their scanners differ from
those of any federation (seed 0..): prompt learning later adapts to unseen hospitals, as CoOp adapts
web-pretrained CLIP to a downstream domain.

    nice -n 10 .venv/bin/python scripts/pretrain_tiny_clip.py            # ~3-5 min on 2 CPU cores
    .venv/bin/python scripts/pretrain_tiny_clip.py --epochs 2 --out /tmp/t.pt   # quick check

Captions: a random template of fedsim.models.clip_tiny.TEMPLATES around the class name, with words
for how the hospital's scanner renders it (blurry, noisy, dark, ...: clip_tiny.STYLE_WORDS), read off
the scanner's settings — as web captions sometimes say how a photo looks. So the text encoder learns
that words before the class name matter, which is what a learned prompt context exploits. Several
images of one class share a batch, so the loss treats every same-class pair as a positive
(a multi-positive CLIP loss) instead of calling them negatives.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from fedsim.data import scanner, synthmed
from fedsim.models import clip_tiny


def corpus(seed: int, hospitals: int, per_hospital: int, num_classes: int, shift: float):
    xs, ys = zip(*(synthmed.generate(seed, h, per_hospital, num_classes=num_classes, shift=shift)
                   for h in range(hospitals)))
    hospital = torch.arange(hospitals).repeat_interleave(per_hospital)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), hospital


def style_words(seed: int, hospital: int, shift: float, channels: int = 1) -> str:
    """How hospital h's scanner looks, in words (the same scanner synthmed.generate uses)."""
    sc = scanner.make_scanner(synthmed._rng(seed, hospital, synthmed._SCANNER), shift, channels)
    words = [w for w, on in (("blurry", sc.blur > 0.85), ("sharp", sc.blur < 0.42), ("noisy", sc.noise > 0.05),
                             ("low-contrast", sc.contrast < 0.85), ("high-contrast", sc.contrast > 1.18),
                             ("bright", sc.brightness > 0.06), ("dark", sc.brightness < -0.06)) if on]
    return "".join(w + " " for w in words)


def caption_bank(model: clip_tiny.TinyCLIP, names: list[str], styles: list[str]) -> torch.Tensor:
    """(num_templates, hospitals, num_classes, L) token ids of every caption."""
    return torch.stack([torch.stack([model.tokenize([t.format(n, s=s) for n in names]) for s in styles])
                        for t in clip_tiny.TEMPLATES])


@torch.no_grad()
def zero_shot(model, x, y, names, batch=1024) -> float:
    model.eval()
    text = F.normalize(model.encode_text(model.tokenize([clip_tiny.HANDWRITTEN.format(n) for n in names])), dim=-1)
    hits = 0
    for i in range(0, len(y), batch):
        img = F.normalize(model.encode_image(x[i:i + batch]), dim=-1)
        hits += int(((img @ text.T).argmax(1) == y[i:i + batch]).sum())
    model.train()
    return hits / len(y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--hospitals", type=int, default=24)
    ap.add_argument("--per-hospital", type=int, default=1080, help="images per pretraining hospital")
    ap.add_argument("--classes", type=int, default=synthmed.MAX_CLASSES)
    ap.add_argument("--shift", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    ap.add_argument("--out", default=str(clip_tiny.ASSET))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    names = synthmed.class_names(args.classes)
    x, y, hosp = corpus(args.seed, args.hospitals, args.per_hospital, args.classes, args.shift)
    # held-out check on hospitals a federation with seed 0 would have (never seen in pretraining)
    xv, yv, _ = corpus(0, 4, 810, args.classes, args.shift)
    model = clip_tiny.TinyCLIP(channels=x.shape[1], image_size=x.shape[-1])
    styles = [style_words(args.seed, h, args.shift, x.shape[1]) for h in range(args.hospitals)]
    print("scanner styles:", " | ".join(s.strip() or "-" for s in styles))
    bank = caption_bank(model, names, styles)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = args.epochs * math.ceil(len(y) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"{len(y)} captioned scans, {args.classes} classes, {sum(p.numel() for p in model.parameters())} "
          f"parameters, {steps} steps (data {time.perf_counter() - t0:.1f} s)", flush=True)
    for epoch in range(args.epochs):
        order, total = torch.randperm(len(y), generator=gen), 0.0
        for i in range(0, len(y), args.batch):
            idx = order[i:i + args.batch]
            tmpl = torch.randint(len(clip_tiny.TEMPLATES), (len(idx),), generator=gen)
            ids = bank[tmpl, hosp[idx], y[idx]]
            img = F.normalize(model.encode_image(x[idx]), dim=-1)
            txt = F.normalize(model.encode_text(ids), dim=-1)
            logits = model.logit_scale.clamp(max=math.log(100)).exp() * img @ txt.T
            same = (y[idx, None] == y[None, idx]).float()
            target = same / same.sum(1, keepdim=True)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(y):.3f}, held-out zero-shot "
              f"{zero_shot(model, xv, yv, names):.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    with torch.no_grad():
        model.logit_scale.clamp_(max=math.log(100))
    acc = zero_shot(model, xv, yv, names)
    wall = time.perf_counter() - t0
    clip_tiny.save(model, args.out, seed=args.seed, epochs=args.epochs, hospitals=args.hospitals,
                   per_hospital=args.per_hospital, classes=args.classes, zero_shot_heldout=acc, wall_s=round(wall, 1))
    print(f"wrote {args.out}: held-out {args.classes}-way zero-shot accuracy {acc:.3f} "
          f"(prompt {clip_tiny.HANDWRITTEN!r}), {wall:.0f} s")


if __name__ == "__main__":
    main()
