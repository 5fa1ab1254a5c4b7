"""Payload: what one node hands another — named tensors, a kind and small string metadata."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch


class Kind(enum.IntEnum):
    """What a payload carries; mirrors fedsim.v1.Kind on the wire."""

    MODEL = 1
    PROMPT = 2
    GENERATOR = 3
    SAMPLES = 4
    CONTROL = 5

    @classmethod
    def parse(cls, value: "Kind | str | int") -> "Kind":
        if isinstance(value, Kind):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown payload kind {value!r}; allowed: {[k.name for k in cls]}") from None
        return cls(value)


Tensor = "torch.Tensor | np.ndarray"


@dataclass
class Payload:
    """Named tensors (torch or numpy, any dtype and shape) plus kind and string metadata.

    Tensor order is the insertion order of ``tensors``; the codec keeps it, so a receiver sees
    the same names in the same order.
    """

    kind: Kind
    tensors: dict[str, torch.Tensor | np.ndarray] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = Kind.parse(self.kind)

    @property
    def nbytes(self) -> int:
        """Raw tensor bytes (what the payload is worth before framing)."""
        total = 0
        for t in self.tensors.values():
            total += t.numel() * t.element_size() if isinstance(t, torch.Tensor) else t.nbytes
        return total

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], kind: Kind = Kind.MODEL, **meta: str) -> "Payload":
        return cls(kind, {k: v.detach() for k, v in state.items()}, {k: str(v) for k, v in meta.items()})
