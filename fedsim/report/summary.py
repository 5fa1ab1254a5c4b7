"""Text report of a run directory: status, final metrics per node, bytes per kind and link.

Built from the files a run writes as it goes, so it works on failed, interrupted and running runs.
"""
from __future__ import annotations

import math
from collections import defaultdict

from fedsim.report.rundata import Run

SHOWN = ("test_acc", "test_bacc", "fed_acc", "fed_bacc", "base_acc", "new_acc", "hm", "train_loss", "dp_epsilon")


def _cell(v: float | None) -> str:
    return f"{'—':>12}" if v is None or math.isnan(v) else f"{v:>12.4f}"


def format_report(run: Run) -> str:
    s = run.summary
    total = s.get("rounds") or run.config.get("rounds", "?")
    head = f"{run.name} ({s.get('run_id', run.dir.name)}): policy {s.get('policy') or run.config.get('policy', {}).get('name', '?')}, " \
           f"{len(run.nodes)} nodes, {run.rounds_done} of {total} rounds"
    if "wall_s" in s:
        head += f", {s['wall_s']:.1f} s"
    sim = run.sim_time()
    if sim:
        head += f", {sim[max(sim)]:.1f} s simulated"
    lines = [head, f"status: {run.status}" + (f" — {s['error']}" if s.get("error") else ""), ""]
    last: dict[str, dict[str, float]] = defaultdict(dict)
    for _, node, m, v in run.metrics:
        last[node][m] = v
    metrics = [m for m in SHOWN if m in run.metric_names()]
    lines.append(f"{'node':<20}" + "".join(f"{m:>12}" for m in metrics))
    for node in sorted(last):
        lines.append(f"{node:<20}" + "".join(_cell(last[node].get(m)) for m in metrics))
    means = []
    for m in metrics:
        vals = [last[n][m] for n in last if m in last[n] and not math.isnan(last[n][m])]
        means.append(sum(vals) / len(vals) if vals else None)
    lines.append(f"{'mean':<20}" + "".join(_cell(v) for v in means))
    sent = sum(m.wire_bytes for m in run.comm)
    balanced = f"; ledger balanced: {s['ledger_balanced']}" if "ledger_balanced" in s else ""
    lines += ["", f"wire bytes {sent:,} in {len(run.comm)} messages{balanced}"]
    per_kind: dict[str, int] = defaultdict(int)
    for m in run.comm:
        per_kind[m.kind] += m.wire_bytes
    lines += [f"  {kind:<10} {n:>16,} B" for kind, n in sorted(per_kind.items())]
    top = sorted(run.bytes_per_link().items(), key=lambda kv: -kv[1])[:10]
    if top:
        lines.append("busiest links:")
        lines += [f"  {src + '->' + dst:<30} {n:>16,} B" for (src, dst), n in top]
    return "\n".join(lines)
