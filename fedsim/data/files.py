"""The user's own data: image folders (root/hospital/class/*.png) and MedMNIST-style .npz files.

Everything here returns float32 images (N, C, H, W) in [0, 1] and int64 labels; bad input gives a
DataError that names the file or folder and what was expected.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fedsim.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NPZ_REQUIRED = ("train_images", "train_labels", "test_images", "test_labels")


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


# ---------------------------------------------------------------- image folders
def _root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagefolder root {str(root)!r} is not a directory")
    return root


def imagefolder_hospitals(root: str | os.PathLike) -> list[str]:
    """The hospital folders directly under `root`."""
    root = _root(root)
    hospitals = _subdirs(root)
    if not hospitals:
        raise DataError(f"imagefolder root {str(root)!r} has no hospital folders "
                        "(expected root/<hospital>/<class>/<image>.png)")
    return hospitals


def imagefolder_classes(root: str | os.PathLike, hospitals: list[str]) -> list[str]:
    """Sorted union of the class folder names of `hospitals` (a hospital may lack some classes)."""
    root, classes = _root(root), set()
    for h in hospitals:
        if not (root / h).is_dir():
            raise DataError(f"imagefolder root {str(root)!r} has no folder for hospital {h!r} "
                            f"(found: {', '.join(_subdirs(root)) or 'none'})")
        found = _subdirs(root / h)
        if not found:
            raise DataError(f"hospital folder {str(root / h)!r} has no class folders "
                            "(expected <hospital>/<class>/<image>.png)")
        classes.update(found)
    return sorted(classes)


def _read_image(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc}") from None
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def load_hospital_folder(root: str | os.PathLike, hospital: str, classes: list[str], size: int,
                         channels: int) -> tuple[np.ndarray, np.ndarray]:
    """All images of one hospital folder, resized to size x size, with labels indexing `classes`."""
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = Path(root) / hospital / cls
        if not folder.is_dir():
            continue  # this hospital has no cases of this class
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {str(folder)!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
        images += [_read_image(f, size, channels) for f in files]
        labels += [label] * len(files)
    x = np.stack(images).astype(np.float32) / 255.0
    return x, np.asarray(labels, dtype=np.int64)


# ---------------------------------------------------------------- npz
@dataclass
class NpzSplits:
    x_train: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray


def _open_npz(path: str | os.PathLike):
    p = Path(path)
    if not p.is_file():
        raise DataError(f"npz file {str(p)!r} not found")
    try:
        npz = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read npz file {str(p)!r}: {exc}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{str(p)!r} is a single .npy array, not an .npz archive of named arrays")
    return npz


def _labels(npz, key: str, path) -> np.ndarray:
    y = np.asarray(npz[key])
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{str(path)!r}: {key} must have shape (N,) or (N, 1), got {y.shape} "
                        "(multi-label data is not supported)")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise DataError(f"{str(path)!r}: {key} must be non-negative integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_keys(npz, path) -> None:
    missing = [k for k in NPZ_REQUIRED if k not in npz.files]
    if missing:
        raise DataError(f"{str(path)!r}: missing key(s) {', '.join(missing)}; an npz needs "
                        f"{', '.join(NPZ_REQUIRED)} (val_images, val_labels optional); it has {', '.join(npz.files)}")
    if ("val_images" in npz.files) != ("val_labels" in npz.files):
        raise DataError(f"{str(path)!r}: has only one of val_images, val_labels; give both or neither")


def npz_max_label(path: str | os.PathLike) -> int:
    """The largest label in the file, reading only the label arrays."""
    with _open_npz(path) as npz:
        _check_keys(npz, path)
        keys = [k for k in npz.files if k.endswith("_labels") and k.split("_")[0] in ("train", "val", "test")]
        return max((int(y.max()) for y in (_labels(npz, k, path) for k in keys) if y.size), default=-1)


def _images(npz, key: str, path) -> np.ndarray:
    x = np.asarray(npz[key])
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{str(path)!r}: {key} must be N x H x W or N x H x W x C with C 1 or 3, "
                        f"got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)  # taken to be in [0, 1] already
    else:
        raise DataError(f"{str(path)!r}: {key} must be uint8 (0-255) or float (0-1), got {x.dtype}")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def read_npz(path: str | os.PathLike) -> NpzSplits:
    """The train (plus val, if present) and test parts of a MedMNIST-style npz."""
    with _open_npz(path) as npz:
        _check_keys(npz, path)
        parts = {}
        for split in ("train", "val", "test"):
            if f"{split}_images" not in npz.files:
                continue
            x, y = _images(npz, f"{split}_images", path), _labels(npz, f"{split}_labels", path)
            if x.shape[0] != y.shape[0]:
                raise DataError(f"{str(path)!r}: {split}_images has {x.shape[0]} samples "
                                f"but {split}_labels has {y.shape[0]}")
            parts[split] = (x, y)
    if "val" in parts:
        if parts["val"][0].shape[1:] != parts["train"][0].shape[1:]:
            raise DataError(f"{str(path)!r}: val_images are {parts['val'][0].shape[1:]}, "
                            f"train_images are {parts['train'][0].shape[1:]}")
        parts["train"] = tuple(np.concatenate(p) for p in zip(parts["train"], parts["val"]))
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise DataError(f"{str(path)!r}: test_images are {parts['test'][0].shape[1:]} (C, H, W), "
                        f"train_images are {parts['train'][0].shape[1:]}")
    return NpzSplits(*parts["train"], *parts["test"])


def conform(x: np.ndarray, image_size: int | None, channels: int | None) -> np.ndarray:
    """Convert (N, C, H, W) images to the requested channel count and square size (None = keep)."""
    if channels is not None and x.shape[1] != channels:
        if channels == 3:
            x = np.repeat(x, 3, axis=1)
        else:  # ITU-R BT.601 luma, as PIL's "L" conversion
            x = np.tensordot(x, np.array([0.299, 0.587, 0.114], dtype=np.float32), axes=([1], [0]))[:, None]
    if image_size is not None and x.shape[2:] != (image_size, image_size) and x.shape[0]:
        t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(image_size, image_size),
                          mode="bilinear", align_corners=False, antialias=True)
        x = t.clamp_(0, 1).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def npz_image_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """(C, H, W) of train_images, read from the array header without loading the pixels."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open("train_images.npy") as fh:
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape = read(fh)[0]
    except KeyError:
        raise DataError(f"{str(path)!r}: missing key(s) train_images; an npz needs {', '.join(NPZ_REQUIRED)}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read npz file {str(path)!r}: {exc}") from None
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    if len(shape) == 4:
        return (shape[3], shape[1], shape[2])
    raise DataError(f"{str(path)!r}: train_images must be N x H x W or N x H x W x C, got shape {shape}")
