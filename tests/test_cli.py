"""The command line as a user meets it: help, runs, clean errors with exit code 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fedsim.cli import main


def test_help_explains_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--set KEY=VALUE" in out and "comm.csv" in out and "policies:" in out


def test_bad_config_value_exits_2_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("rounds: -3\n")
    proc = subprocess.run([sys.executable, "-m", "fedsim.cli", "run", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "error: config key 'rounds': got -3; allowed: an integer >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_topology_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("topology: no-such-graph\nruntime: {kind: local}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path)]) == 2
    assert "no-such-graph" in capsys.readouterr().err


def test_run_and_report(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: cli\nrounds: 1\ntopology: {generator: ring, n: 3}\n"
        "data: {dataset: synthmed, samples_per_node: 40}\nruntime: {kind: local}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "runs"), "-q"]) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["report", run_dir]) == 0
    out = capsys.readouterr().out
    assert "node0" in out and "ledger balanced: True" in out and "MODEL" in out


def test_topology_show_writes_png(tmp_path, capsys):
    png = tmp_path / "eu.png"
    assert main(["topology", "show", "hospitals-eu", "--png", str(png)]) == 0
    assert png.stat().st_size > 1000
    assert "diameter" in capsys.readouterr().out


def test_run_help_lists_every_registered_policy(capsys):
    from fedsim.policies import policy_names

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in policy_names())
