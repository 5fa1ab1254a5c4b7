"""The sweep folder's index: index.json (read back by `compare`/`report`) and index.csv (for people).

    SWEEP_DIR/
      index.json   {"sweep": 1, "config", "sets", "grid", "seeds", "runs": [{key, dir, settings, seed,
                    status, error, wall_s, final}]}
      index.csv    one row per run: key, status, seed, the grid keys, final metrics, wall_s, error, dir
      runs/KEY/    a normal run directory per combination
      attempts/    earlier failed or interrupted attempts, moved aside before a rerun

Both files are rewritten (atomically) after every run, so a killed sweep still lists what finished.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from fedsim.errors import FedsimError

HEADLINE = ("fed_acc", "test_acc", "base_acc", "train_loss")


def is_sweep_dir(path: Path) -> bool:
    return (path / "index.json").is_file()


def read_index(path: Path) -> dict:
    f = path / "index.json"
    try:
        index = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise FedsimError(f"{f}: cannot read the sweep index: {exc}") from None
    if not isinstance(index, dict) or index.get("sweep") != 1 or not isinstance(index.get("runs"), list):
        raise FedsimError(f"{f} is not a fedsim sweep index (no 'sweep': 1 and 'runs' list)")
    return index


def write_index(path: Path, index: dict) -> None:
    _atomic(path / "index.json", json.dumps(index, indent=2, default=str))
    grid = list(index["grid"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["key", "status", "seed", *grid, *HEADLINE, "wall_s", "error", "dir"])
    for e in index["runs"]:
        final = e.get("final") or {}
        w.writerow([e["key"], e["status"], e["seed"], *(json.dumps(e["settings"][k]) if isinstance(
            e["settings"][k], (list, dict)) else e["settings"][k] for k in grid),
            *("" if final.get(m) is None else f"{final[m]:.6g}" for m in HEADLINE),
            "" if e.get("wall_s") is None else f"{e['wall_s']:.1f}", e.get("error") or "", e["dir"]])
    _atomic(path / "index.csv", buf.getvalue())


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
