"""The round loop shared by every simulation backend.

validate -> start hosts -> connect (address book) -> for each round: every host runs its nodes'
round, returns metrics and new ledger rows -> (on evaluation rounds) federation accuracy, every
node's model on every node's test set -> write as we go -> summary.json.
"""
from __future__ import annotations

import logging
import threading
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
from fedsim.runtime.backends import init_ray, make_backend, shutdown_ray
from fedsim.runtime.progress import Progress, fmt
from fedsim.runtime.trackers import Trackers
from fedsim.simclock import SimClock
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


def run_experiment(cfg: dict, progress: bool | None = None, *, run_dir: Path | None = None,
                   stop: threading.Event | None = None) -> RunResult:
    """Run one experiment. `run_dir`: an exact (new or empty) folder instead of OUTPUT_DIR/NAME/STAMP;
    `stop`: when set, the run ends after the current round with status `interrupted` (sweeps use it)."""
    graph, names = preflight(cfg)
    has_fed = policy_class(cfg["policy"]["name"]).federation_eval
    show = Progress(cfg["rounds"], cfg["output"]["progress"] if progress is None else progress)
    run_dir = new_run_dir(cfg, run_dir)
    show.info(f"run directory: {run_dir}")
    run_id = f"{cfg['name']}/{run_dir.name}"
    writer = RunWriter(run_dir, cfg, graph)
    t_start = time.perf_counter()
    completed, backend, started_ray, trackers = 0, None, False, None
    clock = SimClock(graph)
    try:
        trackers = Trackers(cfg, run_dir)
        if cfg["runtime"]["kind"] == "ray":
            with show.phase("starting Ray"):
                started_ray = init_ray(cfg)
        with show.phase(f"starting workers: data and models of {len(names)} nodes"):
            backend = make_backend(cfg, names, run_id)
        show.info(f"{cfg['name']}: policy {cfg['policy']['name']}, {len(names)} nodes, "
                  f"{graph.number_of_edges()} links, {cfg['rounds']} rounds — {backend.description}, "
                  f"transport {cfg['runtime']['transport']}")
        writer.labels(backend.call("data_summary"))
        addresses = backend.call("address")
        directory = {name: addresses[host] for name, host in backend.placement.items()}
        with show.phase(f"policy {cfg['policy']['name']}: setting up the nodes") as update:
            _call_showing(backend, update, "connect", directory)
        setup_s = time.perf_counter() - t_start
        final: dict[str, dict[str, float]] = defaultdict(dict)
        sent_rows, recv_rows, round_times = [], [], []
        total_bytes = 0
        show.start_rounds()
        for r in range(cfg["rounds"]):
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("stopped")
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
            if has_fed and (last or (fe > 0 and (r + 1) % fe == 0)):
                fed = federation_accuracy(backend)
                for node, (acc, bacc) in fed.items():
                    rows += [(r, node, "fed_acc", acc), (r, node, "fed_bacc", bacc)]
            writer.metrics(rows)
            writer.ledger(ledger)
            sent = [x for x in ledger if x.side == "sent"]
            writer.timing(clock.round(r, {n: ev for res in results for n, ev in res["clock"].items()}, sent))
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
            trackers.round(r, rows, _by_kind(sent), total_bytes, round_s, clock.last, clock.total)
            show.round(r, per_node, round_bytes, total_bytes, time.perf_counter() - t0,
                       {n: a for n, (a, _) in fed.items()} if fed else None, has_fed, clock.last)
        show.close()
        late = [row for part in backend.call("drain") for row in part]  # replies served after a host's last round
        writer.ledger(late)
        sent_rows += [x for x in late if x.side == "sent"]
        recv_rows += [x for x in late if x.side == "recv"]
        if cfg["output"]["save_models"]:
            _save_models(backend, run_dir)
        summary = build_summary(cfg, run_id, names, final, sent_rows, recv_rows, round_times, setup_s,
                                time.perf_counter() - t_start)
        summary.update(clock.summary())
        summary["provenance"] = cfg["_provenance"]
        summary["model_input"] = cfg["_model_input"]
        summary["peak_rss_mb"] = {"driver": round(_rss_mb(), 1),
                                  "workers": [round(x, 1) for x in backend.call("peak_rss_mb")]}
        writer.summary(summary)
        trackers.close("completed")
        mean = summary["mean_final"]
        show.info(f"done in {summary['wall_s']:.1f} s — mean test acc {fmt(mean.get('test_acc'))}"
                  + (f", fed acc {fmt(mean.get('fed_acc'))}" if has_fed else "")
                  + f", {summary['bytes']['wire_total'] / 1e6:.2f} MB on the wire"
                  + (f", {summary['sim_time_s']:.1f} s simulated" if "sim_time_s" in summary else "")
                  + f"; results in {run_dir}")
        return RunResult(run_dir, summary)
    except BaseException as exc:
        show.close()
        status = _write_failure(writer, cfg, run_id, exc, completed, clock)
        if trackers is not None:
            trackers.close(status)
        raise
    finally:
        writer.close()
        if backend is not None:
            backend.close()
        if started_ray:
            shutdown_ray()


def _call_showing(backend, update, method: str, *args, every: float = 0.5):
    """Run a long backend call on a thread; meanwhile show what the nodes report (`Node.report`)."""
    out: dict = {}

    def target():
        try:
            out["value"] = backend.call(method, *args)
        except BaseException as exc:  # re-raised on the caller's thread
            out["error"] = exc

    worker = threading.Thread(target=target, name=f"driver-{method}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(every)
        if worker.is_alive():
            busy = {k: v for part in backend.call("progress") for k, v in part.items()}
            if busy:
                shown = [f"{n}: {busy[n]}" for n in sorted(busy)[:2]]
                update("; ".join(shown) + (f" (+{len(busy) - 2} more)" if len(busy) > 2 else ""))
    if "error" in out:
        raise out["error"]
    return out["value"]


def _by_kind(rows) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for x in rows:
        out[x.kind] += x.wire_bytes
    return dict(out)


def _save_models(backend, run_dir: Path) -> None:
    """models/<node>.pt: the state_dict each node is scored with (its policy's eval_model)."""
    import torch

    out = run_dir / "models"
    out.mkdir(exist_ok=True)
    for part in backend.call("model_states"):
        for name, state in part.items():
            torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, out / f"{name}.pt")


def _write_failure(writer: RunWriter, cfg: dict, run_id: str, exc: BaseException, completed: int,
                   clock: SimClock) -> str:
    """Metrics and ledger rows of finished rounds are already on disk; record how far the run got and why.
    Ctrl-C (or a sweep's stop) is `interrupted`, anything else `failed`."""
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    writer.summary({"name": cfg["name"], "run_id": run_id, "status": status, "policy": cfg["policy"]["name"],
                    "rounds": cfg["rounds"], "seed": cfg["seed"], "completed_rounds": completed,
                    "error": None if status == "interrupted" else f"{type(exc).__name__}: {exc}"[:4000],
                    **clock.summary()})
    return status


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def federation_accuracy(backend) -> dict[str, tuple[float, float]]:
    """Every node's model on every node's test set, pooled: {model owner: (accuracy, balanced accuracy)}."""
    states = {}
    for part in backend.call("model_states"):
        states.update(part)
    totals: dict[str, np.ndarray] = {}
    for part in backend.call("federation_confusions", states):
        for owner, cm in part.items():
            totals[owner] = totals[owner] + cm if owner in totals else cm
    return {o: (training.accuracy(cm), training.balanced_accuracy(cm)) for o, cm in sorted(totals.items())}
