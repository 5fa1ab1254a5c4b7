"""A travelling model on the wire: its weights and, when the optimizer travels too, its optimizer state.

Model-exchange policies (fedrewind, model_exchange, feder) move one model from node to node. With
`optimizer_travels` the optimizer's state tensors (momentum buffers, Adam moments and step counts)
ride in the same MODEL payload as `opt/<param index>/<name>`; the receiver's learning rates stay
its own configuration. Without it the receiver starts the adopted model with fresh optimizer state.
"""
from __future__ import annotations

import torch

from fedsim.payload import Kind, Payload

OPT_PREFIX = "opt/"


def pack(model, optimizer, with_optimizer: bool, **meta) -> Payload:
    """The model (and, if it travels, its optimizer state) as one MODEL payload.

    Copies, not views: serve() returns its payload after releasing the scratch model, which the
    next visiting model may already be overwriting while the reply is encoded."""
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if with_optimizer:
        for idx, state in optimizer.state_dict()["state"].items():
            for key, value in state.items():
                if value is not None:
                    tensors[f"{OPT_PREFIX}{idx}/{key}"] = torch.as_tensor(value).clone()
    return Payload(Kind.MODEL, tensors, {k: str(v) for k, v in meta.items()})


def unpack(node, model, optimizer, payload: Payload, with_optimizer: bool) -> None:
    weights = {k: v for k, v in payload.tensors.items() if not k.startswith(OPT_PREFIX)}
    if model is node.model:
        node.load_model(weights)  # validates names and shapes
    else:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
    state: dict[int, dict] = {}
    if with_optimizer:
        for key, value in payload.tensors.items():
            if key.startswith(OPT_PREFIX):
                idx, name = key[len(OPT_PREFIX):].split("/", 1)
                state.setdefault(int(idx), {})[name] = torch.as_tensor(value).clone()
    # without a travelling optimizer the adopted model starts with fresh optimizer state
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
