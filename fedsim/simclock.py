"""Simulated wall-clock: how long each round would take over the topology's links.

The run itself is executed as fast as this machine allows; what it records is *causality*: per
node and round, the order in which it computed, sent and consumed messages (`NodeClock`). The
simulated round replays that order with simulated durations (`simulate_round`), a discrete-event
simulation of the round's critical path:

- every node starts the round at 0 (the driver's round barrier);
- a compute step (anything under the node's compute slot: `Node.train`, evaluation inside the
  policy's round, a policy's `with node.compute:`) lasts its *measured* seconds divided by the
  node's `compute_speed` (topology node attribute, default 1; 0.25 = a hospital 4x slower);
- a send does not block the sender; the message is transmitted on its directed link after the
  messages queued before it on that link: it occupies the link for wire_bytes*8/bandwidth and
  arrives latency later (`link_s` = latency + wire_bytes*8/bandwidth, as in the ledger). Links
  are independent and full duplex;
- `recv` waits until every message it returned has arrived (a timed-out sender is not waited for);
- a request served on a node (`node.request`, e.g. FedRewind's rewind) runs in its own lane,
  which starts when the request arrives: the reply leaves after the serving compute;
- a node's round ends when all its lanes are done and every message sent to it has arrived; the
  round lasts until the last node's end. Work done after the policy's `run_round` (the
  simulator's own evaluation) is not part of it.

Nothing here imports torch: nodes record, and the driver solves rounds from the plain event lists
the hosts return.
"""
from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

MAIN = "main"
SERVE = "serve:"  # + the request's message id


class NodeClock:
    """Event recorder of one node: per lane, ("compute", seconds) | ("send", mid) | ("recv", [mids])."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._lanes: dict[str, list[tuple]] = {}
        self._closed: set[str] = set()
        self._armed = False  # records nothing until a runtime starts rounds on it (a deployed node never does)

    def start_round(self) -> None:
        with self._lock:
            self._lanes, self._closed, self._armed = {}, set(), True

    def close_main(self) -> None:
        """The policy's round is over: later main-lane work (evaluation) is not simulated."""
        with self._lock:
            self._closed.add(MAIN)

    def take(self) -> dict[str, list[tuple]]:
        """This round's events (and forget them)."""
        with self._lock:
            lanes, self._lanes = self._lanes, {}
            return lanes

    @contextmanager
    def serving(self, request_id: str):
        """Events of this thread belong to the lane of a request being served."""
        before = getattr(self._local, "lane", MAIN)
        self._local.lane = SERVE + request_id
        try:
            yield
        finally:
            self._local.lane = before

    def compute(self, seconds: float) -> None:
        self._add(("compute", float(seconds)))

    def sent(self, message_id: str) -> None:
        self._add(("send", message_id))

    def received(self, message_ids: list[str]) -> None:
        if message_ids:
            self._add(("recv", list(message_ids)))

    def _add(self, event: tuple) -> None:
        lane = getattr(self._local, "lane", MAIN)
        with self._lock:
            if self._armed and lane not in self._closed:
                self._lanes.setdefault(lane, []).append(event)


@dataclass(frozen=True)
class Sent:
    """What the solver needs of a sent message (from the sender's ledger row)."""
    message_id: str
    src: str
    dst: str
    wire_bytes: int


@dataclass
class RoundTime:
    node_end: dict[str, float]      # simulated end of each node's round, seconds after the round began
    compute: dict[str, float]       # measured compute seconds of each node (before compute_speed)

    @property
    def duration(self) -> float:
        return max(self.node_end.values(), default=0.0)


def simulate_round(clocks: dict[str, dict[str, list[tuple]]], sent: list[Sent],
                   links: dict[tuple[str, str], tuple[float, float]], speed: dict[str, float]) -> RoundTime:
    """Critical path of one round. `links[(u, v)]` = (latency_ms, bandwidth_mbps) of the edge u-v
    (either orientation); messages on other pairs (relays) pay no link time."""
    by_id = {s.message_id: s for s in sent}
    arrival: dict[str, float] = {}
    link_free: dict[tuple[str, str], float] = defaultdict(float)
    heap: list[tuple[float, int, str, object]] = []
    seq = 0

    def push(t: float, kind: str, item) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, seq, kind, item))
        seq += 1

    lanes = {(node, lane): events for node, by_lane in clocks.items() for lane, events in by_lane.items()}
    pos = dict.fromkeys(lanes, 0)
    lane_end: dict[tuple[str, str], float] = {}
    waiting: dict[str, list[tuple[str, str]]] = defaultdict(list)  # message id -> lanes blocked on it
    started_by: dict[str, tuple[str, str]] = {}                     # request id -> its serving lane
    for key in lanes:
        if key[1].startswith(SERVE) and key[1][len(SERVE):] in by_id:
            started_by[key[1][len(SERVE):]] = key
        else:  # main lanes, and serve lanes whose request is not in this round's ledger, start at 0
            push(0.0, "lane", key)

    def transmit(t: float, mid: str) -> None:
        s = by_id.get(mid)
        if s is None:  # not in the ledger (never delivered): nothing arrives
            return
        lat_bw = links.get((s.src, s.dst)) or links.get((s.dst, s.src))
        if lat_bw is None:
            push(t, "arrive", mid)
            return
        lat_ms, bw = lat_bw
        start = max(t, link_free[(s.src, s.dst)])
        link_free[(s.src, s.dst)] = start + s.wire_bytes * 8 / (bw * 1e6)
        push(link_free[(s.src, s.dst)] + lat_ms / 1000.0, "arrive", mid)

    def run_lane(t: float, key: tuple[str, str]) -> None:
        node, events = key[0], lanes[key]
        while pos[key] < len(events):
            kind, value = events[pos[key]]
            if kind == "compute":
                pos[key] += 1
                push(t + value / speed.get(node, 1.0), "lane", key)
                return
            if kind == "send":
                transmit(t, value)
            elif kind == "recv":
                pending = [m for m in value if m in by_id and m not in arrival]
                if pending:
                    waiting[pending[0]].append(key)
                    return
                t = max([t] + [arrival[m] for m in value if m in arrival])
            pos[key] += 1
        lane_end[key] = t

    now = 0.0
    while heap or waiting or started_by:
        if not heap:  # left waiting on messages nobody sends (inconsistent logs): stop waiting for them
            for mid in list(waiting) + list(started_by):
                push(now, "arrive", mid)
        now, _, kind, item = heapq.heappop(heap)
        if kind == "lane":
            run_lane(now, item)
            continue
        arrival.setdefault(item, now)
        if item in started_by:
            push(now, "lane", started_by.pop(item))
        for key in waiting.pop(item, []):
            push(now, "lane", key)

    end: dict[str, float] = {node: 0.0 for node in clocks}
    for (node, _), t in lane_end.items():
        end[node] = max(end[node], t)
    for s in sent:
        if s.dst in end and s.message_id in arrival:
            end[s.dst] = max(end[s.dst], arrival[s.message_id])
    compute = {node: sum(v for lane in by_lane.values() for k, v in lane if k == "compute")
               for node, by_lane in clocks.items()}
    return RoundTime(end, compute)


class SimClock:
    """The driver's side: solves each round from the hosts' event lists and the round's sent ledger rows."""

    def __init__(self, graph) -> None:
        self.links = {(u, v): (float(d["latency_ms"]), float(d["bandwidth_mbps"]))
                      for u, v, d in graph.edges(data=True)}
        self.speed = {n: float(d.get("compute_speed", 1.0)) for n, d in graph.nodes(data=True)}
        self.rounds: list[float] = []

    @property
    def last(self) -> float | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def total(self) -> float | None:
        return sum(self.rounds) if self.rounds else None

    def round(self, r: int, clocks: dict[str, dict[str, list[tuple]]], sent_rows) -> list[tuple]:
        """Simulate round r; returns timing.csv rows (round, node, compute_s | sim_round_s, value)."""
        if not clocks:
            return []
        sent = [Sent(x.message_id, x.src, x.dst, x.wire_bytes) for x in sent_rows]
        rt = simulate_round(clocks, sent, self.links, self.speed)
        self.rounds.append(rt.duration)
        return [(r, n, "compute_s", rt.compute[n]) for n in sorted(rt.compute)] + \
               [(r, n, "sim_round_s", rt.node_end[n]) for n in sorted(rt.node_end)]

    def summary(self) -> dict:
        if not self.rounds:
            return {}
        return {"sim_round_s": [round(x, 9) for x in self.rounds], "sim_time_s": round(sum(self.rounds), 9)}
