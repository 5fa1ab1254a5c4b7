"""A user dataset: tabular lab values per hospital (seeded, generated; stands in for a site's table).

Each patient has `features` lab values; the label (0 healthy, 1 sick) shifts a few of them.
Each hospital measures with its own calibration offset, so the federation is non-IID.
"""
from __future__ import annotations

import numpy as np

import fedsim


def lab_values(request: fedsim.DataRequest) -> dict[str, fedsim.NodeData]:
    o = request.options
    out = {}
    for name in request.nodes:
        i = request.index(name)  # depends only on this node's position, seed and options
        rng = np.random.default_rng([request.seed, i])
        n = o["patients"]
        y = rng.integers(0, 2, n)
        x = rng.normal(0, 1, (n, o["features"])) + rng.normal(0, o["site_shift"], o["features"])
        x[:, :3] += 1.5 * y[:, None]
        cut = int(n * 0.8)
        out[name] = fedsim.NodeData.from_arrays(name, x[:cut], y[:cut], x[cut:], y[cut:],
                                                class_names=["healthy", "sick"])
    return out


lab_values.options = {
    "patients": fedsim.Option.integer(200, "patients per hospital", min=10),
    "features": fedsim.Option.integer(12, "lab values per patient", min=3),
    "site_shift": fedsim.Option.number(0.5, "std of each hospital's calibration offset", min=0),
}
