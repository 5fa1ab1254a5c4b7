"""Node: one hospital — its data, the model it trains, and the primitives a policy uses to talk.

A policy sees only this object: `send`, `recv`, `request` and `train`/`evaluate`. Where the bytes go
(gRPC socket, in-process queue) is the transport's business; every message is measured from its
encoded frames and written to the ledger on both sides.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import networkx as nx
import numpy as np
import torch
import torch.nn as nn

from fedsim import tasks, training
from fedsim.data.node_data import NodeData
from fedsim.errors import WireError
from fedsim.payload import Kind, Payload
from fedsim.topology import link_params
from fedsim.wire.codec import Message, encode, wire_bytes
from fedsim.wire.ledger import Ledger, LedgerRow, link_time
from fedsim.wire.transport import Transport

log = logging.getLogger("fedsim.node")

REQUEST_PREFIX, REPLY_PREFIX = "req:", "rep:"


@dataclass
class Received:
    """What `recv` returns: messages sorted by sender, and the expected senders that never came."""

    messages: list[Message]
    missing: list[str] = field(default_factory=list)

    @property
    def payloads(self) -> dict[str, Payload]:
        return {m.src: m.payload for m in self.messages}

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self):
        return iter(self.messages)


class Node:
    def __init__(self, name: str, *, graph: nx.Graph, data: NodeData, model: nn.Module, transport: Transport,
                 directory: dict[str, str], ledger: Ledger, run_id: str, train_cfg: dict, seed: int,
                 device: torch.device | str = "cpu", recv_timeout: float = 120.0, send_timeout: float = 60.0,
                 compute_lock: threading.Semaphore | None = None, relay: bool = False,
                 config: dict | None = None) -> None:
        self.name = name
        # The validated run configuration (read-only by convention): policies take the global seed
        # from here when every node must agree on a choice, e.g. a round's routing permutation.
        self.config = config or {}
        self.run_seed = self.config.get("seed", 0)
        self.total_rounds = self.config.get("rounds", 0)
        self.graph = graph
        self.device = torch.device(device)
        if any(p.device != self.device for p in itertools.chain(model.parameters(), model.buffers())):
            model = model.to(self.device)
        self.model = model
        if data.x_train.dim() == 4 and self.device.type == "cpu" and any(p.dim() == 4 for p in model.parameters()):
            # oneDNN convolutions are about 1.5x faster in NHWC on CPU; same math, other memory order
            self.model = self.model.to(memory_format=torch.channels_last)
            data = dataclasses.replace(data, x_train=data.x_train.contiguous(memory_format=torch.channels_last),
                                       x_test=data.x_test.contiguous(memory_format=torch.channels_last))
        self.data = data
        self.train_cfg = train_cfg
        self._optimizer: torch.optim.Optimizer | None = None  # built on first use (see `optimizer`)
        self.loss_fn = training.make_loss(train_cfg)
        self.generator = torch.Generator().manual_seed(seed)  # batch order: independent of other threads
        self.rng = np.random.default_rng(seed)                # policy-level choices on this node
        self.transport, self.directory, self.ledger, self.run_id = transport, directory, ledger, run_id
        self.recv_timeout, self.send_timeout = recv_timeout, send_timeout
        self.compute = compute_lock or nullcontext()
        self.relay = relay
        self.policy = None  # set by the runtime; `serve` requests are dispatched to it
        self.dp = None      # fedsim.privacy.dp.DPTrainer when privacy.dp is on
        self.round = 0
        self.missing_log: list[tuple[int, str, str]] = []  # (round, tag, peer) that never arrived
        self._neighbors = sorted(graph.neighbors(name))
        self._neighbor_set = set(self._neighbors)
        self._inbox: dict[tuple[str, int], dict[str, Message]] = {}
        self._cv = tasks.Condition()  # a wait parks the node's task when it runs as one (fedsim/tasks.py)
        self.scheduler: tasks.Scheduler | None = None  # task mode: requests are served as tasks too
        self._seq = itertools.count()
        self._serving: list[threading.Thread] = []  # replies in flight; joined before the ledger is read
        transport.register(name, self._on_message)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer of `model`, made when first used: a node that never trains (or whose policy
        replaces it, e.g. with a prompt learner's) never pays for one."""
        if self._optimizer is None:
            self._optimizer = training.make_optimizer(self.model, self.train_cfg)
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value: torch.optim.Optimizer) -> None:
        self._optimizer = value

    # ------------------------------------------------------------------ topology
    @property
    def neighbors(self) -> list[str]:
        return list(self._neighbors)

    @property
    def degree(self) -> int:
        return len(self._neighbors)

    # ------------------------------------------------------------------ messaging
    def send(self, dst: str, payload: Payload, tag: str, *, round: int | None = None) -> None:
        """Encode `payload`, stream it to `dst` and record it in the ledger. Raises WireError on failure."""
        if dst == self.name:
            raise WireError(f"{self.name}: a node cannot send to itself (tag {tag!r})")
        if dst not in self._neighbor_set and not self.relay:
            raise WireError(f"{self.name}: {dst!r} is not a neighbour (neighbours: {', '.join(self._neighbors)}); "
                            "policies may only send along topology edges")
        if dst not in self.directory:
            raise WireError(f"{self.name}: no address known for node {dst!r}")
        rnd = self.round if round is None else round
        payload = _on_cpu(payload)
        mid = f"{self.name}/{rnd}/{tag}/{next(self._seq)}"
        frames = encode(payload, run_id=self.run_id, round=rnd, src=self.name, dst=dst, tag=tag, message_id=mid,
                        lazy=True)
        t0 = time.perf_counter()
        self.transport.send(self.directory[dst], frames, timeout=self.send_timeout)
        wall = time.perf_counter() - t0
        self._record("sent", rnd, tag, payload.kind, self.name, dst, payload.nbytes, wire_bytes(frames),
                     len(frames), wall, mid)

    def broadcast(self, payload: Payload, tag: str, peers: list[str] | None = None) -> None:
        for peer in self._neighbors if peers is None else peers:
            self.send(peer, payload, tag)

    def recv(self, tag: str, *, expect: list[str] | None = None, round: int | None = None,
             timeout: float | None = None) -> Received:
        """Wait for one message per expected sender (default: all neighbours) with `tag` in `round`.

        Returns the messages sorted by sender. Senders that have not delivered when the timeout
        expires are reported in `missing` (and logged), never waited on forever.
        """
        rnd = self.round if round is None else round
        expect = self._neighbors if expect is None else sorted(set(expect))
        deadline = time.monotonic() + (self.recv_timeout if timeout is None else timeout)
        key = (tag, rnd)
        with self._cv:
            while True:
                box = self._inbox.get(key, {})
                excused = self.excused(rnd)
                if all(src in box or src in excused for src in expect):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            box = self._inbox.get(key, {})
            got = [box.pop(src) for src in expect if src in box]
            if not box:
                self._inbox.pop(key, None)
        missing = [src for src in expect if src not in {m.src for m in got}]
        for src in missing:
            self.missing_log.append((rnd, tag, src))
            log.warning("%s: round %d: no %r message from %s within the timeout; continuing without it",
                        self.name, rnd, tag, src)
        return Received(sorted(got, key=lambda m: m.src), missing)

    def missing_peers(self, round: int) -> set[str]:
        """Peers this node expected in `round` and went without."""
        return {peer for (r, _, peer) in self.missing_log if r == round}

    def excused(self, round: int) -> set[str]:
        """Peers known not to deliver in `round` (e.g. a deployed peer that announced it is leaving):
        `recv` stops waiting for them and reports them missing. A simulation knows of none."""
        return set()

    def request(self, dst: str, tag: str, payload: Payload, *, timeout: float | None = None) -> Payload:
        """Send `payload` to `dst`, have its policy `serve` it, and return the reply (a real round trip)."""
        self.send(dst, payload, REQUEST_PREFIX + tag)
        got = self.recv(REPLY_PREFIX + tag, expect=[dst], timeout=timeout)
        if got.missing:
            raise WireError(f"{self.name}: request {tag!r} to {dst} got no reply within the timeout")
        reply = got.messages[0].payload
        if reply.kind == Kind.CONTROL and "error" in reply.meta:
            raise WireError(f"{self.name}: {dst} could not serve {tag!r}: {reply.meta['error']}")
        return reply

    def drop_stale(self, before_round: int) -> int:
        """Forget undelivered messages of rounds before `before_round` (late arrivals after a timeout)."""
        with self._cv:
            stale = [k for k in self._inbox if k[1] < before_round]
            for k in stale:
                del self._inbox[k]
        return len(stale)

    def join_serving(self, timeout: float | None = None) -> None:
        """Wait until every request this node is serving has sent (and recorded) its reply."""
        with self._cv:
            pending = list(self._serving)
        for t in pending:
            t.join(timeout)

    def _on_message(self, msg: Message) -> None:
        # Runs on a transport thread. Raising WireError refuses the message (the sender sees why).
        if msg.dst != self.name:
            raise WireError(f"message for {msg.dst!r} delivered to {self.name!r}")
        if msg.src not in self._neighbor_set and not self.relay:
            raise WireError(f"{self.name} accepts messages only from its neighbours; {msg.src!r} is not one")
        self._record("recv", msg.round, msg.tag, msg.kind, msg.src, msg.dst, msg.payload_bytes, msg.wire_bytes,
                     msg.frames, 0.0, msg.message_id)
        if msg.tag.startswith(REQUEST_PREFIX):
            with self._cv:
                worker = tasks.start(self._serve, msg, scheduler=self.scheduler, name=f"serve-{self.name}")
                self._serving = [t for t in self._serving if t.is_alive()] + [worker]
            return
        self._deliver(msg)

    def _deliver(self, msg: Message) -> None:
        """Put an admitted, recorded message in the inbox, where recv() finds it."""
        with self._cv:
            box = self._inbox.setdefault((msg.tag, msg.round), {})
            if msg.src in box:
                raise WireError(f"duplicate {msg.tag!r} message from {msg.src} in round {msg.round}")
            box[msg.src] = msg
            self._cv.notify_all()

    def _serve(self, msg: Message) -> None:
        tag = msg.tag[len(REQUEST_PREFIX):]
        try:
            reply = self.policy.serve(self, tag, msg.payload)
        except Exception as exc:  # the requester must hear about it instead of timing out
            log.exception("%s: serving %r for %s failed", self.name, tag, msg.src)
            reply = Payload(Kind.CONTROL, {}, {"error": f"{type(exc).__name__}: {exc}"})
        try:
            self.send(msg.src, reply, REPLY_PREFIX + tag, round=msg.round)
        except WireError:
            log.exception("%s: could not return %r reply to %s", self.name, tag, msg.src)

    def _record(self, side, rnd, tag, kind, src, dst, payload_bytes, wbytes, frames, wall, mid) -> None:
        lat, bw = link_params(self.graph, src, dst) if self.graph.has_edge(src, dst) else (None, None)
        link_s = link_time(lat, bw, wbytes) if lat is not None else float("nan")
        self.ledger.record(LedgerRow(side=side, round=rnd, tag=tag, kind=Kind(kind).name, src=src, dst=dst,
                                     payload_bytes=payload_bytes, wire_bytes=wbytes, frames=frames,
                                     wall_s=wall, link_s=link_s, message_id=mid))

    # ------------------------------------------------------------------ local computation
    def train(self, *, epochs: int | None = None, model: nn.Module | None = None,
              optimizer: torch.optim.Optimizer | None = None, x: torch.Tensor | None = None,
              y: torch.Tensor | None = None, extra_batches: Callable | None = None,
              generator: torch.Generator | None = None) -> float:
        """Train (by default the node's own model on its own data) and return the mean loss.

        With privacy.dp on, every call — any model, tensors, epochs, replay batches — runs as DP-SGD
        and is charged to this node's accountant (fedsim/privacy/dp.py says what that guarantees).
        """
        epochs = self.train_cfg["epochs"] if epochs is None else epochs
        if epochs <= 0:
            return float("nan")
        model = self.model if model is None else model
        optimizer = self.optimizer if optimizer is None else optimizer
        x = self.data.x_train if x is None else x
        y = self.data.y_train if y is None else y
        generator = self.generator if generator is None else generator
        with self.compute:
            if self.dp is not None:
                return self.dp.train(model, optimizer, x, y, epochs=epochs, batch_size=self.train_cfg["batch_size"],
                                     generator=generator, extra_batches=extra_batches, loss_fn=self.loss_fn)
            return training.train_epochs(model, optimizer, x, y, epochs=epochs, batch_size=self.train_cfg["batch_size"],
                                         generator=generator, extra_batches=extra_batches, loss_fn=self.loss_fn,
                                         shuffle=self.train_cfg.get("shuffle", True))

    def confusion(self, model: nn.Module | None = None, x=None, y=None) -> np.ndarray:
        with self.compute:
            return training.confusion(self.model if model is None else model,
                                      self.data.x_test if x is None else x, self.data.y_test if y is None else y,
                                      self.data.num_classes)

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        cm = self.confusion(model)
        return {"test_acc": training.accuracy(cm), "test_bacc": training.balanced_accuracy(cm)}

    # ------------------------------------------------------------------ model state
    def model_payload(self, kind: Kind = Kind.MODEL, **meta) -> Payload:
        return Payload.from_state_dict(self.model.state_dict(), kind, **meta)

    def load_model(self, state: Payload | dict) -> None:
        tensors = state.tensors if isinstance(state, Payload) else state
        own = self.model.state_dict()
        if set(tensors) != set(own):
            raise WireError(f"{self.name}: received model does not match ours: "
                            f"unexpected {sorted(set(tensors) - set(own))[:3]}, missing {sorted(set(own) - set(tensors))[:3]}")
        for k, v in tensors.items():
            v = torch.as_tensor(v)
            if tuple(v.shape) != tuple(own[k].shape):
                raise WireError(f"{self.name}: tensor {k!r} has shape {tuple(v.shape)}, our model needs {tuple(own[k].shape)}")
            own[k].copy_(v)


def _on_cpu(payload: Payload) -> Payload:
    if not any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in payload.tensors.values()):
        return payload
    return Payload(payload.kind, {k: (t.cpu() if isinstance(t, torch.Tensor) else t) for k, t in payload.tensors.items()},
                   dict(payload.meta))
