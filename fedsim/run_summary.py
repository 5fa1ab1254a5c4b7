"""summary.json of a run: final metrics per node, bytes per kind and link, ledger balance, timings.

Shared by the simulation driver and the merge of deployed nodes' folders (`fedsim report`).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from fedsim.wire.ledger import check_balanced


def build_summary(cfg, run_id, names, final, sent_rows, recv_rows, round_times, setup_s, wall_s) -> dict:
    metrics = sorted({m for v in final.values() for m in v})
    mean_final = {m: float(np.nanmean([final[n][m] for n in names if m in final[n]])) for m in metrics}
    per_kind, per_link = defaultdict(int), defaultdict(int)
    for row in sent_rows:
        per_kind[row.kind] += row.wire_bytes
        per_link[f"{row.src}->{row.dst}"] += row.wire_bytes
    mismatches = check_balanced(sent_rows, recv_rows)
    return {
        "name": cfg["name"],
        "run_id": run_id,
        "status": "completed",
        "policy": cfg["policy"]["name"],
        "nodes": len(names),
        "rounds": cfg["rounds"],
        "seed": cfg["seed"],
        "final": {n: final[n] for n in names},
        "mean_final": mean_final,
        "dp_epsilon": {n: final[n]["dp_epsilon"] for n in names if "dp_epsilon" in final[n]},
        "bytes": {
            "wire_total": sum(r.wire_bytes for r in sent_rows),
            "payload_total": sum(r.payload_bytes for r in sent_rows),
            "messages": len(sent_rows),
            "per_kind": dict(sorted(per_kind.items())),
            "per_link": dict(sorted(per_link.items())),
        },
        "ledger_balanced": not mismatches,
        "ledger_mismatches": mismatches[:20],
        "simulated_link_s": float(sum(r.link_s for r in sent_rows)),
        "round_s": [round(t, 4) for t in round_times],
        "setup_s": round(setup_s, 3),
        "wall_s": round(wall_s, 3),
    }
