"""One run view from a deployment: merge the per-node folders that `fedsim node` wrote.

A deployed federation leaves OUT/<node>/{node.json, metrics.csv, comm.csv, comm_received.csv}
on each site. Copied next to each other, `merge_nodes(OUT)` writes OUT/metrics.csv, comm.csv,
comm_received.csv and summary.json in the formats of a simulation run, so `fedsim report OUT`
and every tool reading run directories work on it. The ledger check compares each sender's own
log with its receiver's own log, per link: in a deployment they are written by different hosts.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from fedsim.errors import FedsimError
from fedsim.outputs import COMM_FIELDS, METRIC_FIELDS
from fedsim.run_summary import build_summary
from fedsim.wire.ledger import LedgerRow


def node_dirs(root: Path) -> list[Path]:
    """Node folders: node.json written at the end, or only metrics.csv/comm.csv of a killed node."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "node.json").is_file()
                  or ((p / "metrics.csv").is_file() and (p / "comm.csv").is_file() and not (p / "summary.json").exists()))


def is_node_run(root: Path) -> bool:
    return not (root / "summary.json").is_file() and any((p / "node.json").is_file() for p in node_dirs(root)) \
        or (root / "summary.json").is_file() and "deployment" in json.loads((root / "summary.json").read_text())


def _node_info(d: Path) -> dict | None:
    return json.loads((d / "node.json").read_text()) if (d / "node.json").is_file() else None


def _ledger(path: Path, side: str) -> list[LedgerRow]:
    if not path.is_file():
        return []
    return [LedgerRow(side=side, round=int(r["round"]), tag=r["tag"], kind=r["kind"], src=r["src"], dst=r["dst"],
                      payload_bytes=int(r["payload_bytes"]), wire_bytes=int(r["wire_bytes"]), frames=int(r["frames"]),
                      wall_s=float(r["wall_s"]), link_s=float(r["link_s"]))
            for r in csv.DictReader(path.open())]


def _write_csv(path: Path, fields: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(fields)
        w.writerows(rows)


def merge_nodes(root: Path) -> dict:
    """Write the merged run files into `root` and return the summary (also written as summary.json)."""
    dirs = node_dirs(root)
    if not dirs:
        raise FedsimError(f"{root} holds no node folders (subfolders with node.json written by `fedsim node`)")
    infos = {d.name: _node_info(d) for d in dirs}
    first = next((n for n in infos.values() if n), None)
    if first is None:
        raise FedsimError(f"{root}: no node finished writing node.json; nothing to merge")
    rounds_seen = {d.name: len({r["round"] for r in csv.DictReader((d / "metrics.csv").open())}) for d in dirs}
    nodes = {name: info or {**first, "node": name, "status": "no node.json: killed or crashed", "round_s": [],
                            "rounds_done": rounds_seen[name], "address": "?", "missing": {}, "absent_at_start": [],
                            "wall_s": 0.0}
             for name, info in infos.items()}
    runs = {n["run_id"] for n in nodes.values()}
    if len(runs) > 1:
        raise FedsimError(f"{root}: node folders come from different runs: {', '.join(sorted(runs))}")
    metrics, sent, recv = [], [], []
    final: dict[str, dict[str, float]] = {}
    for d in dirs:
        for r in csv.DictReader((d / "metrics.csv").open()):
            metrics.append((int(r["round"]), r["node"], r["metric"], float(r["value"])))
            final.setdefault(r["node"], {})[r["metric"]] = float(r["value"])
        sent += _ledger(d / "comm.csv", "sent")
        recv += _ledger(d / "comm_received.csv", "recv")
    _write_csv(root / "metrics.csv", METRIC_FIELDS, [list(m) for m in sorted(metrics)])
    for name, rows in (("comm.csv", sent), ("comm_received.csv", recv)):
        rows = sorted(rows, key=lambda r: (r.round, r.src, r.dst, r.tag))
        _write_csv(root / name, COMM_FIELDS, [[r.round, r.tag, r.kind, r.src, r.dst, r.payload_bytes, r.wire_bytes,
                                               r.frames, f"{r.wall_s:.6f}", f"{r.link_s:.6f}"] for r in rows])
    cfg = {"name": first["name"], "policy": {"name": first["policy"]}, "rounds": first["rounds"],
           "seed": _seed(dirs[0])}
    per_round = [max((n["round_s"][i] for n in nodes.values() if i < len(n["round_s"])), default=0.0)
                 for i in range(max(len(n["round_s"]) for n in nodes.values()))]
    summary = build_summary(cfg, first["run_id"], list(nodes), {n: final.get(n, {}) for n in nodes}, sent, recv,
                            per_round, 0.0, max(n["wall_s"] for n in nodes.values()))
    summary["deployment"] = {name: {k: n[k] for k in ("status", "rounds_done", "address", "tls", "missing",
                                                     "absent_at_start")} for name, n in nodes.items()}
    (root / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def _seed(node_dir: Path) -> int:
    import yaml
    cfg = node_dir / "config.yaml"
    return int((yaml.safe_load(cfg.read_text()) or {}).get("seed", 0)) if cfg.is_file() else 0


def format_deployment(summary: dict) -> str:
    lines = ["", "nodes (deployment):"]
    for name, d in summary.get("deployment", {}).items():
        missing = ", ".join(f"{p} in rounds {v}" for p, v in d["missing"].items()) or "none"
        lines.append(f"  {name:<18} {d['status']:<24} {d['rounds_done']:>3} rounds  "
                     f"{'mTLS' if d['tls'] else 'PLAINTEXT'}  missing: {missing}")
    for problem in summary.get("ledger_mismatches", []):
        lines.append(f"  ledger: {problem}")
    return "\n".join(lines)
