"""FedTPG (Qiu et al., ICLR 2024): a text-conditioned prompt generator trained with FedAvg through a hub.

Setup as coop_local, except that the context is not a free parameter: a prompt-generator network
(fedsim.models.prompt_generator) maps the frozen text features of the task's class names to the
M context vectors, so unseen (new) classes get a context of their own. Each round
  1. every client (the hub included) does one pass over its few-shot data, training the generator,
  2. the other clients send the generator's weights (in `wire_dtype`, fp16 as published) and their
     sample count to the hub,
  3. the hub averages them weighted by samples and sends the average back (same dtype); all adopt it.
Size: gen_hidden (default: the text width), gen_layers, gen_heads (default hidden/64), gen_ffn;
at CLIP ViT-B/16's text width 512 the defaults give 4,205,568 parameters (published: ~4.2 M).
"""
from __future__ import annotations

import torch

from fedsim.errors import ConfigError
from fedsim.models.prompt_generator import PromptGenerator
from fedsim.payload import Kind, Payload
from fedsim.policies.averaging import weighted_average
from fedsim.policies.coop_local import CoopLocalPolicy
from fedsim.policies.hub import choose_hub

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class FedTPGPolicy(CoopLocalPolicy):
    name = "fedtpg"
    options = {**CoopLocalPolicy.options, "hub": None, "gen_hidden": None, "gen_layers": 1, "gen_heads": None,
               "gen_ffn": 5, "wire_dtype": "float16"}

    def __init__(self, options=None):
        super().__init__(options)
        for key in ("gen_hidden", "gen_heads"):
            v = self.opts[key]
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"policy.{key}", v, "null (automatic) or an integer >= 1")
        for key in ("gen_layers", "gen_ffn"):
            v = self.opts[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"policy.{key}", v, "an integer >= 1")
        if self.opts["wire_dtype"] not in DTYPES:
            raise ConfigError("policy.wire_dtype", self.opts["wire_dtype"], ", ".join(DTYPES))

    @classmethod
    def check_topology(cls, graph, options):
        choose_hub(graph, options.get("hub"), cls.name)

    def setup(self, node):
        self.hub = choose_hub(node.graph, self.opts["hub"], self.name)
        super().setup(node)

    def trainable(self):
        o, bb = self.opts, self.backbone
        hidden = o["gen_hidden"] or bb.text_width
        heads = o["gen_heads"] or max(1, hidden // 64)
        feature_dim = self.learner.use_classes(self.task.base_names).classes.hand_features.shape[1]
        with torch.random.fork_rng(devices=[]):  # FedAvg starts every client from the same generator
            torch.manual_seed(104_729 + self.run_seed)
            self.generator = PromptGenerator(feature_dim, bb.text_width, self.opts["n_ctx"], hidden,
                                             o["gen_layers"], heads, o["gen_ffn"])
        return self.generator.to(self.learner.ctx.device)

    def context_for(self, names):
        return self.generator(self.learner.use_classes(names).classes.hand_features)

    def run_round(self, node, r):
        loss = self.local_pass(node, r)
        dtype = DTYPES[self.opts["wire_dtype"]]
        n = len(self.task.y_train)
        if node.name != self.hub:
            node.send(self.hub, self._payload(dtype, samples=n), "gen_update")
            got = node.recv("gen_global", expect=[self.hub])
            if got.messages:
                self._adopt(got.messages[0].payload.tensors)
            return {"train_loss": loss}
        got = node.recv("gen_update", expect=node.neighbors)
        states = [self._payload(dtype).tensors] + [m.payload.tensors for m in got]
        weights = [n] + [float(m.payload.meta["samples"]) for m in got]
        avg = weighted_average(states, weights)
        payload = Payload(Kind.MODEL, {k: v.to(dtype) if v.is_floating_point() else v for k, v in avg.items()})
        self._adopt(payload.tensors)  # the hub keeps what the others get: everyone holds the same generator
        node.broadcast(payload, "gen_global")
        return {"train_loss": loss, "peers_heard": float(len(got))}

    def _payload(self, dtype, **meta) -> Payload:
        state = {k: v.detach().to(dtype) if v.is_floating_point() else v.detach()
                 for k, v in self.generator.state_dict().items()}
        return Payload(Kind.MODEL, state, {k: str(v) for k, v in meta.items()})

    def _adopt(self, tensors):
        own = self.generator.state_dict()
        with torch.no_grad():
            for k, v in tensors.items():
                own[k].copy_(torch.as_tensor(v))
