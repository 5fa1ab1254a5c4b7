"""`fedsim report`: the HTML report opened in real headless Chromium, partial runs, bad files, no torch."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedsim.cli import main
from fedsim.runtime.driver import run_experiment

FIGURES = {"accuracy", "loss", "bytes_per_round", "link_bytes", "accuracy_vs_bytes", "accuracy_vs_sim_time", "labels"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from fedsim.config import load_config

    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(data={"name": "rep", "rounds": 3, "topology": {"generator": "ring", "n": 4},
                            "data": {"dataset": "synthmed", "samples_per_node": 60, "num_classes": 3},
                            "train": {"batch_size": 16, "lr": 0.05}, "runtime": {"kind": "local"},
                            "output": {"dir": str(out), "progress": False}})
    return run_experiment(cfg).run_dir


def _check_page(page, n_images):
    assert len(page["images"]) == n_images
    assert all(complete and width > 0 for complete, width in page["images"]), page["images"]
    assert page["failed"] == []
    # self-contained: nothing but the file itself and its inline data: images was requested
    assert all(u.startswith("data:image/png;base64,") or u.startswith("file://") for u in page["requests"])
    assert sum(u.startswith("file://") for u in page["requests"]) == 1


def test_run_report_loads_every_image_in_chromium(run_dir, chromium_page, capsys):
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "status: completed" in out and "report.html (7 figures)" in out
    report = run_dir / "report"
    assert {p.stem for p in report.glob("*.png")} == FIGURES
    page = chromium_page(report / "report.html")
    assert page["title"] == "fedsim report: rep"
    _check_page(page, len(FIGURES))
    html = (report / "report.html").read_text()
    assert "completed, 3 rounds" in html and "simulated time" in html
    assert "node3" in html  # the final values table


def test_report_is_not_overwritten_without_force(run_dir, capsys):
    target = run_dir / "report" / "report.html"
    if not target.exists():
        assert main(["report", str(run_dir), "--no-html"]) == 0 and main(["report", str(run_dir)]) == 0
    before = target.read_bytes()
    assert main(["report", str(run_dir)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert target.read_bytes() == before  # (--force rewrites it: the torch-free test below uses it)


def test_truncated_csv_is_a_clear_error(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken, ignore=shutil.ignore_patterns("report"))
    text = (broken / "metrics.csv").read_text()
    lines = text.splitlines()
    (broken / "metrics.csv").write_text("\n".join(lines[:7]) + "\n" + lines[7][:6])  # killed mid-line
    assert main(["report", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken / 'metrics.csv'} line 8:" in err and "truncated" in err
    assert not (broken / "report").exists()
    (broken / "comm.csv").write_text("round,tag,kind,src,dst,payload_bytes,wire_bytes,frames,wall_s,link_s\n"
                                     "0,model,MODEL,node0,node1,12,x,1,0.1,0.2\n")
    (broken / "metrics.csv").write_text(text)
    assert main(["report", str(broken)]) == 2
    assert "comm.csv line 2: wire_bytes = 'x' is not an integer" in capsys.readouterr().err


def test_report_and_compare_do_not_import_torch_or_ray(run_dir):
    code = ("import sys, time; t = time.perf_counter(); from fedsim.cli import main; "
            f"assert main(['report', {str(run_dir)!r}, '--force']) == 0; "
            f"assert main(['compare', {str(run_dir)!r}]) == 0; "
            "bad = [m for m in ('torch', 'ray') if m in sys.modules]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_the_report_shows_its_rounds(tmp_path, chromium_page):
    cfg = tmp_path / "long.yaml"
    cfg.write_text("name: long\nrounds: 500\ntopology: {generator: ring, n: 3}\n"
                   "data: {dataset: synthmed, samples_per_node: 40, num_classes: 2}\nruntime: {kind: local}\n"
                   f"output: {{dir: {tmp_path / 'runs'}}}\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # a test runner started in the background may ignore SIGINT, and the child would inherit that
    proc = subprocess.Popen([sys.executable, "-m", "fedsim.cli", "run", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    metrics = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs").glob("long/*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > 1 + 3 * 8:  # two rounds on disk (18 rows each)
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "the run never got going"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    summary = json.loads((metrics.parent / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] is None
    assert 2 <= summary["completed_rounds"] < 500
    assert "run directory:" in out.splitlines()[0]
    assert main(["report", str(metrics.parent)]) == 0
    html = (metrics.parent / "report" / "report.html").read_text()
    assert f"interrupted after {summary['completed_rounds']} of 500 rounds" in html
    _check_page(chromium_page(metrics.parent / "report" / "report.html"), len(FIGURES))
