"""The run directory: config, topology, metrics and ledger written as the run goes (nothing lost on failure)."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import networkx as nx

from fedsim.config import dump_config
from fedsim.topology import write_graphml
from fedsim.wire.ledger import LedgerRow

METRIC_FIELDS = ["round", "node", "metric", "value"]
COMM_FIELDS = ["round", "tag", "kind", "src", "dst", "payload_bytes", "wire_bytes", "frames", "wall_s", "link_s"]


def new_run_dir(cfg: dict) -> Path:
    stamp = cfg["output"]["stamp"] or time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg["output"]["dir"])
    if not base.is_absolute():
        base = Path.cwd() / base
    path = base / cfg["name"] / str(stamp)
    suffix = 1
    while path.exists():
        path = base / cfg["name"] / f"{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path


class RunWriter:
    def __init__(self, run_dir: Path, cfg: dict, graph: nx.Graph) -> None:
        self.dir = run_dir
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        write_graphml(graph, run_dir / "topology.graphml")
        self._metrics = self._open("metrics.csv", METRIC_FIELDS)
        self._sent = self._open("comm.csv", COMM_FIELDS)
        self._recv = self._open("comm_received.csv", COMM_FIELDS)

    def _open(self, name: str, fields: list[str]):
        f = open(self.dir / name, "w", newline="")
        w = csv.writer(f)
        w.writerow(fields)
        return f, w

    def metrics(self, rows: list[tuple]) -> None:
        f, w = self._metrics
        w.writerows(sorted(rows, key=lambda r: (r[0], r[1], r[2])))
        f.flush()

    def ledger(self, rows: list[LedgerRow]) -> None:
        for side, (f, w) in (("sent", self._sent), ("recv", self._recv)):
            chosen = sorted((r for r in rows if r.side == side), key=lambda r: (r.round, r.src, r.dst, r.tag, r.message_id))
            w.writerows([r.round, r.tag, r.kind, r.src, r.dst, r.payload_bytes, r.wire_bytes, r.frames,
                         f"{r.wall_s:.6f}", f"{r.link_s:.6f}"] for r in chosen)
            f.flush()

    def summary(self, summary: dict) -> None:
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False, default=float))

    def close(self) -> None:
        for f, _ in (self._metrics, self._sent, self._recv):
            f.close()
