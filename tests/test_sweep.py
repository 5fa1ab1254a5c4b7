"""Sweeps and comparisons as a user runs them: the CLI on tiny local runs, results checked from the files."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from fedsim.cli import main

TINY = """\
name: tiny
rounds: 2
topology: {generator: ring, n: 3}
data: {dataset: npz, paths: {node0: node0.npz, node1: node1.npz, node2: node2.npz}}
model: {name: mlp}
train: {batch_size: 8, lr: 0.1}
output: {progress: false, save_models: false}
"""
# node2's export with int32 pixels passes validation (shapes and labels are read up front) and fails
# when the worker loads that hospital's images: a run-time failure, listed first so the sweep must go on
GRID = ["--grid", "policy.name=gossip,local", "--grid", "data.paths.node2=int32.npz,node2.npz"]


def write_npz(folder, name, seed, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    x = (rng.random((40, 8, 8)) * 120 + y[:, None, None] * 100).astype(dtype)
    np.savez(folder / name, train_images=x[:30], train_labels=y[:30], test_images=x[30:], test_labels=y[30:])


def tiny_config(folder):
    for i in range(3):
        write_npz(folder, f"node{i}.npz", i)
    write_npz(folder, "int32.npz", 2, np.int32)
    (folder / "tiny.yaml").write_text(TINY)
    return folder / "tiny.yaml"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    cfg = tiny_config(root)
    out = root / "sw"
    code = main(["sweep", str(cfg), *GRID, "--seeds", "0", "1", "--runtime", "local", "--out", str(out), "-q"])
    return cfg, out, code


def _index(out):
    return json.loads((out / "index.json").read_text())


def test_sweep_index_lists_every_run_and_records_failures(sweep):
    _, out, code = sweep
    assert code == 1  # some runs failed; the others ran
    runs = _index(out)["runs"]
    assert len(runs) == 8
    failed = [r for r in runs if r["status"] == "failed"]
    done = [r for r in runs if r["status"] == "completed"]
    assert len(failed) == 4 and all(r["settings"]["data.paths.node2"] == "int32.npz" for r in failed)
    assert all("int32.npz" in r["error"] and "must be uint8" in r["error"] for r in failed)
    assert len(done) == 4 and all((out / r["dir"] / "summary.json").is_file() for r in done)
    # the sweep went on after the first failure: the first combination failed, later ones completed
    assert runs[0]["status"] == "failed" and runs[-1]["status"] == "completed"
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert [r["key"] for r in rows] == [r["key"] for r in runs] and {r["status"] for r in rows} == {"failed", "completed"}


def test_reinvocation_skips_completed_and_retries_failed(sweep, capsys):
    cfg, out, _ = sweep
    before = {r["key"]: (out / r["dir"] / "metrics.csv").stat().st_mtime_ns
              for r in _index(out)["runs"] if r["status"] == "completed"}
    capsys.readouterr()
    main(["sweep", str(cfg), *GRID, "--seeds", "0", "1", "--runtime", "local", "--out", str(out), "-q"])
    text = capsys.readouterr().out
    assert "8 runs (4 already completed, 4 to run)" in text
    after = {r["key"]: (out / r["dir"] / "metrics.csv").stat().st_mtime_ns
             for r in _index(out)["runs"] if r["status"] == "completed"}
    assert after == before  # not rerun
    attempts = sorted(p.name for p in (out / "attempts").iterdir())
    assert len(attempts) == 4 and all(name.endswith(".1") for name in attempts)  # the failed ones, moved aside


def _final_mean(run_dir, metric):
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    last = max(int(r["round"]) for r in rows if r["metric"] == metric)
    vals = [float(r["value"]) for r in rows if r["metric"] == metric and int(r["round"]) == last]
    return sum(vals) / len(vals)


def test_compare_mean_std_equals_hand_computation(sweep, capsys):
    _, out, _ = sweep
    capsys.readouterr()
    assert main(["compare", str(out), "--format", "json", "--target", "0.5"]) == 0
    table = json.loads(capsys.readouterr().out.split("\nwritten to")[0])
    assert table["metric"] == "fed_acc" and table["group_by"] == ["policy.name", "data.paths.node2"]
    for policy in ("gossip", "local"):
        finals = [_final_mean(out / "runs" / f"policy.name={policy}+data.paths.node2=node2.npz+seed={s}", "fed_acc")
                  for s in (0, 1)]
        mean = sum(finals) / 2
        std = math.sqrt(sum((f - mean) ** 2 for f in finals) / 2)
        group = next(g for g in table["groups"]
                     if g["policy.name"] == policy and g["data.paths.node2"] == "node2.npz")
        assert group["final"]["mean"] == pytest.approx(mean, abs=1e-12)
        assert group["final"]["std"] == pytest.approx(std, abs=1e-12)
        assert group["runs"] == 2 and group["seeds"] == [0, 1] and group["status"] == "2 completed"
    failed = [g for g in table["groups"] if g["data.paths.node2"] == "int32.npz"]
    assert len(failed) == 2 and all(g["status"] == "2 failed" and g["final"] is None and g["mb_per_round"] is None
                                    for g in failed)
    assert (out / "compare.json").is_file()
    # written files are not overwritten without --force
    assert main(["compare", str(out), "--format", "json"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["compare", str(out), "--format", "json", "--force"]) == 0


def test_compare_markdown_and_by(sweep, capsys):
    _, out, _ = sweep
    runs = sorted((out / "runs").iterdir())
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--by", "policy.name", "--metric", "test_acc"]) == 0
    text = capsys.readouterr().out
    assert "| policy.name | runs |" in text and "final test_acc" in text and " ± " in text
    assert main(["compare", *map(str, runs), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("data.paths.node2,policy.name,runs,seeds,status,final fed_acc mean,final fed_acc std")


@pytest.mark.parametrize("grid, message", [
    (["--grid", "train.lrr=0.1,0.2"], "config key 'train.lrr'"),
    (["--grid", "train.lr=abc,0.1"], "config key 'train.lr': got 'abc'"),
    (["--grid", "train.lr="], "config key '--grid.train.lr'"),
    (["--grid", "policy.rewind_ratio=0.1,0.2"], "policy.rewind_ratio"),
    ([], "nothing to sweep"),
    (["--grid", "seed=1,2"], "config key '--grid.seed'"),
])
def test_bad_grids_exit_2_before_any_run(tmp_path, capsys, grid, message):
    cfg = tiny_config(tmp_path)
    code = main(["sweep", str(cfg), *grid, "--runtime", "local", "--out", str(tmp_path / "sw")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "sw").exists()


def test_sweep_section_in_yaml_and_changed_settings_need_force(tmp_path, capsys):
    tiny_config(tmp_path)
    cfg = tmp_path / "s.yaml"
    cfg.write_text(TINY.replace("rounds: 2", "rounds: 1")
                   + "sweep: {grid: {train.lr: [0.05]}, seeds: 2, dir: " + str(tmp_path / "sw") + "}\n")
    assert main(["sweep", str(cfg), "--runtime", "local", "-q"]) == 0
    assert [r["status"] for r in _index(tmp_path / "sw")["runs"]] == ["completed", "completed"]
    capsys.readouterr()
    assert main(["sweep", str(cfg), "--runtime", "local", "--set", "train.batch_size=4", "-q"]) == 2
    err = capsys.readouterr().err
    assert "train.batch_size: 8 there, 4 now" in err and "--force" in err
    assert main(["sweep", str(cfg), "--runtime", "local", "--set", "train.batch_size=4", "--force", "-q"]) == 0
    assert len(list((tmp_path / "sw" / "attempts").iterdir())) == 2


def test_compare_on_folders_that_are_not_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.txt").write_text("hi")
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "x.txt")]) == 2


@pytest.mark.slow
def test_sweep_runs_in_parallel_on_ray_when_the_cluster_fits(ray_session, tmp_path, capsys):
    """2 CPUs in the test cluster, 1 worker of 1 CPU per run: both seeds run at once, same numbers as local."""
    cfg = tiny_config(tmp_path)
    out = tmp_path / "sw"
    assert main(["sweep", str(cfg), "--seeds", "0", "1", "--set", "runtime.kind=ray", "--set", "runtime.workers=1",
                 "--out", str(out), "-q"]) == 0
    assert "running 2 runs at a time on the Ray cluster" in capsys.readouterr().out
    runs = _index(out)["runs"]
    assert [r["status"] for r in runs] == ["completed", "completed"]
    for r in runs:
        local = main(["run", str(cfg), "--runtime", "local", "--set", f"seed={r['seed']}", "--out", str(tmp_path / "l"), "-q"])
        assert local == 0
        local_dir = capsys.readouterr().out.strip().splitlines()[-1]
        assert (out / r["dir"] / "metrics.csv").read_text() == (tmp_path / local_dir / "metrics.csv").read_text()
