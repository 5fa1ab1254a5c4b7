"""FedER — Federated learning through Experience Replay (arXiv 2206.10048).

Before federation (setup) every node
  1. trains a class-conditional GAN on its own data (optionally with a DP discriminator),
  2. builds its buffer: a fixed set of labelled latents, made private (k-same averaging and/or a
     PLAN latent walk) and cleared of near-duplicates of real patients, and reports how private it
     is (nearest-real distances, membership-inference attack accuracy).
Each round r every node
  3. trains the classifier it holds for E epochs; each real batch of B is concatenated with
     ratio·B samples from the buffer that came with the model (round 0: real data only),
  4. draws the round's random ring (restricted to topology edges; the same on every node),
  5. sends its classifier (MODEL) and its own buffer (GENERATOR weights + latents, or SAMPLES) to
     its successor, and
  6. replaces its classifier by its predecessor's (no averaging), keeping that buffer for replay.
     The adopted classifier starts with a fresh optimizer, as the authors build a new Adam every
     round; `optimizer_travels: true` sends the optimizer state with the classifier instead.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from fedsim.errors import ConfigError
from fedsim.models.gan import build_gan, train_gan
from fedsim.policies.base import Policy
from fedsim.policies.travel import pack, unpack
from fedsim.policies.feder_buffer import (PRIVACY_MODES, ReplaySampler, buffer_from_payload, buffer_payload,
                                          build_buffer, draw_ring, privacy_report)

log = logging.getLogger("fedsim.feder")
GAN_ARCH = 2  # bump when the GAN's layers or training change, so gan_cache never serves a stale GAN
GAN_DP_KEYS = {"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0}


class FedERPolicy(Policy):
    name = "feder"
    options = {
        "share": "generator",       # generator (weights + labelled latents) | samples (the images)
        "buffer_size": 512,         # labelled latents per node, as in the authors' code
        "replay_ratio": 1.0,        # buffer samples per real sample in a batch (0 = no replay)
        "replay_from": "sender",    # sender: the buffer that came with the model | all: every buffer received so far
        "privacy": "ksame_walk",    # none | ksame | walk | ksame_walk
        "k": 3,                     # latents averaged by k-same
        "walk_steps": 8,            # intermediate points per latent walk
        "walk_iters": 30,           # optimisation steps of each walk
        "dup_ratio": 0.5,           # reject samples closer to a real one than this × the typical real-real gap (0 = off)
        "gan_epochs": 120,
        "gan_latent": 32,
        "gan_width": 32,
        "gan_lr": 2e-4,
        "gan_batch": 64,
        "gan_class_weight": 1.0,    # AC-GAN auxiliary class loss (0 = projection conditioning only)
        "gan_dp": None,             # null or {epsilon, delta, max_grad_norm}: Opacus DP-SGD for the discriminator
        "gan_cache": None,          # null or a folder: reuse a node's trained GAN across runs (same data, seed, options)
        "optimizer_travels": False,  # false: a fresh optimizer for an adopted classifier (the authors'); true: its state travels
    }

    def __init__(self, options=None):
        super().__init__(options)
        o = self.opts
        _choice("share", o["share"], ("generator", "samples"))
        _choice("replay_from", o["replay_from"], ("sender", "all"))
        _choice("privacy", o["privacy"], PRIVACY_MODES)
        for key, low in (("buffer_size", 1), ("k", 1), ("walk_steps", 1), ("walk_iters", 0), ("gan_epochs", 1),
                         ("gan_latent", 1), ("gan_width", 1), ("gan_batch", 2)):
            if isinstance(o[key], bool) or not isinstance(o[key], int) or o[key] < low:
                raise ConfigError(f"policy.{key}", o[key], f"an integer >= {low}")
        for key in ("replay_ratio", "dup_ratio", "gan_lr", "gan_class_weight"):
            if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or not o[key] >= 0:
                raise ConfigError(f"policy.{key}", o[key], "a number >= 0")
        if not isinstance(o["optimizer_travels"], bool):
            raise ConfigError("policy.optimizer_travels", o["optimizer_travels"], "true or false")
        if o["gan_lr"] == 0:
            raise ConfigError("policy.gan_lr", 0, "a number > 0")
        dp = o["gan_dp"]
        if dp is not None:
            if dp is True:
                dp = {}
            if not isinstance(dp, dict) or set(dp) - set(GAN_DP_KEYS):
                raise ConfigError("policy.gan_dp", dp, "null (off) or a mapping with " + ", ".join(GAN_DP_KEYS))
            o["gan_dp"] = dp = {**GAN_DP_KEYS, **dp}
            for key, v in dp.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or (key == "delta" and v >= 1):
                    raise ConfigError(f"policy.gan_dp.{key}", v, "a number in (0, 1)" if key == "delta" else "a number > 0")

    @classmethod
    def check_topology(cls, graph, options):
        draw_ring(graph, 0, 0)  # raises TopologyError where no ring / cycle cover exists

    # ------------------------------------------------------------------ before federation
    def setup(self, node):
        o, data = self.opts, node.data
        seed = int(node.rng.integers(2**31))
        t0 = time.perf_counter()
        with node.compute:
            # 1. the node's own conditional GAN, trained on its own patients only
            G, D, gan = self._local_gan(node, seed)
            # 2. the buffer: private latents, no near-duplicates; and what it would reveal
            z, y, x, report = build_buffer(G, D, data.x_train, data.y_train, o, seed)
            report.update(privacy_report(G, x, data.x_train, data.x_test, data.y_train, seed))
        self.G = G.cpu()
        self.own_samples = (x, y)  # what our buffer regenerates to, on any receiver
        self.own_buffer = buffer_payload(o["share"], self.G, z, y, x, node.name)
        self.setup_metrics = {**gan, **report}  # deterministic figures only: wall time goes to the log
        log.info("%s: GAN and buffer ready in %.1f s", node.name, time.perf_counter() - t0)
        self.replay: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # buffers to replay, by owner
        self.replay_gen = torch.Generator().manual_seed(seed + 1)

    def _local_gan(self, node, seed):
        o, data = self.opts, node.data
        G, D = build_gan(data.input_shape, data.num_classes, o["gan_latent"], o["gan_width"])
        path = None
        if o["gan_cache"] is not None:
            key = {"node": node.name, "seed": seed, "data": node.config.get("data"), "n": data.n_train, "arch": GAN_ARCH,
                   **{k: v for k, v in o.items() if k.startswith("gan_") and k != "gan_cache"}}
            digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
            path = Path(o["gan_cache"]) / f"feder-gan-{digest}.pt"
            if path.is_file():
                saved = torch.load(path, weights_only=True)
                G.load_state_dict(saved["G"]), D.load_state_dict(saved["D"])
                return G.to(node.device).eval(), D.to(node.device), {**saved["metrics"], "gan_cached": 1.0}
        gan = train_gan(G, D, data.x_train, data.y_train, epochs=o["gan_epochs"], batch_size=o["gan_batch"],
                        lr=o["gan_lr"], seed=seed, device=node.device, dp=o["gan_dp"],
                        class_weight=o["gan_class_weight"])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{node.name}.tmp")
            torch.save({"G": G.state_dict(), "D": D.state_dict(), "metrics": gan}, tmp)
            tmp.replace(path)
        return G, D, gan

    # ------------------------------------------------------------------ one round
    def run_round(self, node, r):
        # 3. local training: real batches, each topped up with replay samples (none before round 1)
        loss = node.train(extra_batches=self._sampler())
        # 4. this round's ring; 5. model and own buffer to the successor
        ring = draw_ring(node.graph, node.run_seed, r)
        successor = ring[node.name]
        predecessor = next(src for src, dst in ring.items() if dst == node.name)
        travels = self.opts["optimizer_travels"]
        node.send(successor, pack(node.model, node.optimizer, travels), "model")
        node.send(successor, self.own_buffer, "buffer")
        # 6. adopt the predecessor's model; its buffer is what we replay next round
        model = node.recv("model", expect=[predecessor])
        buffer = node.recv("buffer", expect=[predecessor])
        if model.messages:  # the optimizer state is reset unless it travelled with the model
            unpack(node, node.model, node.optimizer, model.messages[0].payload, travels)
        if buffer.messages:
            x, y = buffer_from_payload(buffer.messages[0].payload, node.data.input_shape, node.data.num_classes,
                                       self.opts["gan_width"])
            if self.opts["replay_from"] == "sender":
                self.replay.clear()
            self.replay[predecessor] = (x, y)
        metrics = {"train_loss": loss, "replay_samples": float(sum(len(v[1]) for v in self.replay.values()))}
        if r == 0:
            metrics.update(self.setup_metrics)
        return metrics

    def _sampler(self):
        if not self.replay or self.opts["replay_ratio"] == 0:
            return None
        x = torch.cat([v[0] for v in self.replay.values()])
        y = torch.cat([v[1] for v in self.replay.values()])
        return ReplaySampler(x, y, self.opts["replay_ratio"], self.replay_gen)


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"policy.{key}", value, " | ".join(allowed))
