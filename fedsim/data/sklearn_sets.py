"""Real datasets bundled with scikit-learn (no download): Wisconsin breast cancer and 8x8 digits."""
from __future__ import annotations

import numpy as np

from fedsim.data.pooled import Pool

# sklearn is imported where used: it costs ~1.5 s at startup, paid by every process that imports
# fedsim.data (each deployed `fedsim node`, each Ray worker) even when no sklearn dataset is used.


def breast_cancer() -> Pool:
    """569 tumours, 30 features; standardised later with the pooled train statistics."""
    from sklearn import datasets
    d = datasets.load_breast_cancer()
    return Pool(d.data.astype(np.float32), d.target.astype(np.int64), [str(n) for n in d.target_names],
                standardize=True)


def digits() -> Pool:
    """1797 handwritten digits as 1x8x8 images in [0, 1] (models that need vectors flatten them)."""
    from sklearn import datasets
    d = datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return Pool(x, d.target.astype(np.int64), [f"digit {i}" for i in range(10)])
