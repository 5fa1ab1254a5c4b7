"""sklearn datasets, image folders, npz files, the data spec and NodeData checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fedsim.data import DATA_SPEC_DEFAULTS, NodeData, describe, load_federation
from fedsim.errors import ConfigError, DataError

NODES = ["north", "south", "east", "west"]


def _total(data) -> int:
    return sum(d.n_train + d.n_test for d in data.values())


# ---------------------------------------------------------------- sklearn sets
def test_breast_cancer_standardised_on_pooled_train_part():
    data = load_federation({"dataset": "breast_cancer"}, NODES, seed=0)
    assert _total(data) == 569
    node = data["north"]
    assert node.input_shape == (30,) and node.class_names == ["malignant", "benign"]
    train = torch.cat([d.x_train for d in data.values()])
    assert torch.allclose(train.mean(0), torch.zeros(30), atol=1e-4)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(30), atol=1e-3)
    test = torch.cat([d.x_test for d in data.values()])
    assert not torch.allclose(test.mean(0), torch.zeros(30), atol=1e-4)  # test rows did not shape the scaler


def test_breast_cancer_dirichlet_skew_respects_min_samples():
    spec = {"dataset": "breast_cancer", "partition": {"kind": "dirichlet", "alpha": 0.1, "min_samples": 30}}
    data = load_federation(spec, NODES, seed=2)
    assert _total(data) == 569
    assert all(d.n_train + d.n_test >= 30 for d in data.values())
    shares = [d.class_counts()[0] / d.n_train for d in data.values()]
    assert max(shares) - min(shares) > 0.3  # label skew between hospitals


def test_digits_images_and_partitions():
    data = load_federation({"dataset": "digits", "partition": "shards"}, NODES, seed=0)
    assert _total(data) == 1797
    node = data["east"]
    assert node.input_shape == (1, 8, 8) and node.num_classes == 10 and node.class_names[3] == "digit 3"
    assert 0 <= float(node.x_train.min()) and float(node.x_train.max()) <= 1
    assert all((d.class_counts() > 0).sum() <= 6 for d in data.values())  # 2 shards reach few classes
    iid = load_federation({"dataset": "digits", "test_fraction": 0.5}, NODES, seed=0)
    assert all(abs(d.n_train - d.n_test) <= 1 for d in iid.values())
    only = load_federation({"dataset": "digits", "test_fraction": 0.5}, NODES, seed=0, only=["west"])
    assert list(only) == ["west"] and torch.equal(only["west"].x_test, iid["west"].x_test)


def test_natural_partition_needs_hospital_sources():
    with pytest.raises(ConfigError, match=r"data\.partition\.kind.*natural needs per-hospital sources"):
        load_federation({"dataset": "digits", "partition": {"kind": "natural"}}, NODES, seed=0)


def test_too_small_a_share_is_reported():
    with pytest.raises(DataError, match="at least 300 samples"):
        load_federation({"dataset": "breast_cancer", "partition": {"kind": "dirichlet", "min_samples": 300}},
                        NODES, seed=0)


# ---------------------------------------------------------------- image folders
def _write_png(path, value: int, size=(20, 24), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, value // 2, 255 - value)
    Image.new(mode, size, color).save(path)


@pytest.fixture
def image_root(tmp_path):
    """north: 6 benign (dark) + 4 malignant (bright); south: 5 benign, RGB JPGs, and no malignant folder."""
    root = tmp_path / "scans"
    for i in range(6):
        _write_png(root / "north" / "benign" / f"{i}.png", 20 + i)
    for i in range(4):
        _write_png(root / "north" / "malignant" / f"{i}.png", 230 + i)
    for i in range(5):
        _write_png(root / "south" / "benign" / f"{i}.jpg", 30 + i, size=(40, 40), mode="RGB")
    (root / "north" / "benign" / "notes.txt").write_text("not an image, ignored")
    return root


def test_imagefolder_loads_hospitals_as_nodes(image_root):
    spec = {"dataset": "imagefolder", "root": str(image_root), "image_size": 16}
    data = load_federation(spec, ["north", "south"], seed=0)
    north, south = data["north"], data["south"]
    assert north.class_names == south.class_names == ["benign", "malignant"]
    assert north.input_shape == (1, 16, 16) and north.n_train + north.n_test == 10
    assert south.n_train + south.n_test == 5 and south.class_counts().tolist()[1] == 0
    x, y = torch.cat([north.x_train, north.x_test]), torch.cat([north.y_train, north.y_test])
    assert torch.all(x[y == 1].mean((1, 2, 3)) > 0.8) and torch.all(x[y == 0].mean((1, 2, 3)) < 0.2)
    rgb = load_federation({**spec, "channels": 3}, ["north", "south"], seed=0, only=["south"])["south"]
    assert rgb.input_shape == (3, 16, 16)
    assert not torch.allclose(rgb.x_train[:, 0], rgb.x_train[:, 2])  # colour kept
    assert torch.equal(load_federation(spec, ["north", "south"], seed=0, only=["south"])["south"].x_train,
                       south.x_train)


def test_imagefolder_relative_root_and_repartition(image_root):
    spec = {"dataset": "imagefolder", "root": image_root.name, "partition": "iid"}
    data = load_federation(spec, ["a", "b", "c"], seed=1, base_dir=str(image_root.parent))
    assert _total(data) == 15 and data["a"].input_shape == (1, 32, 32)


@pytest.mark.parametrize("damage, match", [
    (lambda r: r / "missing", "is not a directory"),
    (lambda r: [(r / "north" / "malignant" / "bad.png").write_bytes(b"not a png"), r][1], "cannot read image .*bad.png"),
    (lambda r: (r / "north" / "empty").mkdir() or r, "class folder .*empty.* has no images"),
    (lambda r: (r / "west").mkdir() or r, "hospital folder .*west.* has no class folders"),
])
def test_imagefolder_bad_input_messages(image_root, damage, match):
    root = damage(image_root)
    nodes = ["north", "south", "west"] if "west" in match else ["north", "south"]
    with pytest.raises(DataError, match=match):
        load_federation({"dataset": "imagefolder", "root": str(root)}, nodes, seed=0)


def test_imagefolder_missing_hospital_folder_lists_what_exists(image_root):
    with pytest.raises(DataError, match=r"no folder for hospital 'east' \(found: north, south\)"):
        load_federation({"dataset": "imagefolder", "root": str(image_root)}, ["north", "east"], seed=0)
    with pytest.raises(ConfigError, match=r"data\.root"):
        load_federation({"dataset": "imagefolder"}, ["north"], seed=0)


# ---------------------------------------------------------------- npz
def _medmnist(path, n_train=30, n_val=10, n_test=12, size=28, rgb=False, classes=3, seed=0, **override):
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if rgb else (size, size)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n is None:
            continue
        labels = np.arange(n) % classes
        arrays[f"{split}_images"] = (rng.integers(0, 60, (n, *shape)) + 60 * labels.reshape(-1, *[1] * len(shape))
                                     ).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return path


def test_npz_per_hospital_files_keep_their_splits(tmp_path):
    paths = {"north": str(_medmnist(tmp_path / "n.npz")), "south": str(_medmnist(tmp_path / "s.npz", n_val=None, seed=1))}
    spec = {"dataset": "npz", "paths": paths, "class_names": ["normal", "benign", "malignant"]}
    data = load_federation(spec, ["north", "south"], seed=0)
    north = data["north"]
    assert north.n_train == 40 and north.n_test == 12  # val joins train
    assert data["south"].n_train == 30
    assert north.input_shape == (1, 28, 28) and north.class_names == ["normal", "benign", "malignant"]
    assert north.x_train.dtype == torch.float32 and 0 <= float(north.x_train.min()) <= float(north.x_train.max()) <= 1
    means = [float(north.x_train[north.y_train == k].mean()) for k in range(3)]
    assert means == sorted(means)  # labels stayed attached to their images
    resized = load_federation({**spec, "image_size": 32, "channels": 3}, ["north", "south"], seed=0, only=["south"])
    assert resized["south"].input_shape == (3, 32, 32)
    assert load_federation({"dataset": "npz", "paths": paths}, ["north", "south"], seed=0)["north"].class_names == [
        "class 0", "class 1", "class 2"]


def test_npz_single_file_is_partitioned(tmp_path):
    path = _medmnist(tmp_path / "all.npz", n_train=120, n_val=20, n_test=40, rgb=True, classes=4)
    spec = {"dataset": "npz", "path": str(path), "partition": {"kind": "dirichlet", "alpha": 0.3, "min_samples": 15}}
    data = load_federation(spec, NODES, seed=0)
    assert _total(data) == 180 and all(d.n_train + d.n_test >= 15 for d in data.values())
    assert data["west"].input_shape == (3, 28, 28) and data["west"].num_classes == 4


def test_npz_pooled_paths_repartitioned(tmp_path):
    paths = {h: str(_medmnist(tmp_path / f"{h}.npz", seed=i)) for i, h in enumerate(["x", "y"])}
    data = load_federation({"dataset": "npz", "paths": paths, "partition": "iid"}, NODES, seed=0)
    assert _total(data) == 2 * 52


@pytest.mark.parametrize("write, match", [
    (lambda p: p, "not found"),
    (lambda p: _medmnist(p, test_labels=None), "missing key.*test_labels"),
    (lambda p: _medmnist(p, train_labels=np.zeros(29, np.uint8)), "train_images has 30 samples but train_labels has 29"),
    (lambda p: _medmnist(p, train_labels=np.zeros((30, 2), np.uint8)), r"train_labels must have shape \(N,\) or \(N, 1\)"),
    (lambda p: _medmnist(p, val_labels=None), "only one of val_images, val_labels"),
    (lambda p: _medmnist(p, test_images=np.zeros((12, 14, 14), np.uint8)), "test_images are"),
    (lambda p: [p.write_bytes(b"garbage"), p][1], "cannot read npz file"),
])
def test_npz_bad_input_messages(tmp_path, write, match):
    path = write(tmp_path / "bad.npz")
    with pytest.raises(DataError, match=match):
        load_federation({"dataset": "npz", "path": str(path)}, NODES, seed=0)


def test_npz_paths_problems(tmp_path):
    a, b = _medmnist(tmp_path / "a.npz"), _medmnist(tmp_path / "b.npz", size=14)
    with pytest.raises(DataError, match=r"no file for hospital\(s\) south \(has: north\)"):
        load_federation({"dataset": "npz", "paths": {"north": str(a)}}, ["north", "south"], seed=0)
    with pytest.raises(DataError, match="different shapes.*north: 1x28x28, south: 1x14x14.*data.image_size"):
        load_federation({"dataset": "npz", "paths": {"north": str(a), "south": str(b)}}, ["north", "south"], seed=0)
    fixed = load_federation({"dataset": "npz", "paths": {"north": str(a), "south": str(b)}, "image_size": 28},
                            ["north", "south"], seed=0, only=["south"])
    assert fixed["south"].input_shape == (1, 28, 28)
    with pytest.raises(ConfigError, match=r"data\.path.*exactly one of"):
        load_federation({"dataset": "npz", "path": str(a), "paths": {"north": str(a)}}, ["north"], seed=0)
    with pytest.raises(ConfigError, match=r"data\.class_names.*at least 3 names"):
        load_federation({"dataset": "npz", "path": str(a), "class_names": ["x"]}, ["north"], seed=0)
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(DataError, match="single .npy array"):
        load_federation({"dataset": "npz", "path": str(npy)}, ["north"], seed=0)


# ---------------------------------------------------------------- spec, describe, NodeData
def test_spec_errors_name_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError, match=r"data\.sampels_per_node.*allowed: dataset, samples_per_node"):
        load_federation({"sampels_per_node": 3}, NODES, seed=0)
    with pytest.raises(ConfigError, match=r"data\.dataset.*breast_cancer \| digits \| imagefolder \| npz \| synthmed \| .package.module:attr."):
        load_federation({"dataset": "mnist"}, NODES, seed=0)
    with pytest.raises(ConfigError, match=r"data\.partition\.alhpa.*kind, alpha"):
        load_federation({"dataset": "digits", "partition": {"alhpa": 1}}, NODES, seed=0)
    with pytest.raises(ConfigError, match=r"data\.partition.*synthmed does not use partition"):
        load_federation({"partition": "iid"}, NODES, seed=0)
    with pytest.raises(ConfigError, match=r"data\.partition\.kind.*iid, dirichlet, shards, natural"):
        load_federation({"dataset": "digits", "partition": "random"}, NODES, seed=0)
    with pytest.raises(DataError, match="distinct"):
        load_federation({}, ["a", "a"], seed=0)
    with pytest.raises(DataError, match="unknown node"):
        load_federation({}, ["a"], seed=0, only=["b"])
    assert DATA_SPEC_DEFAULTS["dataset"] == "synthmed" and DATA_SPEC_DEFAULTS["samples_per_node"] == 500
    # Defaults written out explicitly are accepted for any dataset (configs may carry them).
    load_federation({**DATA_SPEC_DEFAULTS, "dataset": "breast_cancer"}, NODES, seed=0, only=["north"])


def test_describe_lists_each_node():
    data = load_federation({"samples_per_node": 50, "num_classes": 3}, NODES, seed=0)
    text = describe(data)
    lines = text.splitlines()
    assert len(lines) == 1 + len(NODES)
    assert lines[1].split()[:3] == ["north", "40", "10"]
    many = load_federation({"samples_per_node": 50, "num_classes": 20}, NODES[:1], seed=0)
    assert "classes present" in describe(many)


def test_node_data_rejects_inconsistent_tensors():
    x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
    ok = NodeData("n", x, y, x, y, 2, (1, 8, 8), ["a", "b"])
    assert ok.n_train == 4 and ok.class_counts().tolist() == [2, 2]
    with pytest.raises(DataError, match="float32"):
        NodeData("n", x.double(), y, x, y, 2, (1, 8, 8), ["a", "b"])
    with pytest.raises(DataError, match="4 samples but y_test has 3"):
        NodeData("n", x, y, x, y[:3], 2, (1, 8, 8), ["a", "b"])
    with pytest.raises(DataError, match="outside"):
        NodeData("n", x, y + 1, x, y, 2, (1, 8, 8), ["a", "b"])
    with pytest.raises(DataError, match="input_shape"):
        NodeData("n", x, y, x, y, 2, (8, 8), ["a", "b"])
    with pytest.raises(DataError, match="class names"):
        NodeData("n", x, y, x, y, 2, (1, 8, 8), ["a"])
