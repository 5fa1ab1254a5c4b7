"""Live progress of a run.

On a terminal: a spinner with elapsed time for each phase before round 0 (Ray start, workers with
their data and models, policy set-up such as FedER's GAN pre-training, whose epochs it counts),
then a bar with rounds done/total, elapsed time and ETA, with one line per finished round above
it. Elsewhere (a pipe, a log file, CI): the same information as plain lines, one per phase and
one per round. Numbers are plain text, never rich markup, and a metric not computed in a round
is shown as "—".
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

DASH = "—"
PLAIN_EVERY_S = 15.0


def fmt(value: float | None, digits: int = 3) -> str:
    """A number, or "—" where it was not computed."""
    return DASH if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


class Progress:
    def __init__(self, rounds: int, enabled: bool = True, max_nodes_shown: int = 16,
                 console: Console | None = None) -> None:
        self.rounds, self.enabled, self.max_nodes = rounds, enabled, max_nodes_shown
        self.console = console or Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.live = enabled and self.console.is_terminal
        self._bar: RichProgress | None = None
        self._task = None
        self._t_rounds: float | None = None

    # ------------------------------------------------------------------ text
    def info(self, text: str) -> None:
        if self.enabled:
            self._print(Text(text))

    def _print(self, text: Text) -> None:
        (self._bar.console if self._bar is not None else self.console).print(text, markup=False, highlight=False)

    # ------------------------------------------------------------------ phases before round 0
    @contextmanager
    def phase(self, text: str):
        """A spinner (terminal) or a start line and a done line (elsewhere) around one set-up step.
        Yields a function that shows a detail next to it, e.g. the GAN epoch a node is at."""
        t0 = time.perf_counter()
        if not self.enabled:
            yield lambda _detail: None
            return
        if not self.live:  # a log: the start, a status line every PLAIN_EVERY_S while it lasts, the end
            print(f"{text} ...", flush=True)
            last = [t0]

            def plain(detail: str) -> None:
                now = time.perf_counter()
                if now - last[0] >= PLAIN_EVERY_S:
                    last[0] = now
                    print(f"{text} — {detail} ({now - t0:.0f} s)", flush=True)
            yield plain
            print(f"{text}: done in {time.perf_counter() - t0:.1f} s", flush=True)
            return
        spinner = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                               console=self.console, transient=True)
        with spinner:
            task = spinner.add_task(text, total=None)
            yield lambda detail: spinner.update(task, description=f"{text} — {detail}")
        self._print(Text(f"{text}: done in {time.perf_counter() - t0:.1f} s", style="dim"))

    # ------------------------------------------------------------------ rounds
    def start_rounds(self) -> None:
        self._t_rounds = time.perf_counter()
        if self.live:
            self._bar = RichProgress(TextColumn("rounds"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("rounds", total=self.rounds)

    def round(self, r: int, per_node: dict[str, dict[str, float]], sent_bytes: int, total_bytes: int,
              seconds: float, fed: dict[str, float] | None, has_fed: bool = True, sim_s: float | None = None) -> None:
        if not self.enabled:
            return
        accs = [m["test_acc"] for m in per_node.values() if not math.isnan(m.get("test_acc", math.nan))]
        line = Text(f"round {r + 1:>3}/{self.rounds}", style="bold")
        line.append(f"  {seconds:6.2f} s")
        if accs:
            line.append(f"  acc mean {fmt(sum(accs) / len(accs))} [min {fmt(min(accs))} max {fmt(max(accs))}]")
        else:
            line.append(f"  acc {DASH}")
        if has_fed:
            line.append(f"  fed acc {fmt(sum(fed.values()) / len(fed)) if fed else DASH}")
        line.append(f"  sent {mb(sent_bytes)} (total {mb(total_bytes)})")
        if sim_s is not None:
            line.append(f"  sim {sim_s:.2f} s")
        if not self.live and self._t_rounds is not None:
            done = r + 1
            left = (time.perf_counter() - self._t_rounds) / done * (self.rounds - done)
            line.append(f"  ETA {left:.0f} s")
        self._print(line)
        shown = sorted(per_node)[: self.max_nodes]
        cells = [f"{n}={fmt(per_node[n]['test_acc'], 2)}" for n in shown if "test_acc" in per_node[n]]
        if cells:
            more = f" (+{len(per_node) - len(shown)} more)" if len(per_node) > len(shown) else ""
            self._print(Text("   " + "  ".join(cells) + more, style="dim"))
        if self._bar is not None:
            self._bar.update(self._task, completed=r + 1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
