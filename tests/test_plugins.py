"""User code in fedsim: a policy, a model, a dataset, a loss and an optimizer of the user's own, by
import path ('package.module:attr') and by entry point, in every runtime, with the bad cases named."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

import fedsim
from fedsim.errors import ConfigError

POLICY = '''
import numpy as np
import torch
import fedsim


class PushOne(fedsim.Policy):
    """Push the model to one seeded random neighbour; average what arrives."""
    options = {"fanout": fedsim.Option.integer(1, "neighbours per round", min=1)}

    def target(self, node, v, r):
        peers = sorted(node.graph.neighbors(v))
        rng = np.random.default_rng([node.run_seed, r, list(node.graph.nodes).index(v)])
        return peers[int(rng.integers(len(peers)))]

    def run_round(self, node, r):
        loss = node.train()
        node.send(self.target(node, node.name, r), node.model_payload(fedsim.Kind.MODEL), "push")
        got = node.recv("push", expect=[u for u in node.neighbors if self.target(node, u, r) == node.name])
        states = [node.model.state_dict()] + [m.payload.tensors for m in got]
        node.load_model({k: torch.stack([torch.as_tensor(s[k]).float() for s in states]).mean(0)
                         if v.is_floating_point() else v for k, v in states[0].items()})
        return {"train_loss": loss, "heard": float(len(got))}


class Broken(fedsim.Policy):
    def __init__(self, options=None):
        super().__init__(options)
        raise ValueError("licence server unreachable")


class NotAPolicy:
    pass
'''

MODEL = '''
from torch import nn


class TwoLayer(nn.Module):
    """A user model: fedsim calls TwoLayer(input_shape, num_classes, **options)."""
    options = {"hidden": 16}

    def __init__(self, input_shape, num_classes, hidden=16):
        super().__init__()
        size = 1
        for d in input_shape:
            size *= d
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


def wrong_width(input_shape, num_classes):
    return TwoLayer(input_shape, num_classes + 1)


def not_a_module(input_shape, num_classes):
    return "a string"


def smooth_ce(logits, target):
    import torch.nn.functional as F
    return F.cross_entropy(logits, target, label_smoothing=0.1)
'''

DATA = '''
import numpy as np
import fedsim


def tables(request):
    out = {}
    for name in request.nodes:
        rng = np.random.default_rng([request.seed, request.index(name)])
        y = rng.integers(0, 2, 60)
        x = rng.normal(0, 1, (60, 5)) + y[:, None]
        out[name] = fedsim.NodeData.from_arrays(name, x[:48], y[:48], x[48:], y[48:], num_classes=2)
    return out


def ragged(request):
    return {n: fedsim.NodeData.from_arrays(n, np.zeros((10, 5)), np.zeros(9), np.zeros((2, 5)), np.zeros(2),
                                           num_classes=2) for n in request.nodes}
'''


@pytest.fixture
def user_package(tmp_path):
    """A user's package in a folder outside the repository, and a config next to it."""
    pkg = tmp_path / "lab" / "myfl"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "policies.py").write_text(POLICY)
    (pkg / "nets.py").write_text(MODEL)
    (pkg / "datasets.py").write_text(DATA)
    cfg = {
        "name": "userpkg", "seed": 3, "rounds": 3,
        "topology": {"generator": "ring", "n": 4},
        "data": {"dataset": "synthmed", "samples_per_node": 60, "num_classes": 2, "image_size": 16},
        "model": {"name": "myfl.nets:TwoLayer", "hidden": 8},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.05, "loss": "myfl.nets:smooth_ce",
                  "optimizer": "torch.optim:RMSprop", "optimizer_options": {"alpha": 0.9}},
        "policy": {"name": "myfl.policies:PushOne"},
        "runtime": {"kind": "local", "recv_timeout_s": 20.0},
        "output": {"dir": str(tmp_path / "runs"), "progress": False},
    }
    path = tmp_path / "lab" / "experiment.yaml"
    path.write_text(yaml.safe_dump(cfg))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return path, elsewhere


def _metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_user_package_runs_locally_and_its_config_yaml_reruns_identically(user_package, monkeypatch):
    path, elsewhere = user_package
    monkeypatch.chdir(elsewhere)  # not the package's folder: the config's folder is importable
    first = fedsim.run(path)
    assert first.status == "completed"
    assert {r["metric"] for r in first.metrics()} >= {"train_loss", "heard", "test_acc", "fed_acc"}
    prov = first.summary["provenance"]
    assert prov["fedsim_version"] == fedsim.__version__
    policy = prov["plugins"]["policy.name"]
    assert policy["file"] == str(path.parent / "myfl" / "policies.py")
    import hashlib
    assert policy["sha256"] == hashlib.sha256((path.parent / "myfl" / "policies.py").read_bytes()).hexdigest()
    assert set(prov["plugins"]) == {"policy.name", "model.name", "train.loss", "train.optimizer"}
    saved = yaml.safe_load((first.run_dir / "config.yaml").read_text())
    assert saved["policy"]["name"] == "myfl.policies:PushOne" and saved["model"]["name"] == "myfl.nets:TwoLayer"
    assert str(path.parent) in saved["plugins"]["paths"]

    monkeypatch.chdir(first.run_dir.parent.parent)  # somewhere else again
    sys.modules.pop("myfl", None), sys.modules.pop("myfl.policies", None), sys.modules.pop("myfl.nets", None)
    again = fedsim.run(first.run_dir / "config.yaml")
    assert _metrics(again.run_dir) == _metrics(first.run_dir)
    model = again.load_model("node0")
    assert type(model).__name__ == "TwoLayer"


def test_user_package_under_ray_with_two_workers_matches_local(user_package, tmp_path):
    """`fedsim run` starts its own Ray: the user's package travels to the workers as py_modules
    (the workers do not get the config's folder on their path), and the numbers equal a local run."""
    path, elsewhere = user_package
    local = fedsim.run(path)
    out = tmp_path / "rayruns"
    proc = subprocess.run([sys.executable, "-m", "fedsim.cli", "run", str(path), "-q", "--out", str(out),
                           "--set", "runtime.kind=ray", "--set", "runtime.workers=2"],
                          capture_output=True, text=True, cwd=elsewhere, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert _metrics(run_dir) == _metrics(local.run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["ledger_balanced"]


def test_user_dataset_with_tabular_features_and_mlp(user_package):
    path, _ = user_package
    result = fedsim.run(path, overrides=["data={dataset: 'myfl.datasets:tables'}", "model={name: mlp, hidden: [8]}",
                                         "policy.name=gossip", "train.loss=cross_entropy", "train.optimizer=sgd",
                                         "train.optimizer_options={}"])
    assert result.summary["model_input"] == {"input_shape": [5], "num_classes": 2}
    assert result.summary["mean_final"]["test_acc"] > 0.6


def test_tabular_npz_runs_with_mlp(small_config, tmp_path):
    rng = np.random.default_rng(0)
    paths = {}
    for i in range(4):
        y = rng.integers(0, 3, 50)
        x = rng.normal(0, 1, (50, 7)).astype(np.float32) + 2.0 * y[:, None]
        paths[f"node{i}"] = tmp_path / f"h{i}.npz"
        np.savez(paths[f"node{i}"], train_images=x[:40], train_labels=y[:40], test_images=x[40:], test_labels=y[40:])
    from fedsim.runtime.driver import run_experiment
    result = run_experiment(small_config(rounds=4, train__epochs=5, data={"dataset": "npz", "paths": {k: str(v) for k, v in paths.items()}},
                                         model={"name": "mlp", "hidden": [16]}))
    assert result.summary["model_input"]["input_shape"] == [7]
    assert result.summary["mean_final"]["test_acc"] > 0.5
    with pytest.raises(Exception, match="tabular features"):
        run_experiment(small_config(data={"dataset": "npz", "paths": {k: str(v) for k, v in paths.items()},
                                          "image_size": 8}, model={"name": "mlp"}))


def _write_entry_point(site: Path, pkg_dir: Path) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info folder on sys.path."""
    dist = site / "myfl_plugins-1.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myfl-plugins\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [fedsim.policies]
        push_one = myfl.policies:PushOne
        [fedsim.models]
        two_layer = myfl.nets:TwoLayer
    """))


def test_entry_point_plugins_resolve_by_short_name(user_package, tmp_path, monkeypatch, small_config, capsys):
    path, _ = user_package
    site = tmp_path / "site"
    _write_entry_point(site, path.parent / "myfl")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(path.parent))  # where the installed package's code lives
    from fedsim.cli import main
    from fedsim.runtime.driver import run_experiment

    assert main(["options"]) == 0
    out = capsys.readouterr().out
    assert "push_one" in out and "(installed: myfl.policies:PushOne)" in out
    result = run_experiment(small_config(policy={"name": "push_one"}, model={"name": "two_layer", "hidden": 4}))
    plugins = result.summary["provenance"]["plugins"]
    assert plugins["policy.name"]["source"] == "entry point (distribution myfl-plugins 1.2)"
    assert plugins["model.name"]["module"] == "myfl.nets"


@pytest.mark.parametrize("override,fragment", [
    ("policy.name=myfl.nope:PushOne", "policy.name.*No module named 'myfl.nope'"),
    ("policy.name=myfl.policies:Missing", "policy.name.*has no attribute 'Missing'"),
    ("policy.name=myfl.policies:NotAPolicy", "policy.name.*allowed: a fedsim.Policy subclass"),
    ("policy.name=myfl.policies:Broken", "policy.name.*licence server unreachable"),
    ("policy.fanout=0", "policy.fanout.*an integer >= 1"),
    ("policy.fan_out=2", "policy.fan_out.*options of policy 'PushOne': fanout"),
    ("model={name: 'myfl.nets:wrong_width'}", "model.name.*num_classes=2.*returned \\(2, 3\\)"),
    ("model={name: 'myfl.nets:not_a_module'}", "model.name.*returning an nn.Module.*str"),
    ("model.depth=3", "model.depth.*options of model myfl.nets:TwoLayer: hidden"),
    ("model={name: 'myfl.nets:wrong_width', hidden: 3}", "model.hidden.*options of model myfl.nets:wrong_width: no options"),
    ("data={dataset: 'myfl.datasets:ragged'}", "data.dataset.*x_train has 10 samples but y_train has 9"),
    ("train.optimizer=myfl.nets:TwoLayer", "train.optimizer"),
    ("train.optimizer=rmsprop", "train.optimizer.*adam \\| adamw \\| sgd"),
    ("train.optimizer_options={betas: 3}", "train.optimizer.*optimizer_options"),
    ("train.loss=myfl.nets:not_a_module", "train.loss.*loss\\(logits, labels\\)"),
])
def test_bad_plugins_are_config_errors_before_any_worker(user_package, override, fragment):
    path, _ = user_package
    with pytest.raises(ConfigError, match=fragment):
        fedsim.run(path, overrides=[override, "runtime.kind=ray"])  # ray never starts: preflight refuses


def test_bad_plugin_on_the_command_line_is_one_line_exit_2(user_package):
    path, elsewhere = user_package
    proc = subprocess.run([sys.executable, "-m", "fedsim.cli", "run", str(path), "--set",
                           "model={name: 'myfl.nets:wrong_width'}"], capture_output=True, text=True, cwd=elsewhere)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: config key 'model.name'") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_public_api_surface():
    import fedsim as f
    for name in ("run", "load_config", "RunResult", "Policy", "Node", "Received", "Payload", "Kind", "NodeData",
                 "DataRequest", "Option", "ConfigError", "__version__"):
        assert hasattr(f, name), name
    assert (Path(f.__file__).parent / "py.typed").is_file()
    proc = subprocess.run([sys.executable, "-m", "fedsim.cli", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"fedsim {f.__version__}"


def test_import_fedsim_stays_light():
    code = "import sys, fedsim; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
