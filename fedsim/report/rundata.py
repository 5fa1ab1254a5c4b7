"""A run directory read back for reports and comparisons, without torch or Ray.

Reads what `fedsim run` writes as it goes (config.yaml, metrics.csv, comm.csv, timing.csv,
labels.csv, summary.json), so a failed, interrupted or still-running run shows the rounds it
finished. A malformed CSV row (a truncated file, a hand edit) is a ReportError naming the file
and line; a missing optional file just leaves its part of the report out.
"""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedsim.errors import FedsimError


class ReportError(FedsimError):
    """A run or sweep folder that cannot be read: names the file (and line)."""


ACCURACY_METRICS = ("fed_acc", "test_acc", "base_acc", "seen_acc", "hm")


@dataclass(frozen=True)
class Message:
    round: int
    kind: str
    src: str
    dst: str
    wire_bytes: int
    link_s: float


@dataclass
class Run:
    dir: Path
    config: dict
    summary: dict
    metrics: list[tuple[int, str, str, float]]
    comm: list[Message]
    timing: list[tuple[int, str, str, float]] = field(default_factory=list)
    labels: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # node -> split -> counts per class

    @property
    def name(self) -> str:
        return self.summary.get("name") or self.config.get("name") or self.dir.name

    @property
    def status(self) -> str:
        """completed | failed | interrupted (from summary.json), or `incomplete` (no summary: running or killed)."""
        return self.summary.get("status", "incomplete")

    @property
    def rounds_done(self) -> int:
        return 1 + max((r for r, *_ in self.metrics), default=-1)

    @property
    def nodes(self) -> list[str]:
        return sorted({n for _, n, _, _ in self.metrics} | set(self.labels))

    def metric_names(self) -> list[str]:
        return sorted({m for _, _, m, _ in self.metrics})

    def accuracy_metric(self, preferred: str | None = None) -> str | None:
        """The headline accuracy: `preferred` if given, else the first of ACCURACY_METRICS present."""
        have = set(self.metric_names())
        if preferred is not None:
            return preferred if preferred in have else None
        return next((m for m in ACCURACY_METRICS if m in have), None)

    def per_node(self, metric: str) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = defaultdict(dict)
        for r, node, m, v in self.metrics:
            if m == metric and not math.isnan(v):
                out[node][r] = v
        return dict(out)

    def mean_series(self, metric: str) -> dict[int, float]:
        """Per round, the mean over the nodes that reported `metric` that round."""
        sums: dict[int, list[float]] = defaultdict(list)
        for r, _, m, v in self.metrics:
            if m == metric and not math.isnan(v):
                sums[r].append(v)
        return {r: sum(v) / len(v) for r, v in sorted(sums.items())}

    def bytes_per_round(self) -> dict[int, dict[str, int]]:
        """round -> payload kind -> wire bytes sent, for every round that ran (0 where nothing was sent)."""
        last = max([self.rounds_done - 1] + [m.round for m in self.comm])
        out: dict[int, dict[str, int]] = {r: {} for r in range(last + 1)}
        for m in self.comm:
            out[m.round][m.kind] = out[m.round].get(m.kind, 0) + m.wire_bytes
        return out

    def cumulative_bytes(self) -> dict[int, int]:
        total, out = 0, {}
        for r, kinds in sorted(self.bytes_per_round().items()):
            total += sum(kinds.values())
            out[r] = total
        return out

    def bytes_per_link(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = defaultdict(int)
        for m in self.comm:
            out[(m.src, m.dst)] += m.wire_bytes
        return dict(out)

    def sim_round_s(self) -> dict[int, float]:
        """Simulated duration of each round (the slowest node's simulated round end), from timing.csv."""
        out: dict[int, float] = {}
        for r, _, m, v in self.timing:
            if m == "sim_round_s" and not math.isnan(v):
                out[r] = max(out.get(r, 0.0), v)
        return dict(sorted(out.items()))

    def sim_time(self) -> dict[int, float]:
        """Simulated wall-clock at the end of each round (the rounds' durations summed)."""
        total, out = 0.0, {}
        for r, s in self.sim_round_s().items():
            total += s
            out[r] = total
        return out


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.csv").is_file() and ((path / "config.yaml").is_file() or (path / "summary.json").is_file())


def load_run(path: str | Path) -> Run:
    d = Path(path)
    if not d.is_dir():
        raise ReportError(f"{d}: no such directory")
    if not is_run_dir(d):
        raise ReportError(f"{d} is not a run directory (it needs metrics.csv and config.yaml, as `fedsim run` writes)")
    config = _yaml(d / "config.yaml")
    summary = _json(d / "summary.json")
    metrics = [(int(r), n, m, v) for r, n, m, v in _rows(d / "metrics.csv", _METRIC_COLUMNS)]
    timing = [(int(r), n, m, v) for r, n, m, v in _rows(d / "timing.csv", _METRIC_COLUMNS)] \
        if (d / "timing.csv").is_file() else []
    comm = [Message(int(r[0]), r[2], r[3], r[4], int(r[6]), r[9]) for r in _rows(d / "comm.csv", _COMM_COLUMNS)] \
        if (d / "comm.csv").is_file() else []
    labels: dict[str, dict[str, list[int]]] = {}
    if (d / "labels.csv").is_file():
        for node, split, cls, count in _rows(d / "labels.csv", _LABEL_COLUMNS):
            counts = labels.setdefault(node, {}).setdefault(split, [])
            counts.extend([0] * (int(cls) + 1 - len(counts)))
            counts[int(cls)] = int(count)
    return Run(d, config, summary, metrics, comm, timing, labels)


# ---------------------------------------------------------------- strict readers
_METRIC_COLUMNS = (("round", int), ("node", str), ("metric", str), ("value", float))
_COMM_COLUMNS = (("round", int), ("tag", str), ("kind", str), ("src", str), ("dst", str), ("payload_bytes", int),
                 ("wire_bytes", int), ("frames", int), ("wall_s", float), ("link_s", float))
_LABEL_COLUMNS = (("node", str), ("split", str), ("class", int), ("count", int))


def _rows(path: Path, columns: tuple[tuple[str, type], ...]) -> list[tuple]:
    """Parse a CSV written by fedsim; any row that does not fit raises ReportError with file and line."""
    names = [c for c, _ in columns]
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ReportError(f"{path}: empty file (expected the header {','.join(names)})")
            if header != names:
                raise ReportError(f"{path} line 1: header {','.join(header)!r} is not {','.join(names)!r}")
            out = []
            for row in reader:
                line = reader.line_num
                if len(row) != len(names):
                    raise ReportError(f"{path} line {line}: {len(row)} fields, expected {len(names)} "
                                      f"({','.join(names)}); the file looks truncated or edited")
                try:
                    out.append(tuple(kind(v) for (_, kind), v in zip(columns, row)))
                except ValueError:
                    bad = next(n for (n, kind), v in zip(columns, row) if not _fits(kind, v))
                    raise ReportError(f"{path} line {line}: {bad} = {row[names.index(bad)]!r} is not "
                                      f"{'an integer' if dict(columns)[bad] is int else 'a number'}") from None
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None


def _fits(kind: type, value: str) -> bool:
    try:
        kind(value)
        return True
    except ValueError:
        return False


def _yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ReportError(f"{path}: cannot parse: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a mapping, got {type(data).__name__}")
    return data


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
