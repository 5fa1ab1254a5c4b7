"""Communication ledger: one row per message sent or received, with measured byte counts.

Bytes are the codec's measured counts (``payload_bytes`` raw tensor bytes, ``wire_bytes`` as
defined by fedsim.wire.codec.wire_bytes). ``link_s`` is the modelled time the message would
take on the link, see ``link_time``: by default every link has DEFAULT_LATENCY_MS = 5.0 ms
latency and DEFAULT_BANDWIDTH_MBPS = 100.0 Mbit/s bandwidth.
"""
from __future__ import annotations

import csv
import threading
from collections import defaultdict
from dataclasses import dataclass
from os import PathLike
from typing import Iterable, Literal

DEFAULT_LATENCY_MS = 5.0
DEFAULT_BANDWIDTH_MBPS = 100.0

Side = Literal["sent", "recv"]
CSV_COLUMNS = ("round", "tag", "kind", "src", "dst", "payload_bytes", "wire_bytes", "frames", "wall_s", "link_s")


def link_time(latency_ms: float, bandwidth_mbps: float, wire_bytes: int) -> float:
    """Seconds one message spends on a link: latency + serialization at the link's bandwidth.

    ``latency_ms/1000 + wire_bytes*8 / (bandwidth_mbps*1e6)``; defaults for fedsim links are
    DEFAULT_LATENCY_MS = 5.0 and DEFAULT_BANDWIDTH_MBPS = 100.0.
    """
    if bandwidth_mbps <= 0:
        raise ValueError(f"bandwidth_mbps must be > 0, got {bandwidth_mbps}")
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
    return latency_ms / 1000.0 + wire_bytes * 8 / (bandwidth_mbps * 1e6)


@dataclass(frozen=True)
class LedgerRow:
    side: Side
    round: int
    tag: str
    kind: str          # fedsim.payload.Kind name, e.g. "MODEL"
    src: str
    dst: str
    payload_bytes: int
    wire_bytes: int
    frames: int
    wall_s: float      # measured seconds (send: until the receipt; recv: decode + delivery)
    link_s: float      # modelled seconds on the link, see link_time
    message_id: str = ""

    def __post_init__(self) -> None:
        if self.side not in ("sent", "recv"):
            raise ValueError(f"ledger row side must be 'sent' or 'recv', got {self.side!r}")


class Ledger:
    """Thread-safe, append-only list of LedgerRows."""

    def __init__(self, rows: Iterable[LedgerRow] = ()) -> None:
        self._lock = threading.Lock()
        self._rows: list[LedgerRow] = list(rows)

    def record(self, row: LedgerRow) -> None:
        with self._lock:
            self._rows.append(row)

    def extend(self, rows: Iterable[LedgerRow]) -> None:
        rows = list(rows)
        with self._lock:
            self._rows.extend(rows)

    def rows(self, side: Side | None = None) -> list[LedgerRow]:
        """A copy of the rows, optionally only one side's, in recording order."""
        with self._lock:
            return [r for r in self._rows if side is None or r.side == side]

    def to_csv(self, path: str | PathLike, side: Side = "sent") -> None:
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for r in self.rows(side):
                writer.writerow([getattr(r, col) for col in CSV_COLUMNS])

    def _totals(self, key, side: Side, field: str) -> dict:
        totals: dict = defaultdict(int)
        for r in self.rows(side):
            totals[key(r)] += getattr(r, field)
        return dict(totals)

    def bytes_by_kind(self, side: Side = "sent", field: str = "wire_bytes") -> dict[str, int]:
        return self._totals(lambda r: r.kind, side, field)

    def bytes_by_link(self, side: Side = "sent", field: str = "wire_bytes") -> dict[tuple[str, str], int]:
        return self._totals(lambda r: (r.src, r.dst), side, field)

    def bytes_by_round(self, side: Side = "sent", field: str = "wire_bytes") -> dict[int, int]:
        return self._totals(lambda r: r.round, side, field)

    def total_bytes(self, side: Side = "sent", field: str = "wire_bytes") -> int:
        return sum(getattr(r, field) for r in self.rows(side))


_COMPARED = ("payload_bytes", "wire_bytes", "frames")


def check_balanced(sent_rows: Iterable[LedgerRow], recv_rows: Iterable[LedgerRow]) -> list[str]:
    """Compare what each link sent with what its far end received; one line per mismatch, [] = balanced.

    Per (src, dst) link it compares message counts and summed payload bytes, wire bytes and
    frames, and names message ids seen on only one side.
    """
    def per_link(rows: Iterable[LedgerRow]) -> dict[tuple[str, str], list[LedgerRow]]:
        links: dict[tuple[str, str], list[LedgerRow]] = defaultdict(list)
        for r in rows:
            links[(r.src, r.dst)].append(r)
        return links

    sent, recv = per_link(sent_rows), per_link(recv_rows)
    problems = []
    for link in sorted(set(sent) | set(recv)):
        s, r = sent.get(link, []), recv.get(link, [])
        name = f"link {link[0]}->{link[1]}"
        diffs = [f"{len(s)} vs {len(r)} messages"] if len(s) != len(r) else []
        for field in _COMPARED:
            a, b = sum(getattr(x, field) for x in s), sum(getattr(x, field) for x in r)
            if a != b:
                diffs.append(f"{field} {a} vs {b}")
        if diffs:
            only_sent = sorted({x.message_id for x in s} - {x.message_id for x in r} - {""})
            only_recv = sorted({x.message_id for x in r} - {x.message_id for x in s} - {""})
            if only_sent:
                diffs.append(f"never received: {', '.join(only_sent[:5])}" + (" ..." if len(only_sent) > 5 else ""))
            if only_recv:
                diffs.append(f"received but not sent: {', '.join(only_recv[:5])}" + (" ..." if len(only_recv) > 5 else ""))
            problems.append(f"{name}: sent vs received: " + "; ".join(diffs))
    return problems
