"""Numbers into a reproduction's report: mean ± std over seeds, Markdown tables, claim verdicts, a PNG.

A claim's verdict is computed from the numbers it shows, never typed in: `greater` pairs the
methods seed by seed (a holds when its mean is higher and it wins on more than half of the seeds),
`within` checks a gap against a tolerance, `closer_to` compares distances to a target value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def mean_std(values) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def fmt(values, digits: int = 3, seeds: bool = True) -> str:
    """'0.412 ± 0.031 (0.401, 0.433, 0.402)': mean ± sample std over seeds, then each seed's value."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "n/a"
    out = f"{m:.{digits}f} ± {s:.{digits}f}"
    if seeds and len(values) > 1:
        out += " (" + ", ".join("n/a" if v is None or math.isnan(v) else f"{v:.{digits}f}" for v in values) + ")"
    return out


def megabytes(values) -> str:
    m, _ = mean_std(values)
    return "n/a" if math.isnan(m) else f"{m / 1e6:.3f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Claim:
    text: str
    holds: bool | None   # None: the numbers are missing (a run failed)
    evidence: str

    @property
    def verdict(self) -> str:
        return "n/a (runs missing)" if self.holds is None else ("**holds**" if self.holds else "**does not hold**")


def greater(text: str, a: list[float], b: list[float], digits: int = 3) -> Claim:
    """a > b: higher mean and higher on more than half of the seeds (paired by seed)."""
    pairs = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    if not pairs:
        return Claim(text, None, "no paired runs")
    wins = sum(x > y for x, y in pairs)
    diff = [x - y for x, y in pairs]
    ma, mb = mean_std([x for x, _ in pairs])[0], mean_std([y for _, y in pairs])[0]
    holds = ma > mb and wins > len(pairs) / 2
    return Claim(text, holds, f"{ma:.{digits}f} vs {mb:.{digits}f}; difference {fmt(diff, digits, seeds=False)}; "
                              f"higher on {wins}/{len(pairs)} seeds")


def at_least(text: str, a: list[float], b: list[float], digits: int = 3) -> Claim:
    """a ≥ b: mean at least as high and a ≥ b on at least half of the seeds (paired by seed)."""
    pairs = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))]
    if not pairs:
        return Claim(text, None, "no paired runs")
    wins = sum(x >= y for x, y in pairs)
    ma, mb = mean_std([x for x, _ in pairs])[0], mean_std([y for _, y in pairs])[0]
    return Claim(text, ma >= mb and wins >= len(pairs) / 2,
                 f"{ma:.{digits}f} vs {mb:.{digits}f}; difference {fmt([x - y for x, y in pairs], digits, seeds=False)}; "
                 f"at least as high on {wins}/{len(pairs)} seeds")


def within(text: str, a: list[float], b: list[float], tolerance: float, digits: int = 3) -> Claim:
    """a within `tolerance` below b or above it (|mean a − mean b| <= tolerance, or a above b)."""
    ma, mb = mean_std(a)[0], mean_std(b)[0]
    if math.isnan(ma) or math.isnan(mb):
        return Claim(text, None, "runs missing")
    gap = mb - ma
    return Claim(text, gap <= tolerance, f"{ma:.{digits}f} vs {mb:.{digits}f}: {gap * 100:+.1f} points below "
                                         f"(tolerance {tolerance * 100:.0f})")


def closer_to(text: str, target: float, a: list[float], b: list[float], digits: int = 3) -> Claim:
    """a's values are closer to `target` than b's, on average over seeds."""
    da = mean_std([abs(x - target) for x in a])[0]
    db = mean_std([abs(x - target) for x in b])[0]
    if math.isnan(da) or math.isnan(db):
        return Claim(text, None, "runs missing")
    return Claim(text, da < db, f"mean |x − {target}|: {da:.{digits}f} vs {db:.{digits}f}")


def claims_table(claims: list[Claim]) -> str:
    return table(["claim", "on this data", "numbers"], [[c.text, c.verdict, c.evidence] for c in claims])


def plot(series: dict[str, dict[int, list[float]]], ylabel: str, title: str, path: Path) -> Path:
    """Mean over seeds per round (line) and min–max over seeds (band), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for label, rounds in series.items():
        if not rounds:
            continue
        xs = sorted(rounds)
        vals = [np.asarray(rounds[x], dtype=np.float64) for x in xs]
        ax.plot([x + 1 for x in xs], [v.mean() for v in vals], label=label, lw=1.6)
        ax.fill_between([x + 1 for x in xs], [v.min() for v in vals], [v.max() for v in vals], alpha=0.15)
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
