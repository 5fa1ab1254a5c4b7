"""The round loop shared by every simulation backend.

validate -> start hosts -> connect (address book) -> for each round: every host runs its nodes'
round, returns metrics and new ledger rows -> (on evaluation rounds) federation accuracy, every
node's model on every node's test set -> write as we go -> summary.json.
"""
from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from fedsim import assembly, training
from fedsim.data import load_federation
from fedsim.outputs import RunWriter, new_run_dir
from fedsim.policies import policy_class
from fedsim.provenance import plugin_dirs, run_provenance
from fedsim.registry import activate
from fedsim.run_result import RunResult
from fedsim.run_summary import build_summary
from fedsim.runtime.backends import make_backend
from fedsim.runtime.progress import Progress
from fedsim.topology import load_topology

log = logging.getLogger("fedsim.driver")


def preflight(cfg: dict):
    """Fail fast in the driver, with the user's key names, before any worker starts.

    Also records where the run's user plugins come from (summary.json) and makes their folders
    explicit in the config (config.yaml then re-runs from any current directory)."""
    graph = load_topology(cfg["topology"], base_dir=cfg["_base_dir"])
    names = list(graph.nodes)
    activate(cfg)
    sample = load_federation(cfg["data"], names, cfg["seed"], only=names[:1], base_dir=cfg["_base_dir"])[names[0]]
    assembly.preflight(cfg, graph, sample)
    provenance = run_provenance(cfg)
    for d in plugin_dirs(provenance["plugins"]):
        if d not in cfg["plugins"]["paths"]:
            cfg["plugins"]["paths"].append(d)
    cfg["_provenance"] = provenance
    cfg["_model_input"] = {"input_shape": list(sample.input_shape), "num_classes": sample.num_classes}
    return graph, names


def run_experiment(cfg: dict, progress: bool | None = None) -> RunResult:
    t_preflight = time.perf_counter()
    graph, names = preflight(cfg)
    preflight_s = time.perf_counter() - t_preflight
    show = Progress(cfg["rounds"], cfg["output"]["progress"] if progress is None else progress)
    run_dir = new_run_dir(cfg)
    run_id = f"{cfg['name']}/{run_dir.name}"
    writer = RunWriter(run_dir, cfg, graph)
    t_start = time.perf_counter()
    completed, backend = 0, None
    try:
        backend = make_backend(cfg, names, run_id)
    except BaseException as exc:
        _write_failure(writer, cfg, run_id, exc, 0)
        writer.close()
        raise
    show.info(f"{cfg['name']}: policy {cfg['policy']['name']}, {len(names)} nodes, "
              f"{graph.number_of_edges()} links, {cfg['rounds']} rounds — {backend.description}, "
              f"transport {cfg['runtime']['transport']}")
    show.info(f"run directory: {run_dir}")
    try:
        addresses = backend.call("address")
        directory = {name: addresses[host] for name, host in backend.placement.items()}
        t_connect = time.perf_counter()
        backend.call("connect", directory)
        setup_s = time.perf_counter() - t_start
        startup = startup_phases(preflight_s, backend.phases, t_connect - t_start, time.perf_counter() - t_connect)
        show.info(startup_line(startup))
        final: dict[str, dict[str, float]] = defaultdict(dict)
        sent_rows, recv_rows, round_times = [], [], []
        total_bytes = 0
        for r in range(cfg["rounds"]):
            t0 = time.perf_counter()
            last = r == cfg["rounds"] - 1
            every = cfg["eval"]["every"]
            evaluate = last or (every > 0 and (r + 1) % every == 0)
            results = backend.call("run_round", r, evaluate)
            rows = [row for res in results for row in res["metrics"]]
            ledger = [row for res in results for row in res["ledger"]]
            round_s = time.perf_counter() - t0
            fed = None
            fe = cfg["eval"]["federation_every"]
            if policy_class(cfg["policy"]["name"]).federation_eval and fe > 0 and (last or (r + 1) % fe == 0):
                fed = federation_accuracy(backend, federation_sample(cfg, names))
                for node, (acc, bacc) in fed.items():
                    rows += [(r, node, "fed_acc", acc), (r, node, "fed_bacc", bacc)]
            writer.metrics(rows)
            writer.ledger(ledger)
            sent = [x for x in ledger if x.side == "sent"]
            sent_rows += sent
            recv_rows += [x for x in ledger if x.side == "recv"]
            round_bytes = sum(x.wire_bytes for x in sent)
            total_bytes += round_bytes
            round_times.append(round_s)
            per_node: dict[str, dict[str, float]] = defaultdict(dict)
            for _, node, metric, value in rows:
                per_node[node][metric] = value
                final[node][metric] = value
            completed = r + 1
            show.round(r, per_node, round_bytes, total_bytes, time.perf_counter() - t0,
                       {n: a for n, (a, _) in fed.items()} if fed else None)
        late = [row for part in backend.call("drain") for row in part]  # replies served after a host's last round
        writer.ledger(late)
        sent_rows += [x for x in late if x.side == "sent"]
        recv_rows += [x for x in late if x.side == "recv"]
        if cfg["output"]["save_models"]:
            _save_models(backend, run_dir)
        summary = build_summary(cfg, run_id, names, final, sent_rows, recv_rows, round_times, setup_s,
                                time.perf_counter() - t_start)
        summary["provenance"] = cfg["_provenance"]
        summary["model_input"] = cfg["_model_input"]
        summary["startup_s"] = startup
        summary["peak_rss_mb"] = {"driver": round(_rss_mb(), 1),
                                  "workers": [round(x, 1) for x in backend.call("peak_rss_mb")]}
        writer.summary(summary)
        show.info(f"done in {summary['wall_s']:.1f} s — mean test acc {summary['mean_final'].get('test_acc', float('nan')):.3f}, "
                  f"fed acc {summary['mean_final'].get('fed_acc', float('nan')):.3f}, "
                  f"{summary['bytes']['wire_total'] / 1e6:.2f} MB on the wire; results in {run_dir}")
        return RunResult(run_dir, summary)
    except BaseException as exc:
        _write_failure(writer, cfg, run_id, exc, completed)
        raise
    finally:
        writer.close()
        backend.close()


def startup_phases(preflight_s: float, phases: dict[str, float], backend_s: float, connect_s: float) -> dict:
    """Seconds per start-up phase (summary.json `startup_s`), and since the process started."""
    out = {"preflight": preflight_s, **phases, "workers": backend_s - phases.get("ray", 0.0), "policy_setup": connect_s}
    age = process_age()
    if age is not None:
        out["since_process_start"] = age
    return {k: round(v, 3) for k, v in out.items()}


def startup_line(startup: dict) -> str:
    names = {"preflight": "preflight", "ray": "Ray", "workers": "workers with data and models",
             "policy_setup": "policy setup"}
    parts = ", ".join(f"{label} {startup[k]:.1f} s" for k, label in names.items() if k in startup)
    since = startup.get("since_process_start")
    return (f"ready for round 1 {since:.1f} s after start: " if since is not None else "ready for round 1: ") + parts


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _save_models(backend, run_dir: Path) -> None:
    """models/<node>.pt: the state_dict each node is scored with (its policy's eval_model)."""
    import torch

    out = run_dir / "models"
    out.mkdir(exist_ok=True)
    for part in backend.call("model_states"):
        for name, state in part.items():
            torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, out / f"{name}.pt")


def _write_failure(writer: RunWriter, cfg: dict, run_id: str, exc: BaseException, completed: int) -> None:
    """Metrics and ledger rows of finished rounds are already on disk; record how far the run got and why."""
    writer.summary({"name": cfg["name"], "run_id": run_id, "status": "failed", "rounds": cfg["rounds"],
                    "completed_rounds": completed, "error": f"{type(exc).__name__}: {exc}"[:4000]})


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def federation_sample(cfg: dict, names: list[str]) -> list[str] | None:
    """The nodes whose test sets federation accuracy pools (eval.federation_sample, seeded; None = all)."""
    k = cfg["eval"]["federation_sample"]
    if k is None or k >= len(names):
        return None
    rng = np.random.default_rng([cfg["seed"], 0xFED])
    return sorted(rng.choice(names, size=k, replace=False).tolist())


def federation_accuracy(backend, sample: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Every node's model on every node's test set (or those of `sample`), pooled:
    {model owner: (accuracy, balanced accuracy)}."""
    tests = {}
    for part in backend.call("test_sets", sample):
        tests.update(part)
    tests = {name: tests[name] for name in sorted(tests)}  # one pooled order, whatever the hosts
    totals: dict[str, np.ndarray] = {}
    for part in backend.call("federation_confusions", tests):
        totals.update(part)
    return {o: (training.accuracy(cm), training.balanced_accuracy(cm)) for o, cm in sorted(totals.items())}
