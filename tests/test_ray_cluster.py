"""`runtime.address` joins a running Ray cluster instead of starting one, and leaves it running."""
from __future__ import annotations

import json
import subprocess
import sys


def test_run_joins_existing_cluster(ray_session, tmp_path):
    address = ray_session.get_runtime_context().gcs_address
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: joined\nrounds: 2\ntopology: {generator: ring, n: 4}\n"
        "data: {dataset: synthmed, samples_per_node: 40}\nmodel: {name: mlp, hidden: [8]}\n"
        f"runtime: {{kind: ray, workers: 2, address: '{address}'}}\n")
    proc = subprocess.run([sys.executable, "-m", "fedsim.cli", "run", str(cfg), "--out", str(tmp_path), "-q"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = proc.stdout.strip().splitlines()[-1]
    summary = json.loads(open(f"{run_dir}/summary.json").read())
    assert summary["ledger_balanced"] and len(summary["peak_rss_mb"]["workers"]) == 2
    # the cluster we joined is still up and usable
    assert ray_session.is_initialized()
    assert ray_session.get(ray_session.put(41)) + 1 == 42
    # and the joined run's actors are gone (no leftovers holding CPUs)
    assert ray_session.available_resources().get("CPU", 0) >= 2 - 1e-6
