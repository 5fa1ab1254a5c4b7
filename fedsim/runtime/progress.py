"""Live progress of a run: one line per round with per-node accuracy and bytes sent."""
from __future__ import annotations

import math
import sys

from rich.console import Console


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


class Progress:
    def __init__(self, rounds: int, enabled: bool = True, max_nodes_shown: int = 16) -> None:
        self.rounds, self.enabled, self.max_nodes = rounds, enabled, max_nodes_shown
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)

    def info(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    def round(self, r: int, per_node: dict[str, dict[str, float]], sent_bytes: int, total_bytes: int,
              seconds: float, fed: dict[str, float] | None) -> None:
        if not self.enabled:
            return
        accs = [m["test_acc"] for m in per_node.values() if not math.isnan(m.get("test_acc", math.nan))]
        head = f"[bold]round {r + 1:>3}/{self.rounds}[/bold]  {seconds:6.2f} s"
        if accs:
            head += f"  acc mean {sum(accs) / len(accs):.3f} [min {min(accs):.3f} max {max(accs):.3f}]"
        if fed:
            head += f"  fed acc {sum(fed.values()) / len(fed):.3f}"
        head += f"  sent {_mb(sent_bytes)} (total {_mb(total_bytes)})"
        self.console.print(head)
        shown = sorted(per_node)[: self.max_nodes]
        cells = [f"{n}={per_node[n]['test_acc']:.2f}" for n in shown if "test_acc" in per_node[n]]
        if cells:
            more = f" (+{len(per_node) - len(shown)} more)" if len(per_node) > len(shown) else ""
            self.console.print("   [dim]" + "  ".join(cells) + more + "[/dim]")
