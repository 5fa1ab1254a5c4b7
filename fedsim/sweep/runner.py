"""Run a sweep: validate every combination first, skip what already finished, record every outcome.

Each combination is an ordinary run (`run_experiment`) in SWEEP_DIR/runs/KEY. Before anything
starts, every combination's config is validated and preflighted, so a wrong grid key or value
stops the sweep with exit 2 and nothing run. A run folder that exists already is

- `completed` with the same settings (runtime and output keys aside): skipped;
- `completed` with other settings: an error naming the first differing key, unless --force
  (then it is moved to attempts/ and run again);
- failed, interrupted or never finished: moved to attempts/KEY.N and run again.

A run that fails is recorded (status, error) and the sweep goes on; Ctrl-C stops the sweep after
recording the interrupted run(s), and running the same command again carries on.
Runs are executed one after another, or `parallel` at a time (threads of this driver sharing
one Ray instance) when the Ray cluster has the CPUs/GPUs for that many runs' workers.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedsim.config import dump_config, flatten, load_config
from fedsim.errors import ConfigError, FedsimError
from fedsim.sweep.grid import Combo, check_grid, check_section, check_seeds, combinations, parse_grid_args
from fedsim.sweep.index import read_index, write_index

log = logging.getLogger("fedsim.sweep")
IGNORED_IN_CHECK = ("runtime.", "output.", "_")  # a run is the same experiment on any runtime


@dataclass
class Plan:
    config: Path
    sets: list[str]
    grid: dict[str, list]
    seeds: list[int]
    dir: Path
    parallel: int | str
    combos: list[Combo]
    configs: dict[str, dict] = field(default_factory=dict)


def plan_sweep(config: str, grid_args: list[str], seeds: list[int] | None, sets: list[str],
               out: str | None = None, parallel: int | str | None = None) -> Plan:
    """Everything checked before a run starts: grid, seeds, every combination's config and preflight."""
    from fedsim.runtime.driver import preflight

    base = load_config(config, sets)
    section = check_section(base.get("_sweep"))
    grid = dict(check_grid(section.get("grid", {})))
    grid.update(check_grid(parse_grid_args(grid_args), "--grid"))
    if seeds:
        seed_list = check_seeds(list(seeds), "--seeds")
    elif "seeds" in section:
        seed_list = check_seeds(section["seeds"])
    else:
        seed_list = [base["seed"]]
    if not grid and len(seed_list) == 1:
        raise ConfigError("--grid", grid_args or None, "at least one --grid KEY=V1,V2 or two or more --seeds "
                          "(or a sweep: section with grid/seeds)", "nothing to sweep")
    folder = Path(out or section.get("dir") or Path(base["output"]["dir"]) / f"{base['name']}-sweep")
    par = parallel if parallel is not None else section.get("parallel", "auto")
    if par != "auto" and (isinstance(par, bool) or not isinstance(par, int) or par < 1):
        raise ConfigError("sweep.parallel", par, "auto or an integer >= 1")
    plan = Plan(Path(config), list(sets), grid, seed_list, folder, par, combinations(grid, seed_list))
    for combo in plan.combos:
        try:
            cfg = load_config(config, sets + combo.overrides())
            preflight(cfg)
        except FedsimError as exc:
            raise FedsimError(f"sweep run {combo.label}: {exc}") from None
        plan.configs[combo.key] = cfg
    return plan


# ---------------------------------------------------------------- the folder
def _differs(run_dir: Path, cfg: dict) -> str | None:
    """The first setting in which the finished run differs from `cfg`, or None."""
    try:
        saved = flatten(yaml.safe_load((run_dir / "config.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError):
        return "config.yaml unreadable"
    new = flatten(yaml.safe_load(dump_config(cfg)))
    for key in sorted(set(saved) | set(new)):
        if not key.startswith(IGNORED_IN_CHECK) and saved.get(key) != new.get(key):
            return f"{key}: {saved.get(key)!r} there, {new.get(key)!r} now"
    return None


def _status(run_dir: Path) -> str:
    import json
    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status", "incomplete")
    except (OSError, ValueError):
        return "incomplete"


def _move_aside(plan: Plan, key: str) -> Path:
    attempts = plan.dir / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    n = 1
    while (attempts / f"{key}.{n}").exists():
        n += 1
    target = attempts / f"{key}.{n}"
    shutil.move(str(plan.dir / "runs" / key), target)
    return target


def prepare(plan: Plan, force: bool) -> tuple[dict, list[Combo]]:
    """The index to write and the combinations still to run; refuses to overwrite without --force."""
    if plan.dir.exists() and any(plan.dir.iterdir()) and not (plan.dir / "index.json").is_file():
        raise FedsimError(f"{plan.dir} exists and is not a sweep folder (no index.json); choose another --out")
    old = {e["key"]: e for e in read_index(plan.dir)["runs"]} if (plan.dir / "index.json").is_file() else {}
    entries, todo, conflicts = [], [], []
    for combo in plan.combos:
        run_dir = plan.dir / "runs" / combo.key
        entry = {"key": combo.key, "dir": f"runs/{combo.key}", "settings": combo.settings, "seed": combo.seed,
                 "status": "pending", "error": None, "wall_s": None, "final": None}
        if run_dir.exists():
            status = _status(run_dir)
            diff = _differs(run_dir, plan.configs[combo.key]) if status == "completed" else None
            if status == "completed" and diff is None:
                entry.update({k: v for k, v in old.get(combo.key, {}).items() if k in ("wall_s", "final")},
                             status="completed")
                entries.append(entry)
                continue
            if diff is not None and not force:
                conflicts.append(f"{run_dir} ({diff})")
        entries.append(entry)
        todo.append(combo)
    if conflicts:
        raise FedsimError(f"{len(conflicts)} finished run(s) in {plan.dir} have other settings than this sweep: "
                          f"{conflicts[0]}{' ...' if len(conflicts) > 1 else ''}; pass --force to rerun them "
                          "(the old folders move to attempts/) or choose another --out")
    index = {"sweep": 1, "config": str(plan.config.resolve()), "sets": plan.sets, "grid": plan.grid,
             "seeds": plan.seeds, "runs": entries}
    return index, todo


# ---------------------------------------------------------------- running
def run_sweep(plan: Plan, *, force: bool = False, progress: bool = True, echo=print) -> dict:
    """Run what is left of the plan; returns the final index."""
    from fedsim.runtime.driver import run_experiment

    index, todo = prepare(plan, force)
    plan.dir.mkdir(parents=True, exist_ok=True)
    (plan.dir / "runs").mkdir(exist_ok=True)
    write_index(plan.dir, index)
    by_key = {e["key"]: e for e in index["runs"]}
    done = len(plan.combos) - len(todo)
    echo(f"sweep {plan.dir}: {len(plan.combos)} runs ({done} already completed, {len(todo)} to run)")
    if not todo:
        return index
    lock = threading.Lock()
    stop = threading.Event()

    def one(combo: Combo, show: bool) -> None:
        entry = by_key[combo.key]
        run_dir = plan.dir / "runs" / combo.key
        if run_dir.exists():
            moved = _move_aside(plan, combo.key)
            echo(f"  {combo.key}: earlier attempt moved to {moved}")
        with lock:
            entry["status"] = "running"
            write_index(plan.dir, index)
        t0 = time.perf_counter()
        try:
            result = run_experiment(plan.configs[combo.key], progress=show, run_dir=run_dir, stop=stop)
            entry.update(status="completed", final=_headline(result.summary), error=None)
        except KeyboardInterrupt:
            entry.update(status="interrupted", error="interrupted")
            raise
        except Exception as exc:  # recorded; the sweep goes on
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            log.debug("run %s failed", combo.key, exc_info=True)
        finally:
            entry["wall_s"] = round(time.perf_counter() - t0, 2)
            with lock:
                write_index(plan.dir, index)
        echo(f"  [{entry['status']}] {combo.label} in {entry['wall_s']:.1f} s"
             + (f": {entry['error']}" if entry["status"] == "failed" else ""))

    with _shared_ray(plan):
        slots = _slots(plan)
        if slots == 1:
            for i, combo in enumerate(todo, 1):
                echo(f"[{done + i}/{len(plan.combos)}] {combo.label}")
                one(combo, progress)
        else:
            echo(f"running {slots} runs at a time on the Ray cluster")
            pool = cf.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="sweep")
            futures = [pool.submit(one, c, False) for c in todo]
            try:
                for fut in cf.as_completed(futures):
                    fut.result()
            except KeyboardInterrupt:
                stop.set()  # running runs stop after their current round and record `interrupted`
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    counts = {s: sum(e["status"] == s for e in index["runs"]) for s in ("completed", "failed")}
    echo(f"sweep done: {counts['completed']} completed, {counts['failed']} failed — index in {plan.dir / 'index.csv'}")
    return index


def _headline(summary: dict) -> dict:
    mean = summary.get("mean_final", {})
    return {k: mean[k] for k in ("fed_acc", "test_acc", "base_acc", "train_loss") if k in mean}


class _shared_ray:
    """One Ray instance for the whole sweep (each run would otherwise start and stop its own)."""

    def __init__(self, plan: Plan) -> None:
        self.cfg = next((c for c in plan.configs.values() if c["runtime"]["kind"] == "ray"), None)
        self.started = False

    def __enter__(self):
        if self.cfg is not None:
            from fedsim.runtime.backends import init_ray
            self.started = init_ray(self.cfg)
        return self

    def __exit__(self, *exc):
        if self.started:
            from fedsim.runtime.backends import shutdown_ray
            shutdown_ray()


def _slots(plan: Plan) -> int:
    """How many runs fit at once: `parallel`, or on Ray what the cluster's CPUs/GPUs allow."""
    cfgs = list(plan.configs.values())
    if plan.parallel != "auto":
        return int(plan.parallel)
    if any(c["runtime"]["kind"] != "ray" or c["runtime"]["workers"] == "auto" for c in cfgs):
        return 1  # local runs share this process's cores; `workers: auto` takes the whole cluster
    import ray
    have = ray.cluster_resources()
    cpus = max(c["runtime"]["workers"] * c["runtime"]["cpus_per_worker"] for c in cfgs)
    gpus = max(c["runtime"]["workers"] * c["runtime"]["gpus_per_worker"] for c in cfgs)
    fit = int(have.get("CPU", 1) // cpus)
    if gpus > 0:
        fit = min(fit, int(have.get("GPU", 0) // gpus))
    return max(1, min(fit, len(cfgs)))
