"""DeployedNode: the Node of a real federation, which must outlive a hospital that is down or leaves."""
from __future__ import annotations

import logging

from fedsim.errors import WireError
from fedsim.node import Node
from fedsim.payload import Kind, Payload

log = logging.getLogger("fedsim.standalone")


class DeployedNode(Node):
    """A Node for a real federation, which must outlive a hospital that is down or leaves:

    - a send to an unreachable or refusing peer is logged and skipped, not fatal (nothing is
      recorded for it, so the ledgers still balance);
    - a peer we failed to reach this round, or that announced it is leaving (LEAVE_TAG, sent by a
      node stopping on SIGTERM), is not waited for: it is reported missing at once instead of
      costing a full timeout here and, through us, at our other neighbours.
    """

    LEAVE_TAG = "fedsim:leave"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unreachable_log: list[tuple[int, str, str]] = []  # (round, tag, peer)
        self.departed: dict[str, int] = {}                     # peer -> first round it will not run

    def _gone(self, rnd: int) -> set[str]:
        down = {p for (r, _, p) in self.unreachable_log if r == rnd}
        return down | {p for p, r in self.departed.items() if rnd >= r}

    def send(self, dst, payload, tag, *, round=None) -> None:
        rnd = self.round if round is None else round
        if tag != self.LEAVE_TAG and dst in self.departed and rnd >= self.departed[dst]:
            self.unreachable_log.append((rnd, tag, dst))
            log.info("%s: round %d: %s has left the federation; not sending %r", self.name, rnd, dst, tag)
            return
        try:
            super().send(dst, payload, tag, round=round)
        except WireError as exc:
            self.unreachable_log.append((rnd, tag, dst))
            log.warning("%s: round %d: could not deliver %r to %s, continuing without it: %s",
                        self.name, rnd, tag, dst, exc)

    def excused(self, round: int) -> set[str]:
        return self._gone(round)

    def _deliver(self, msg) -> None:
        # a leave notice (already checked and in the ledger) is news for excused(), not inbox mail
        if msg.tag != self.LEAVE_TAG:
            return super()._deliver(msg)
        with self._cv:
            self.departed[msg.src] = msg.round
            self._cv.notify_all()
        log.warning("%s: %s is leaving the federation from round %d on", self.name, msg.src, msg.round)

    def announce_leave(self, next_round: int, reason: str) -> None:
        for peer in self.neighbors:
            self.send(peer, Payload(Kind.CONTROL, {}, {"reason": reason}), self.LEAVE_TAG, round=next_round)

    def missing_peers(self, round: int) -> set[str]:
        return super().missing_peers(round) | {p for (r, _, p) in self.unreachable_log if r == round}
