"""synthmed: determinism, per-node independence, acquisition shift, label skew, class names, learnability."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedsim.data import load_federation, synthmed
from fedsim.data.scanner import make_scanner
from fedsim.errors import ConfigError
from fedsim.models import build_model

NODES = [f"hospital_{i}" for i in range(6)]


def test_same_seed_same_tensors_other_seed_other_tensors():
    spec = {"samples_per_node": 60, "num_classes": 5}
    a = load_federation(spec, NODES, seed=7)
    b = load_federation(spec, NODES, seed=7)
    c = load_federation(spec, NODES, seed=8)
    for name in NODES:
        for field in ("x_train", "y_train", "x_test", "y_test"):
            assert torch.equal(getattr(a[name], field), getattr(b[name], field))
        assert not torch.equal(a[name].x_train, c[name].x_train)
    assert not torch.equal(a[NODES[0]].x_train, a[NODES[1]].x_train)


def test_only_builds_the_same_node_data():
    spec = {"samples_per_node": 50, "num_classes": 4, "label_alpha": 0.5}
    full = load_federation(spec, NODES, seed=3)
    part = load_federation(spec, NODES, seed=3, only=[NODES[4], NODES[1]])
    assert list(part) == [NODES[1], NODES[4]]  # node_names order
    for name in part:
        for field in ("x_train", "y_train", "x_test", "y_test"):
            assert torch.equal(getattr(part[name], field), getattr(full[name], field))


def test_shapes_dtypes_and_range():
    d = load_federation({"samples_per_node": 40, "channels": 3, "image_size": 48, "test_fraction": 0.25},
                        NODES[:2], seed=0)
    node = d[NODES[0]]
    assert node.x_train.shape == (30, 3, 48, 48) and node.x_test.shape == (10, 3, 48, 48)
    assert node.x_train.dtype == torch.float32 and node.y_train.dtype == torch.int64
    assert node.input_shape == (3, 48, 48) and node.num_classes == 2
    assert node.class_names == ["healthy", "large central round nodule"]
    assert 0.0 <= float(node.x_train.min()) and float(node.x_train.max()) <= 1.0
    # RGB channels differ (per-hospital colour cast) but carry the same anatomy.
    x = node.x_train
    assert not torch.equal(x[:, 0], x[:, 1])
    assert np.corrcoef(x[:, 0].flatten(), x[:, 1].flatten())[0, 1] > 0.8


def _healthy_stats(shift: float) -> np.ndarray:
    """(nodes, 2): mean and std of the pixels of each hospital's healthy scans."""
    out = []
    for i in range(6):
        x, y = synthmed.generate(11, i, 200, num_classes=2, shift=shift)
        h = x[y == 0]
        out.append((h.mean(), h.std()))
    return np.array(out)


def test_hospitals_differ_in_intensity_statistics_by_shift():
    same, default, strong = _healthy_stats(0.0), _healthy_stats(1.0), _healthy_stats(2.0)
    # shift 0: identical scanners, so hospitals differ only by sampling noise.
    assert same[:, 0].std() < 0.005
    # shift 1: a measurable acquisition shift in brightness and contrast/noise; shift 2: stronger.
    assert default[:, 0].std() > 5 * same[:, 0].std() and default[:, 0].std() > 0.02
    assert default[:, 1].std() > 3 * same[:, 1].std()
    assert strong[:, 0].std() > default[:, 0].std()
    assert make_scanner(np.random.default_rng(1), 0.0, 3) == make_scanner(np.random.default_rng(2), 0.0, 3)


def test_balanced_by_default_and_skewed_with_small_label_alpha():
    balanced = load_federation({"samples_per_node": 200, "num_classes": 10}, NODES, seed=0)
    for node in balanced.values():
        counts = node.class_counts("train") + node.class_counts("test")
        assert counts.min() == counts.max() == 20
        assert node.class_counts("test").min() == node.class_counts("test").max() == 4  # stratified
    skewed = load_federation({"samples_per_node": 200, "num_classes": 10, "label_alpha": 0.1}, NODES, seed=0)
    dominance = [(n.class_counts() + n.class_counts("test")).max() / 200 for n in skewed.values()]
    assert np.mean(dominance) > 0.5
    dominant = {int(np.argmax(n.class_counts())) for n in skewed.values()}
    assert len(dominant) > 1  # hospitals are skewed towards different classes


def test_at_least_64_distinct_readable_class_names():
    names = synthmed.class_names(synthmed.MAX_CLASSES)
    assert synthmed.MAX_CLASSES >= 64 and len(set(names)) == len(names) == synthmed.MAX_CLASSES
    assert names[0] == "healthy"
    assert all(n.replace("-", "").replace(" ", "").isalpha() for n in names)
    for term in ("round nodule", "spiculated mass", "ring lesion", "calcification cluster", "cyst"):
        assert any(term in n for n in names)
    assert synthmed.class_names(5) == names[:5]  # class k means the same for any num_classes
    with pytest.raises(ConfigError, match="data.num_classes"):
        synthmed.class_names(synthmed.MAX_CLASSES + 1)


def test_every_class_renders_something_different_from_healthy():
    x, y = synthmed.generate(5, 0, 2 * synthmed.MAX_CLASSES, num_classes=synthmed.MAX_CLASSES, shift=0.0)
    assert set(y.tolist()) == set(range(synthmed.MAX_CLASSES))
    healthy_energy = np.abs(x[y == 0] - x[y == 0].mean(0)).mean()
    assert np.isfinite(x).all() and healthy_energy > 0
    # Lesions are localised: the class-mean image of each lesion class differs from the healthy mean.
    means = np.stack([x[y == k].mean(0) for k in range(synthmed.MAX_CLASSES)])
    assert np.all(np.abs(means[1:] - means[0]).max(axis=(1, 2, 3)) > 0.05)


def test_generation_is_fast():
    synthmed.generate(0, 0, 10)
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for i in range(8):
            synthmed.generate(0, i, 600)
        best = min(best, time.perf_counter() - start)
    assert best < 2.0, f"8 hospitals x 600 images took {best:.2f}s"  # about 0.3 s on one core


def test_small_cnn_learns_two_class_iid_synthmed():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_federation({"samples_per_node": 500}, NODES, seed=0)
    x = torch.cat([d.x_train for d in data.values()])
    y = torch.cat([d.y_train for d in data.values()])
    x_test = torch.cat([d.x_test for d in data.values()])
    y_test = torch.cat([d.y_test for d in data.values()])
    model = build_model({"name": "cnn"}, data[NODES[0]].input_shape, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), 32):
            idx = order[start:start + 32]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"SmallCNN 2-class synthmed test accuracy after 3 epochs: {accuracy:.3f}")
    assert accuracy > 0.75  # chance is 0.5


def test_bad_synthmed_values_name_the_key():
    for spec, key in [({"num_classes": 500}, "data.num_classes"), ({"channels": 2}, "data.channels"),
                      ({"image_size": 8}, "data.image_size"), ({"shift": -1}, "data.shift"),
                      ({"label_alpha": 0}, "data.label_alpha"), ({"samples_per_node": 1}, "data.samples_per_node"),
                      ({"test_fraction": 1.0}, "data.test_fraction"), ({"root": "/tmp"}, "data.root")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_federation(spec, NODES, seed=0)


def test_blur_preserves_mean_level_and_spreads_a_point_like_a_gaussian():
    from fedsim.data.fields import blur

    flat = np.full((2, 16, 16), 0.4, dtype=np.float32)
    assert np.allclose(blur(flat, 1.5), 0.4, atol=1e-6)  # mirrored borders: no darkening at the edges
    point = np.zeros((1, 17, 17), dtype=np.float32)
    point[0, 8, 8] = 1.0
    out = blur(point, 1.0)[0]
    assert np.isclose(out.sum(), 1.0, atol=1e-5)
    assert np.isclose(out[8, 9] / out[8, 8], np.exp(-0.5), rtol=1e-3)  # Gaussian profile, sigma 1 px
    assert np.allclose(out, out.T, atol=1e-7)
