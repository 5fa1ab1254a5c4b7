"""Tensors <-> raw bytes: which dtypes travel, how to view a tensor as bytes, how to rebuild it.

Everything here works on whole buffers (memoryviews, torch/numpy views); nothing loops over
elements. Bytes are native little-endian, which is what every platform fedsim runs on uses.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from fedsim.v1 import wire_pb2

# Plain (non-quantized, whole-byte) torch dtypes, keyed by the name used on the wire.
# float8 variants are looked up by name so older torch builds simply lack them.
_TORCH_NAMES = (
    "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
)
TORCH_DTYPES: dict[str, torch.dtype] = {
    n: getattr(torch, n) for n in _TORCH_NAMES if isinstance(getattr(torch, n, None), torch.dtype)
}
# numpy has no bfloat16/float8; longdouble is platform dependent, so it is not accepted.
NUMPY_DTYPES: dict[str, np.dtype] = {
    n: np.dtype(n)
    for n in ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128")
}


class TensorError(ValueError):
    """A tensor cannot be put on the wire (unsupported type, dtype or layout)."""


class Layout(NamedTuple):
    """Where one tensor lives in the payload bytes and how to rebuild it."""

    name: str
    lib: int                              # wire_pb2.TORCH or wire_pb2.NUMPY
    dtype: torch.dtype | np.dtype
    shape: tuple[int, ...]
    nbytes: int


def _torch_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def raw_bytes(name: str, tensor: object) -> tuple[wire_pb2.TensorSpec, memoryview]:
    """Spec plus a flat byte view of ``tensor``; copies only if it is not already contiguous CPU memory."""
    if isinstance(tensor, torch.Tensor):
        t = tensor.detach()
        if t.layout != torch.strided or t.is_quantized:
            raise TensorError(f"tensor {name!r}: only dense tensors can be sent (got layout {t.layout})")
        dname = _torch_name(t.dtype)
        if dname not in TORCH_DTYPES:
            raise TensorError(f"tensor {name!r}: dtype {t.dtype} cannot be sent; allowed: {sorted(TORCH_DTYPES)}")
        # conj/neg bits are lazy flags, not memory: materialize them so the bytes mean what they say.
        t = t.cpu().resolve_conj().resolve_neg().contiguous()
        # as_strided, not reshape: size-1 dims of a "contiguous" tensor may carry any stride,
        # which view(uint8) rejects.
        flat = t.as_strided((t.numel(),), (1,)).view(torch.uint8).numpy() if t.numel() else np.empty(0, np.uint8)
        spec = wire_pb2.TensorSpec(name=name, dtype=dname, shape=t.shape, nbytes=flat.nbytes, lib=wire_pb2.TORCH)
        return spec, memoryview(flat)
    if isinstance(tensor, (np.ndarray, np.generic)):
        a = np.asarray(tensor)
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if a.dtype.name not in NUMPY_DTYPES:
            raise TensorError(f"tensor {name!r}: numpy dtype {a.dtype} cannot be sent; allowed: {sorted(NUMPY_DTYPES)}")
        flat = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        spec = wire_pb2.TensorSpec(name=name, dtype=a.dtype.name, shape=a.shape, nbytes=flat.nbytes, lib=wire_pb2.NUMPY)
        return spec, memoryview(flat)
    raise TensorError(f"tensor {name!r}: expected a torch.Tensor or numpy.ndarray, got {type(tensor).__name__}")


def layout_of(spec: wire_pb2.TensorSpec) -> Layout:
    """Check one header spec and resolve its dtype; raises TensorError when it cannot be rebuilt."""
    if spec.lib == wire_pb2.TORCH:
        dtype = TORCH_DTYPES.get(spec.dtype)
        itemsize = dtype.itemsize if dtype is not None else 0
    elif spec.lib == wire_pb2.NUMPY:
        dtype = NUMPY_DTYPES.get(spec.dtype)
        itemsize = dtype.itemsize if dtype is not None else 0
    else:
        raise TensorError(f"tensor {spec.name!r}: unknown tensor library {spec.lib}")
    if dtype is None:
        raise TensorError(f"tensor {spec.name!r}: unknown dtype {spec.dtype!r}")
    shape = tuple(spec.shape)
    if any(d < 0 for d in shape):
        raise TensorError(f"tensor {spec.name!r}: negative dimension in shape {shape}")
    if math.prod(shape) * itemsize != spec.nbytes:
        raise TensorError(
            f"tensor {spec.name!r}: shape {shape} of {spec.dtype} needs {math.prod(shape) * itemsize} bytes, "
            f"header says {spec.nbytes}")
    return Layout(spec.name, spec.lib, dtype, shape, spec.nbytes)


def rebuild(buf: np.ndarray, layouts: list[Layout]) -> dict[str, torch.Tensor | np.ndarray]:
    """Tensors as views into the uint8 array ``buf`` (writable, sharing its memory), in layout order.

    Tensors are laid end to end without padding, so one may start at an offset that is not a
    multiple of its item size; such a tensor is copied once into aligned memory instead.
    """
    as_numpy = buf
    as_torch = torch.from_numpy(buf)
    base_ptr = buf.ctypes.data
    out: dict[str, torch.Tensor | np.ndarray] = {}
    offset = 0
    for lay in layouts:
        end = offset + lay.nbytes
        itemsize = lay.dtype.itemsize
        aligned = offset % itemsize == 0 and base_ptr % itemsize == 0
        if lay.lib == wire_pb2.TORCH:
            if lay.nbytes == 0:
                out[lay.name] = torch.empty(lay.shape, dtype=lay.dtype)
            else:
                raw = as_torch[offset:end]
                out[lay.name] = (raw if aligned else raw.clone()).view(lay.dtype).reshape(lay.shape)
        else:
            raw = as_numpy[offset:end]
            out[lay.name] = (raw if aligned else raw.copy()).view(lay.dtype).reshape(lay.shape)
        offset = end
    return out
