"""One hospital's node as a long-lived process: `fedsim node --config federation.yaml --name X`.

The same Node and Policy code as a simulation, with what a real site needs around it:
its own gRPC server (mutual TLS by default, plus the standard gRPC health service), peers from the
federation file, and rounds driven by the node itself — no coordinator. Each round runs the policy;
`recv` waits for the expected neighbours up to runtime.recv_timeout_s and the round carries on
without the ones that are missing or dead (logged, and counted in metrics as missing_peers).
SIGTERM/SIGINT finish the current round, then flush metrics.csv/comm.csv and write a checkpoint.
Outputs per node (same formats as `fedsim run`): config.yaml, topology.graphml, metrics.csv,
comm.csv, comm_received.csv, node.json, node.log, model.pt. A restarted node starts at round 0;
the earlier attempt's files are kept in previous/<n>/.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import torch

from fedsim.assembly import evaluates, run_step
from fedsim.deploy.deployed_node import DeployedNode
from fedsim.deploy.federation import Federation
from fedsim.deploy.health import READY_SERVICE, STARTED_SERVICE, probe_health
from fedsim.errors import WireError
from fedsim.node import Node
from fedsim.outputs import RunWriter
from fedsim.payload import Kind
from fedsim.v1 import wire_pb2
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.ledger import Ledger
from fedsim.wire.tls import TlsFiles, check_sender, credentials

log = logging.getLogger("fedsim.standalone")


class Admission:
    """Checks every incoming header before its payload is read: the TLS identity is the sender and a
    neighbour, the run is ours, and a MODEL payload's tensors fit the policy's model."""

    def __init__(self, node: Node, run_id: str, require_identity: bool) -> None:
        self.node, self.run_id, self.require_identity = node, run_id, require_identity
        self.model_shapes: dict[str, tuple[int, ...]] = {}

    def __call__(self, identity: str | None, header: wire_pb2.Header) -> None:
        node = self.node
        if header.dst != node.name:
            raise WireError(f"frame for {header.dst!r} delivered to node {node.name!r}")
        if self.require_identity:
            check_sender(identity, header.src, header.dst, node.graph, relay=node.relay)
        elif header.src not in node.neighbors and not node.relay:
            raise WireError(f"{node.name} accepts messages only from its neighbours; {header.src!r} is not one")
        if header.run_id != self.run_id:
            raise WireError(f"message of run {header.run_id!r}; this node runs {self.run_id!r}")
        if header.kind == Kind.MODEL and self.model_shapes:
            for spec in header.tensors:
                want = self.model_shapes.get(spec.name)
                if want is None:
                    raise WireError(f"model tensor {spec.name!r} is not part of {node.name}'s model")
                if tuple(spec.shape) != want:
                    raise WireError(f"model tensor {spec.name!r} has shape {tuple(spec.shape)}, "
                                    f"{node.name}'s model needs {want}")


class StandaloneNode:
    def __init__(self, fed: Federation, name: str, *, out_dir: Path, tls_dir: Path | None,
                 listen: str | None = None, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.fed, self.name = fed, name
        spec = fed.node(name)
        self.cfg = cfg = fed.node_config(name)
        rt = cfg["runtime"]
        self.run_id = f"{cfg['name']}/deploy"
        self.stop_requested = threading.Event()
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        moved = keep_previous_attempt(out_dir)
        self._log_handler = logging.FileHandler(out_dir / "node.log")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("fedsim").addHandler(self._log_handler)
        logging.getLogger("fedsim").setLevel(logging.INFO)
        if moved is not None:
            log.warning("%s: %s held an earlier attempt's outputs; moved them to %s", name, out_dir, moved)

        from fedsim.assembly import build_node, preflight
        from fedsim.data import load_federation  # heavy import, after argument errors had their chance
        graph, order = fed.graph, fed.names
        data = load_federation(cfg["data"], order, cfg["seed"], only=[name], base_dir=cfg["_base_dir"])[name]
        preflight(cfg, graph, data)  # the same checks as a simulation's driver, on this site's data
        self.tls = tls_dir is not None
        server_creds = channel_creds = None
        if self.tls:
            server_creds, channel_creds = credentials(TlsFiles.in_dir(tls_dir))
        self._channel_creds = channel_creds
        directory = fed.directory()
        self.admission: Admission | None = None
        self.transport = GrpcTransport(
            *_split(listen or spec.listen), max_payload_bytes=int(rt["max_message_mb"] * 2**20),
            server_credentials=server_creds, channel_credentials=channel_creds,
            authorize=lambda peer, header: self.admission(peer, header) if self.admission else _not_ready(),
            target_names={addr: n for n, addr in directory.items()} if self.tls else None)
        self.ledger = Ledger()
        use_cuda = rt["gpus_per_worker"] > 0 and torch.cuda.is_available()
        # the same node a simulation's WorkerHost builds: data, seeded model, optimizer, DP, policy
        self.node = build_node(cfg, name, graph=graph, order=order, data=data, transport=self.transport,
                               directory=directory, ledger=self.ledger, run_id=self.run_id,
                               device="cuda" if use_cuda else "cpu", node_cls=DeployedNode)
        self.policy = self.node.policy
        self.policy.setup(self.node)
        admission = Admission(self.node, self.run_id, require_identity=self.tls)
        admission.model_shapes = {k: tuple(v.shape) for k, v in self.policy.eval_model(self.node).state_dict().items()}
        self.admission = admission
        self.writer = RunWriter(out_dir, cfg, graph)
        self._shipped = 0
        self.transport.set_serving(READY_SERVICE)
        log.info("%s: serving on %s (%s), neighbours %s", name, self.transport.address,
                 "mutual TLS" if self.tls else "INSECURE plaintext", ", ".join(self.node.neighbors))

    # ------------------------------------------------------------------ lifecycle
    def install_signal_handlers(self) -> None:
        def on_signal(signum, _frame):
            log.warning("%s: %s received: finishing the current round, then stopping",
                        self.name, signal.Signals(signum).name)
            self.stop_requested.set()
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def wait_for_peers(self, timeout: float) -> list[str]:
        """Two-phase start, so that no node waits in round 0 on a neighbour that is itself still
        waiting for one of *its* neighbours: (1) every neighbour is up (health READY_SERVICE), then
        we say so (STARTED_SERVICE); (2) every neighbour has said so. Returns who never came up."""
        deadline = time.monotonic() + timeout
        absent = self._wait(set(self.node.neighbors), READY_SERVICE, deadline)
        self.transport.set_serving(STARTED_SERVICE)
        late = self._wait(set(self.node.neighbors) - set(absent), STARTED_SERVICE, deadline)
        for peer in absent:
            log.warning("%s: neighbour %s not up after %.0f s; starting without it", self.name, peer, timeout)
        for peer in late:
            log.warning("%s: neighbour %s is up but not started after %.0f s; starting anyway", self.name, peer, timeout)
        return absent

    def _wait(self, waiting: set[str], service: str, deadline: float) -> list[str]:
        while waiting and time.monotonic() < deadline and not self.stop_requested.is_set():
            for peer in sorted(waiting):
                if probe_health(self.fed.nodes[peer].address, self._channel_creds, peer, timeout=1.0, service=service):
                    waiting.discard(peer)
            if waiting:
                time.sleep(0.1)
        return sorted(waiting)

    def run(self) -> dict:
        cfg = self.cfg
        t_start = time.time()
        absent = self.wait_for_peers(self.fed.deploy["startup_timeout_s"])
        final: dict[str, float] = {}
        round_s: list[float] = []
        status, r = "completed", 0
        try:
            for r in range(cfg["rounds"]):
                if self.stop_requested.is_set():
                    status = f"stopped before round {r}"
                    break
                t0 = time.perf_counter()
                metrics = self._round(r)
                round_s.append(time.perf_counter() - t0)
                final.update(metrics)
                self.writer.metrics([(r, self.name, k, v) for k, v in metrics.items()])
                self.writer.ledger(self._new_rows())
                log.info("%s: round %d done in %.2f s: %s", self.name, r, round_s[-1],
                         ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
            else:
                r = cfg["rounds"]
        except BaseException as exc:
            status = f"failed in round {r}: {type(exc).__name__}: {exc}"
            log.exception("%s: round %d failed", self.name, r)
            raise
        finally:
            if status != "completed":  # neighbours stop waiting for us now rather than after a timeout
                self.node.announce_leave(r, status)
            self.node.join_serving(timeout=cfg["runtime"]["send_timeout_s"])
            # Stop accepting before the last flush (in-flight deliveries finish first): a message
            # taken in after it would be in the sender's comm.csv and in no comm_received.csv.
            self.transport.close()
            self.writer.ledger(self._new_rows())
            summary = self._summary(status, r, final, round_s, absent, time.time() - t_start)
            (self.out_dir / "node.json").write_text(json.dumps(summary, indent=2, default=float))
            torch.save({"round": r, "model": self.node.model.state_dict(), "policy": self.policy.state_dict(),
                        "optimizer": self.node.optimizer.state_dict()}, self.out_dir / "model.pt")
        return summary

    def _round(self, r: int) -> dict[str, float]:
        return run_step(self.node, r, evaluate=evaluates(self.cfg, r))

    def _new_rows(self) -> list:
        rows = self.ledger.rows()
        new, self._shipped = rows[self._shipped:], len(rows)
        return new

    def _summary(self, status, rounds_done, final, round_s, absent, wall_s) -> dict:
        missing: dict[str, list[int]] = {}
        for rnd, _, peer in self.node.missing_log + self.node.unreachable_log:
            missing.setdefault(peer, [])
            if rnd not in missing[peer]:
                missing[peer].append(rnd)
        return {"node": self.name, "name": self.cfg["name"], "run_id": self.run_id, "policy": self.cfg["policy"]["name"],
                "rounds": self.cfg["rounds"], "rounds_done": rounds_done, "status": status,
                "address": self.fed.nodes[self.name].address, "tls": self.tls, "neighbors": self.node.neighbors,
                "absent_at_start": absent, "missing": {p: sorted(v) for p, v in sorted(missing.items())},
                "final": final, "round_s": [round(t, 4) for t in round_s], "wall_s": round(wall_s, 3)}

    def close(self) -> None:
        self.writer.close()
        self.transport.close()
        logging.getLogger("fedsim").removeHandler(self._log_handler)
        self._log_handler.close()


def keep_previous_attempt(out_dir: Path) -> Path | None:
    """A restarted node (e.g. by the container's restart policy) must not overwrite what the crashed
    attempt wrote: move it to out_dir/previous/<n>/ first."""
    files = [p for p in out_dir.iterdir() if p.is_file()]
    if not files:
        return None
    n = 1
    while (out_dir / "previous" / str(n)).exists():
        n += 1
    dest = out_dir / "previous" / str(n)
    dest.mkdir(parents=True)
    for p in files:
        p.rename(dest / p.name)
    return dest


def _split(address: str) -> tuple[str, int]:
    from fedsim.deploy.federation import split_address
    host, port = split_address("listen", address)
    return host, port


def _not_ready() -> None:
    raise WireError("node is still starting up")
