"""Text report of a run directory: final metrics per node and bytes per kind and link."""
from __future__ import annotations

import json
from pathlib import Path

from fedsim.errors import FedsimError


def load_summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise FedsimError(f"{run_dir} is not a finished run directory (no summary.json)")
    return json.loads(path.read_text())


def format_report(run_dir: Path) -> str:
    s = load_summary(run_dir)
    metrics = [m for m in ("test_acc", "test_bacc", "fed_acc", "fed_bacc", "train_loss", "dp_epsilon")
               if m in s["mean_final"]]
    lines = [f"{s['name']} ({s['run_id']}): policy {s['policy']}, {s['nodes']} nodes, {s['rounds']} rounds, "
             f"{s['wall_s']:.1f} s", ""]
    lines.append(f"{'node':<20}" + "".join(f"{m:>12}" for m in metrics))
    for node, vals in s["final"].items():
        lines.append(f"{node:<20}" + "".join(f"{vals.get(m, float('nan')):>12.4f}" for m in metrics))
    lines.append(f"{'mean':<20}" + "".join(f"{s['mean_final'][m]:>12.4f}" for m in metrics))
    b = s["bytes"]
    lines += ["", f"wire bytes {b['wire_total']:,} (payload {b['payload_total']:,}) in {b['messages']} messages; "
                  f"ledger balanced: {s['ledger_balanced']}"]
    for kind, n in b["per_kind"].items():
        lines.append(f"  {kind:<10} {n:>16,} B")
    top = sorted(b["per_link"].items(), key=lambda kv: -kv[1])[:10]
    lines.append("busiest links:")
    lines += [f"  {link:<30} {n:>16,} B" for link, n in top]
    return "\n".join(lines)
