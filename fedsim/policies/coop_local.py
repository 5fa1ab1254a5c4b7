"""CoOp on each client alone: the no-sharing lower bound of federated prompt learning.

Setup (every prompt policy: coop_local, coop_fedavg, zerodfl, fedtpg)
  - the node's model (cfg.model: tiny_clip or open_clip) is the frozen CLIP backbone, shared by
    every node of the worker; the node's trainable model becomes a CoOp prompt learner on it,
  - the few-shot task (fedsim.data.fewshot): this client's disjoint base classes, `shots` images each,
    and test sets of its base classes and of the unseen new classes,
  - the frozen image encoder runs once over those images; training and evaluation reuse the features.
Each round
  1. one pass over the few-shot data (SGD with train.lr/momentum/weight_decay, cosine schedule over
     the run's rounds), nothing else.
Metrics: base_acc, new_acc, hm (and the hand-written-prompt zero-shot zs_base_acc, zs_new_acc, zs_hm).
"""
from __future__ import annotations

import math

import torch

from fedsim import training
from fedsim.data import fewshot
from fedsim.errors import ConfigError
from fedsim.models import prompt_learner as pl
from fedsim.policies.base import Policy


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class CoopLocalPolicy(Policy):
    name = "coop_local"
    federation_eval = False  # each client has its own label space: cross-scoring models is meaningless
    dp_refusal = ("the prompt policies train a context through the frozen CLIP text encoder, where Opacus "
                  "cannot compute per-sample gradients; their steps would run outside DP while dp_epsilon is reported")
    options = {
        "n_ctx": 4,                # M, context vectors
        "shots": 8,                # training images per base class
        "base_fraction": 0.5,      # share of the dataset's classes that are base classes
        "classes_per_client": None,  # base classes per client (default: all base classes, dealt evenly)
        "init_std": 0.02,          # context init N(0, init_std^2)
        "kg_weight": 0.0,          # KgCoOp regulariser weight (0 = plain CoOp)
        "cosine": True,            # cosine learning-rate schedule over the run's rounds
        "handwritten": None,       # zero-shot prompt, e.g. "a photo of a {}." (default: the backbone's)
    }

    def __init__(self, options=None):
        super().__init__(options)
        o = self.opts
        for key in ("n_ctx", "shots"):
            if not _is_int(o[key]) or o[key] < 1:
                raise ConfigError(f"policy.{key}", o[key], "an integer >= 1")
        if o["classes_per_client"] is not None and (not _is_int(o["classes_per_client"]) or o["classes_per_client"] < 1):
            raise ConfigError("policy.classes_per_client", o["classes_per_client"], "null or an integer >= 1")
        for key in ("init_std", "kg_weight"):
            if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or o[key] < 0:
                raise ConfigError(f"policy.{key}", o[key], "a number >= 0")
        if o["handwritten"] is not None and (not isinstance(o["handwritten"], str) or "{}" not in o["handwritten"]):
            raise ConfigError("policy.handwritten", o["handwritten"], "null or a prompt with {} for the class name")

    # ------------------------------------------------------------------ setup
    def setup(self, node):
        backbone = node.model
        if not hasattr(backbone, "encode_embedded"):
            raise ConfigError("model.name", node.config.get("model", {}).get("name"), "tiny_clip or open_clip",
                              f"policy {self.name!r} learns prompts on a frozen CLIP backbone")
        self.backbone, self.run_seed = backbone, node.run_seed
        o = self.opts
        order = sorted(node.graph.nodes)
        bases, new = fewshot.split_classes(node.data.num_classes, order, node.run_seed,
                                           base_fraction=o["base_fraction"], per_client=o["classes_per_client"])
        self.task = fewshot.make_task(node.data, bases[node.name], new, o["shots"],
                                      seed=node.run_seed * 1_000_003 + order.index(node.name))
        handwritten = o["handwritten"] or getattr(backbone, "handwritten", "a photo of a {}.")
        same = node.train_cfg.get("same_init", True)
        gen = torch.Generator().manual_seed(node.run_seed * 7919 + (0 if same else 1 + order.index(node.name)))
        self.learner = pl.PromptLearner(backbone, o["n_ctx"], float(o["init_std"]), float(o["kg_weight"]),
                                        handwritten, generator=gen).to(node.device)
        with node.compute:  # the image encoder is frozen: encode every image once
            self.f_train = self._encode(self.task.x_train, node.device)
            self.f_base = self._encode(self.task.x_base, node.device)
            self.f_new = self._encode(self.task.x_new, node.device)
            self.zero_shot = self._scores(lambda f: self.learner.zero_shot_logits(f))
        node.model = self.trainable()
        node.optimizer = training.make_optimizer(node.model, node.train_cfg)
        self.base_lr = node.train_cfg["lr"]

    def trainable(self) -> torch.nn.Module:
        """What the optimizer trains and `node.model` holds (the learner's context for CoOp)."""
        return self.learner

    @torch.no_grad()
    def _encode(self, x: torch.Tensor, device) -> torch.Tensor:
        return torch.cat([self.backbone.encode_image(x[i:i + 512].to(device)) for i in range(0, len(x), 512)]) \
            if len(x) else torch.zeros(0, 1)

    # ------------------------------------------------------------------ training
    def context_for(self, names: list[str]) -> torch.Tensor:
        """The context used to classify among `names` (CoOp: the one learned context)."""
        return self.learner.ctx

    def local_pass(self, node, r: int) -> float:
        """One pass over the few-shot data with the round's (cosine) learning rate."""
        lr = self.base_lr * (0.5 * (1 + math.cos(math.pi * r / max(node.total_rounds, 1))) if self.opts["cosine"] else 1)
        for group in node.optimizer.param_groups:
            group["lr"] = lr
        self.learner.use_classes(self.task.base_names)
        loss_fn = lambda xb, yb: self.learner.loss(xb, yb, self.context_for(self.task.base_names))  # noqa: E731
        with node.compute:
            return pl.train_pass(loss_fn, node.model, node.optimizer, self.f_train, self.task.y_train,
                                 node.train_cfg["batch_size"], node.generator)

    def run_round(self, node, r):
        return {"train_loss": self.local_pass(node, r)}

    # ------------------------------------------------------------------ evaluation
    def _scores(self, logits_of, prefix: str = "") -> dict[str, float]:
        self.learner.use_classes(self.task.base_names)
        base = pl.accuracy(logits_of, self.f_base, self.task.y_base)
        self.learner.use_classes(self.task.new_names)
        new = pl.accuracy(logits_of, self.f_new, self.task.y_new)
        return {f"{prefix}base_acc": base, f"{prefix}new_acc": new, f"{prefix}hm": fewshot.harmonic_mean(base, new)}

    def evaluate(self, node, r):
        with node.compute, torch.no_grad():
            def learned(f):
                return self.learner.logits(self.learner.image_features(f),
                                           self.learner.text_features(self.context_for(self.learner.classes.names)))
            out = self._scores(learned)
        out["test_acc"] = out["base_acc"]  # the driver's headline number: accuracy on own classes
        out.update({f"zs_{k}": v for k, v in self.zero_shot.items()})
        return out
