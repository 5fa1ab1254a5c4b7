"""`fedsim reproduce PAPER`: rerun one paper's comparison like for like and write its tables.

Each paper module (fedrewind, feder, zerodfl) says which runs make its comparison (`jobs`) and how
their numbers become tables, claims and plots (`analyse`). This module runs them (several at a
time, each a real fedsim run) and writes, into one folder:

    results.md     the settings, the command, the machine load, the tables (mean ± std over seeds,
                   each seed's value, bytes per round) and every claim with a verdict computed
                   from the numbers
    accuracy.png   accuracy over rounds, one line per method (mean over seeds, min–max band)
    results.json   every run's figures;  runs.jsonl  the same, appended as runs finish
    runs/          the run directories (metrics.csv, comm.csv, summary.json, ...)
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

from fedsim.errors import ConfigError

PAPERS = ("fedrewind", "feder", "zerodfl")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def reproduce(paper: str, seeds: list[int], quick: bool = False, gpu: bool = False, out: str | Path = "runs",
              jobs: int | None = None, say=print) -> Path:
    """Run `paper`'s comparison; returns the folder holding results.md."""
    if paper not in PAPERS:
        raise ConfigError("paper", paper, " | ".join(PAPERS))
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError("--seeds", seeds, "one or more non-negative integers")
    mod = importlib.import_module(f"fedsim.reproduce.{paper}")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(out) / f"reproduce-{paper}{'-quick' if quick else ''}" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    workers = jobs or max(1, os.cpu_count() or 1)
    todo, settings = mod.jobs(seeds, quick=quick, gpu=gpu)
    load_before = _load()
    say(f"reproduce {paper}{' (quick)' if quick else ''}: {len(todo)} runs ({len(seeds)} seeds), {workers} at a time; "
        f"results in {folder}")
    t0 = time.perf_counter()
    from fedsim.reproduce.runner import run_jobs
    records = run_jobs(todo, folder, workers, say)
    extra = mod.extra(seeds, quick=quick, gpu=gpu, say=say) if hasattr(mod, "extra") else {}
    wall = time.perf_counter() - t0
    body = mod.analyse(records, settings, folder, extra)
    command = "fedsim reproduce " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["reproduce"] \
        else f"fedsim reproduce {paper} --seeds {' '.join(map(str, seeds))}{' --quick' if quick else ''}"
    header = [f"# {settings['title']}", "", f"`{command}` — {len(todo)} runs, {wall / 60:.1f} min wall time on "
              f"{os.cpu_count()} CPU cores, {workers} runs at a time (load average before {load_before}, after {_load()}); "
              f"{_dt.datetime.now():%Y-%m-%d %H:%M}.", "", settings["setting"], ""]
    (folder / "results.md").write_text("\n".join(header) + body + "\n")
    (folder / "results.json").write_text(json.dumps({
        "paper": paper, "seeds": seeds, "quick": quick, "gpu": gpu, "wall_s": wall, "settings": settings,
        "extra": extra, "runs": [{"method": r.method, "seed": r.seed, "wall_s": r.wall_s, "error": r.error,
                                  "summary": r.summary} for r in records]}, indent=1, default=str))
    say(f"done in {wall / 60:.1f} min: {folder / 'results.md'}")
    return folder
