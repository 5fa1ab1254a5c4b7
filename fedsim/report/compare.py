"""Compare runs: group them by the settings that differ, mean ± std over seeds, as md / csv / json.

Statistics of a group are over its completed runs (a failed or interrupted run ended early and
would drag its final accuracy down); a group with no completed run uses whatever rounds its runs
finished, and its `status` column says so. The standard deviation is the population one
(numpy's default, as in the benchmark tables), 0 for a single run.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedsim.config import flatten
from fedsim.report.rundata import ReportError, Run, is_run_dir, load_run

IGNORED_PREFIXES = ("seed", "name", "output.", "_")


@dataclass
class Group:
    settings: dict[str, Any]
    runs: list[Run]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_show(v)}" for k, v in self.settings.items()) or "all runs"

    @property
    def counted(self) -> list[Run]:
        done = [r for r in self.runs if r.status == "completed"]
        return done or self.runs


def _show(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def varied_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between the runs, seed/name/output excluded."""
    flat = [flatten(r.config) for r in runs]
    keys = sorted({k for f in flat for k in f})
    return [k for k in keys if not k.startswith(IGNORED_PREFIXES)
            and len({_hashable(f.get(k)) for f in flat}) > 1]


def group_runs(runs: list[Run], by: list[str]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for run in runs:
        flat = flatten(run.config)
        settings = {k: flat.get(k) for k in by}
        key = tuple(_hashable(v) for v in settings.values())
        groups.setdefault(key, Group(settings, [])).runs.append(run)
    return list(groups.values())


def check_keys(runs: list[Run], by: list[str]) -> None:
    known = {k for r in runs for k in flatten(r.config)}
    for key in by:
        if key not in known:
            varied = ", ".join(varied_keys(runs)) or "none"
            raise ReportError(f"--by {key}: no such setting in these runs' config.yaml (settings that differ: {varied})")


# ------------------------------------------------------------------ per-run figures
def _series(run: Run, metric: str) -> dict[int, float]:
    return run.mean_series(metric)


def run_figures(run: Run, metric: str, target: float | None) -> dict[str, float]:
    lower = "loss" in metric
    s = _series(run, metric)
    out: dict[str, float] = {}
    if s:
        out["final"] = s[max(s)]
        out["best"] = (min if lower else max)(s.values())
    if run.rounds_done:
        out["mb_per_round"] = sum(m.wire_bytes for m in run.comm) / run.rounds_done / 1e6
    sim = run.sim_time()
    if sim:
        out["sim_s_per_round"] = sim[max(sim)] / len(sim)
    if target is not None and s:
        hit = next((r for r, v in sorted(s.items()) if (v <= target if lower else v >= target)), None)
        if hit is not None:
            out["rounds_to_target"] = float(hit + 1)
            if hit in sim:
                out["sim_s_to_target"] = sim[hit]
    return out


def mean_std(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


COLUMNS = ("final", "best", "mb_per_round", "rounds_to_target", "sim_s_to_target", "sim_s_per_round")


def table(groups: list[Group], metric: str, target: float | None) -> list[dict]:
    rows = []
    for g in groups:
        figs = [run_figures(r, metric, target) for r in g.counted]
        row: dict[str, Any] = dict(g.settings)
        row["runs"] = len(g.runs)
        row["seeds"] = sorted({r.config.get("seed") for r in g.runs}, key=str)
        statuses = [r.status for r in g.runs]
        row["status"] = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
        for col in COLUMNS:
            row[col] = mean_std([f[col] for f in figs if col in f])
        row["reached"] = f"{sum('rounds_to_target' in f for f in figs)}/{len(figs)}" if target is not None else None
        rows.append(row)
    return rows


def auto_target(groups: list[Group], metric: str, fraction: float = 0.9) -> float | None:
    """`fraction` of the best group's mean final value: a target that at least one setting reaches."""
    finals = [ms[0] for g in groups if (ms := mean_std([f["final"] for r in g.counted
                                                        if "final" in (f := run_figures(r, metric, None))]))]
    if not finals:
        return None
    return round(min(finals) / fraction if "loss" in metric else fraction * max(finals), 4)


# ------------------------------------------------------------------ finding the runs
def discover(paths: list[Path]) -> tuple[list[Run], list[str] | None]:
    """Runs from a sweep folder (its index names the grid keys), run folders, or a folder of run folders."""
    from fedsim.sweep.index import is_sweep_dir, read_index

    if not paths:
        raise ReportError("give a sweep folder or one or more run folders")
    runs: list[Run] = []
    grid: list[str] | None = None
    for p in paths:
        if is_sweep_dir(p):
            index = read_index(p)
            grid = list(index["grid"]) if len(paths) == 1 else None
            runs += [load_run(p / e["dir"]) for e in index["runs"] if is_run_dir(p / e["dir"])]
        elif is_run_dir(p):
            runs.append(load_run(p))
        elif p.is_dir() and (inner := sorted(q for q in p.iterdir() if is_run_dir(q))):
            runs += [load_run(q) for q in inner]
        else:
            raise ReportError(f"{p} is not a run folder (metrics.csv + config.yaml), a sweep folder (index.json) "
                              "or a folder of run folders")
    if not runs:
        raise ReportError(f"no runs with results under {', '.join(map(str, paths))}")
    return runs, grid


def headline_metric(runs: list[Run], metric: str | None) -> str:
    have = sorted({m for r in runs for m in r.metric_names()})
    if metric is not None:
        if metric not in have:
            raise ReportError(f"--metric {metric}: not in these runs' metrics.csv; available: {', '.join(have)}")
        return metric
    found = next((r.accuracy_metric() for r in runs if r.accuracy_metric()), None)
    if found is None:
        raise ReportError(f"no accuracy metric in these runs; pick one with --metric from: {', '.join(have)}")
    return found


# ------------------------------------------------------------------ formats
def _fmt(value: Any, col: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        digits = 1 if col == "rounds_to_target" else (2 if col.startswith(("mb", "sim")) else 3)
        return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return _show(value)


def headers(metric: str, settings: list[str]) -> list[tuple[str, str]]:
    return [(k, k) for k in settings] + [
        ("runs", "runs"), ("seeds", "seeds"), ("status", "status"),
        ("final", f"final {metric}"), ("best", f"best {metric}"), ("mb_per_round", "MB / round"),
        ("rounds_to_target", "rounds to target"), ("reached", "reached"),
        ("sim_s_to_target", "sim s to target"), ("sim_s_per_round", "sim s / round")]


def render(rows: list[dict], metric: str, settings: list[str], target: float | None, fmt: str) -> str:
    cols = headers(metric, settings)
    if fmt == "json":
        def plain(v):
            return {"mean": v[0], "std": v[1]} if isinstance(v, tuple) else v
        return json.dumps({"metric": metric, "target": target, "group_by": settings,
                           "groups": [{k: plain(r.get(k)) for k, _ in cols} for r in rows]}, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        names = []
        for k, title in cols:
            names += [f"{title} mean", f"{title} std"] if k in COLUMNS else [title]
        w.writerow(names)
        for r in rows:
            out = []
            for k, _ in cols:
                v = r.get(k)
                if k in COLUMNS:
                    out += list(v) if v else ["", ""]
                else:
                    out.append(" ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v))
            w.writerow(out)
        return buf.getvalue()
    head = "| " + " | ".join(t for _, t in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r.get(k), k).replace("|", "\\|") for k, _ in cols) + " |" for r in rows]
    note = f"target {metric} {'≤' if 'loss' in metric else '≥'} {target:g}" if target is not None else "no target"
    return "\n".join([f"{metric}: mean ± std over the completed runs of each group; {note}", "", head, sep, *body]) + "\n"


def write_output(text: str, path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ReportError(f"{path} exists; pass --force to overwrite it")
    path.write_text(text)
