"""Run one paper's comparison: every (method, seed) as a real fedsim run, several at a time.

Each run is an ordinary `run_experiment` (local runtime, one thread) in its own process, so `jobs`
runs use `jobs` cores; its run directory is kept under the reproduction's folder. What comes back
is small and JSON-friendly: the summary, every metric per round and node, and the ledger's bytes
per round by tag and kind. Results are appended to `runs.jsonl` as they finish, so a failure or an
interrupt loses nothing already computed; a failed run is recorded with its error.
"""
from __future__ import annotations

import csv
import json
import multiprocessing
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Job:
    method: str
    seed: int
    config: dict              # a raw experiment mapping (validated by load_config in the worker)
    cross_eval: bool = False  # also score every node's final model on every node's test set


@dataclass
class Record:
    method: str
    seed: int
    wall_s: float
    summary: dict = field(default_factory=dict)
    # metric -> round -> node -> value
    metrics: dict = field(default_factory=dict)
    # round -> {"tag:<tag>" | "kind:<KIND>": wire bytes sent}
    bytes: dict = field(default_factory=dict)
    error: str | None = None
    # model owner -> test node -> {"acc", "bacc"} of the final models (Job.cross_eval)
    cross: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def per_round(self, metric: str) -> dict[int, float]:
        """Mean over nodes of `metric`, by round."""
        rows = self.metrics.get(metric, {})
        return {int(r): sum(v.values()) / len(v) for r, v in sorted(rows.items(), key=lambda kv: int(kv[0])) if v}

    def final(self, metric: str) -> float:
        series = self.per_round(metric)
        return series[max(series)] if series else float("nan")

    def best(self, metric: str) -> float:
        series = self.per_round(metric)
        return max(series.values()) if series else float("nan")

    def node_values(self, metric: str, round_: int | None = None) -> dict[str, float]:
        rows = self.metrics.get(metric, {})
        if not rows:
            return {}
        key = str(max(int(r) for r in rows) if round_ is None else round_)
        return dict(rows.get(key, {}))

    def bytes_per_round(self, key: str = "total") -> float:
        rounds = self.summary.get("rounds") or max(1, len(self.bytes))
        return sum(v.get(key, 0) for v in self.bytes.values()) / rounds


def per_round_over_seeds(records: list[Record], metric: str) -> dict[int, list[float]]:
    """round -> [mean over nodes of `metric`, one value per record]: what a plot over rounds needs."""
    out: dict[int, list[float]] = {}
    for r in records:
        if r.ok:
            for rnd, v in r.per_round(metric).items():
                out.setdefault(rnd, []).append(v)
    return out


def cross_eval(run_dir: Path) -> dict:
    """Every node's final model (models/<node>.pt) on every node's test set, outside the federation."""
    from fedsim import training
    from fedsim.data import load_federation
    from fedsim.run_result import RunResult
    from fedsim.topology import load_topology

    rr = RunResult.open(run_dir)
    cfg = rr.config()
    names = list(load_topology(cfg["topology"], base_dir=cfg["_base_dir"]).nodes)
    data = load_federation(cfg["data"], names, cfg["seed"], base_dir=cfg["_base_dir"])
    out: dict = {}
    for owner in names:
        model = rr.load_model(owner).eval()
        out[owner] = {}
        for t in names:
            cm = training.confusion(model, data[t].x_test, data[t].y_test, data[t].num_classes)
            out[owner][t] = {"acc": training.accuracy(cm), "bacc": training.balanced_accuracy(cm)}
    return out


def _run_one(method: str, seed: int, raw: dict, with_cross: bool = False) -> dict:
    import torch

    torch.set_num_threads(1)
    from fedsim.config import load_config
    from fedsim.runtime.driver import run_experiment

    t0 = time.perf_counter()
    try:
        res = run_experiment(load_config(data=raw), progress=False)
    except Exception as exc:  # one failed run must not stop the comparison
        return {"method": method, "seed": seed, "wall_s": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]}
    metrics: dict = defaultdict(lambda: defaultdict(dict))
    with open(res.run_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            metrics[row["metric"]][row["round"]][row["node"]] = float(row["value"])
    sent: dict = defaultdict(lambda: defaultdict(int))
    with open(res.run_dir / "comm.csv") as f:
        for row in csv.DictReader(f):
            b, rnd = int(row["wire_bytes"]), row["round"]
            sent[rnd]["total"] += b
            sent[rnd][f"tag:{row['tag'].split('/')[0]}"] += b
            sent[rnd][f"kind:{row['kind']}"] += b
    return {"method": method, "seed": seed, "wall_s": time.perf_counter() - t0, "summary": res.summary,
            "metrics": json.loads(json.dumps(metrics)), "bytes": json.loads(json.dumps(sent)),
            "run_dir": str(res.run_dir), "cross": cross_eval(res.run_dir) if with_cross else None}


def run_jobs(jobs: list[Job], folder: Path, workers: int, say) -> list[Record]:
    """Run every job (at most `workers` at a time); returns the records in job order."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "runs.jsonl"
    for job in jobs:
        job.config.setdefault("output", {})
        job.config["output"].update(dir=str(folder / "runs"), progress=False)
    done: dict[tuple[str, int], Record] = {}
    t_start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")  # torch and forked threads do not mix
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        pending = {pool.submit(_run_one, j.method, j.seed, j.config, j.cross_eval): j for j in jobs}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    out = fut.result()
                except Exception as exc:  # the worker process itself died
                    out = {"method": job.method, "seed": job.seed, "wall_s": 0.0, "error": f"{type(exc).__name__}: {exc}"}
                with log.open("a") as f:
                    f.write(json.dumps(out) + "\n")
                rec = Record(out["method"], out["seed"], out["wall_s"], out.get("summary", {}), out.get("metrics", {}),
                             out.get("bytes", {}), out.get("error"), out.get("cross"))
                done[(job.method, job.seed)] = rec
                elapsed = time.perf_counter() - t_start
                left = elapsed / len(done) * (len(jobs) - len(done))  # completions already overlap
                status = f"failed: {rec.error}" if not rec.ok else f"{rec.wall_s:.0f} s"
                say(f"[{len(done)}/{len(jobs)}] {job.method} seed {job.seed}: {status}"
                    + (f" — about {left / 60:.0f} min left" if pending else ""))
    return [done[(j.method, j.seed)] for j in jobs]
