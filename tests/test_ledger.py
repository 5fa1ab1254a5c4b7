"""Ledger rows, CSV export, totals, the link time model and the sent/received balance check."""
from __future__ import annotations

import csv
import threading

import pytest

from fedsim.wire.ledger import (
    DEFAULT_BANDWIDTH_MBPS,
    DEFAULT_LATENCY_MS,
    Ledger,
    LedgerRow,
    check_balanced,
    link_time,
)


def row(side="sent", round=0, kind="MODEL", src="a", dst="b", payload=1000, wire=1030, frames=2, mid="m"):
    return LedgerRow(side=side, round=round, tag="fedavg", kind=kind, src=src, dst=dst, payload_bytes=payload,
                     wire_bytes=wire, frames=frames, wall_s=0.01, link_s=0.02, message_id=mid)


def test_link_time_is_latency_plus_bits_over_bandwidth() -> None:
    assert (DEFAULT_LATENCY_MS, DEFAULT_BANDWIDTH_MBPS) == (5.0, 100.0)
    assert link_time(5.0, 100.0, 0) == pytest.approx(0.005)
    assert link_time(5.0, 100.0, 12_500_000) == pytest.approx(0.005 + 1.0)  # 100 Mbit at 100 Mbit/s
    assert link_time(0.0, 8.0, 1_000_000) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bandwidth_mbps must be > 0"):
        link_time(5.0, 0.0, 10)


def test_csv_has_the_documented_columns_and_only_one_side(tmp_path) -> None:
    ledger = Ledger()
    ledger.record(row(round=1, mid="x"))
    ledger.record(row(side="recv", round=1, mid="x"))
    ledger.record(row(round=2, kind="PROMPT", src="b", dst="c", payload=10, wire=40, frames=2, mid="y"))
    path = tmp_path / "sent.csv"
    ledger.to_csv(path)
    with open(path, newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["round", "tag", "kind", "src", "dst", "payload_bytes", "wire_bytes", "frames", "wall_s", "link_s"]
    assert lines[1:] == [["1", "fedavg", "MODEL", "a", "b", "1000", "1030", "2", "0.01", "0.02"],
                         ["2", "fedavg", "PROMPT", "b", "c", "10", "40", "2", "0.01", "0.02"]]
    ledger.to_csv(tmp_path / "recv.csv", side="recv")
    assert len(list(csv.reader(open(tmp_path / "recv.csv")))) == 2


def test_totals_per_kind_link_and_round() -> None:
    ledger = Ledger([row(round=0, kind="MODEL", src="a", dst="b", wire=100),
                     row(round=0, kind="PROMPT", src="b", dst="a", wire=10),
                     row(round=1, kind="MODEL", src="a", dst="b", wire=100, payload=90),
                     row(side="recv", round=1, wire=7)])
    assert ledger.bytes_by_kind() == {"MODEL": 200, "PROMPT": 10}
    assert ledger.bytes_by_link() == {("a", "b"): 200, ("b", "a"): 10}
    assert ledger.bytes_by_round() == {0: 110, 1: 100}
    assert ledger.bytes_by_round(side="recv") == {1: 7}
    assert ledger.bytes_by_link(field="payload_bytes") == {("a", "b"): 1090, ("b", "a"): 1000}
    assert ledger.total_bytes() == 210


def test_balanced_ledgers_have_no_mismatches() -> None:
    sent = [row(mid="1"), row(src="b", dst="a", mid="2")]
    recv = [row(side="recv", src="b", dst="a", mid="2"), row(side="recv", mid="1")]
    assert check_balanced(sent, recv) == []


def test_mismatches_are_named_per_link() -> None:
    sent = [row(mid="1"), row(mid="2"), row(src="b", dst="c", wire=500, mid="3")]
    recv = [row(side="recv", mid="1"), row(side="recv", src="b", dst="c", wire=499, mid="3")]
    problems = check_balanced(sent, recv)
    assert problems == [
        "link a->b: sent vs received: 2 vs 1 messages; payload_bytes 2000 vs 1000; wire_bytes 2060 vs 1030; "
        "frames 4 vs 2; never received: 2",
        "link b->c: sent vs received: wire_bytes 500 vs 499",
    ]
    assert check_balanced([], [row(side="recv", mid="9")]) == [
        "link a->b: sent vs received: 0 vs 1 messages; payload_bytes 0 vs 1000; wire_bytes 0 vs 1030; "
        "frames 0 vs 2; received but not sent: 9"]


def test_record_is_thread_safe() -> None:
    ledger = Ledger()

    def work(i: int) -> None:
        for j in range(500):
            ledger.record(row(round=i, mid=f"{i}-{j}"))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.extend([row(round=99)])
    assert len(ledger.rows()) == 4001
    assert ledger.bytes_by_round()[3] == 500 * 1030


def test_rows_reject_unknown_sides() -> None:
    with pytest.raises(ValueError, match="side must be 'sent' or 'recv'"):
        row(side="both")
