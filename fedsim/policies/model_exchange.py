"""Model exchange: FedRewind without rewind — the baseline the rewind is measured against.

Every node trains the model it holds for E local epochs, sends it to its receiver in this round's
route (`routing.py`: random_permutation, ring or scored, along topology edges) and adopts the model
it receives. Same code path as `fedrewind` with rewind_ratio = 0, so the two runs are bit-identical.
"""
from __future__ import annotations

from fedsim.policies.fedrewind import FedRewindPolicy


class ModelExchangePolicy(FedRewindPolicy):
    name = "model_exchange"
    options = {"routing": "random_permutation", "optimizer_travels": True}
    fixed = {"rewind_ratio": 0.0}
