"""Real `fedsim node` processes for the end-to-end tests: write a federation, start, watch, clean up.

`NODE_COMMAND` is the command line the Docker entrypoint runs too (tests/test_deploy.py checks it).
Every process gets its own session, so cleanup kills it with everything it started.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

FEDSIM = str(Path(sys.executable).parent / "fedsim")
NODE_COMMAND = ("fedsim", "node")   # + --config F --name N --certs D --out O
NODE_FLAGS = ("--config", "--name", "--certs", "--out")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def federation(names: list[str], addresses: list[str], *, rounds: int, recv_timeout: float = 20.0) -> dict:
    """A ring of len(names) hospitals running gossip on a tiny synthetic task with an MLP."""
    return {
        "name": "e2e", "seed": 3, "rounds": rounds,
        "topology": {"generator": "ring", "n": len(names), "names": list(names)},
        "data": {"dataset": "synthmed", "samples_per_node": 80, "num_classes": 2, "image_size": 16},
        "model": {"name": "mlp"},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.05},
        "policy": {"name": "gossip"},
        "runtime": {"recv_timeout_s": recv_timeout, "send_timeout_s": 20.0},
        "nodes": {n: {"address": a} for n, a in zip(names, addresses)},
        "deploy": {"startup_timeout_s": 60.0},
    }


class Cluster:
    """`fedsim node` processes for one federation file; `prefix(name)` wraps a command (e.g. ip netns exec)."""

    def __init__(self, root: Path, fed: dict, *, prefix=lambda name: []) -> None:
        self.root, self.fed, self.prefix = root, fed, prefix
        self.names = list(fed["nodes"])
        self.config = root / "federation.yaml"
        self.config.write_text(yaml.safe_dump(fed, sort_keys=False))
        self.certs, self.out = root / "certs", root / "out"
        self.procs: dict[str, subprocess.Popen] = {}
        run = subprocess.run([FEDSIM, "deploy", "certs", str(self.config), "-o", str(self.certs)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr

    def command(self, name: str) -> list[str]:
        args = [*NODE_COMMAND, "--config", str(self.config), "--name", name, "--certs", str(self.certs / name),
                "--out", str(self.out / name)]
        return [*self.prefix(name), FEDSIM, *args[1:], "--threads", "1"]

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        for name in self.names:
            log = open(self.root / f"{name}.stderr", "w")
            self.procs[name] = subprocess.Popen(self.command(name), stdout=log, stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
            log.close()

    def wait(self, timeout: float = 150.0, names=None) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        codes = {}
        for name in names or self.names:
            left = max(0.1, deadline - time.monotonic())
            try:
                codes[name] = self.procs[name].wait(left)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"node {name} still running after {timeout:.0f} s:\n{self.stderr(name)}") from None
        return codes

    def stderr(self, name: str) -> str:
        return (self.root / f"{name}.stderr").read_text()[-4000:]

    def rounds_done(self, name: str) -> int:
        path = self.out / name / "metrics.csv"
        if not path.is_file():
            return 0
        with path.open() as f:  # the node may be writing its first line right now
            return len({row["round"] for row in csv.DictReader(f) if row.get("round") is not None})

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        os.killpg(self.procs[name].pid, sig)
        return self.procs[name].wait(60)

    def close(self) -> None:
        """Kill whatever is still running (and its children): called in `finally`, also after failures."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)

    # ---------------------------------------------------------------- outputs
    def summary(self, name: str) -> dict:
        return json.loads((self.out / name / "node.json").read_text())

    def link_bytes(self, names, side: str) -> Counter:
        """(src, dst) -> (messages, wire bytes, payload bytes) summed from each node's own ledger file."""
        file = "comm.csv" if side == "sent" else "comm_received.csv"
        totals: Counter = Counter()
        for name in names:
            for row in csv.DictReader((self.out / name / file).open()):
                key = (row["src"], row["dst"])
                totals[key + ("messages",)] += 1
                totals[key + ("wire",)] += int(row["wire_bytes"])
                totals[key + ("payload",)] += int(row["payload_bytes"])
        return totals


def final_metrics(cluster: Cluster, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in csv.DictReader((cluster.out / name / "metrics.csv").open()):
        out[row["metric"]] = float(row["value"])
    return out


# ------------------------------------------------------------------ the two scenarios both e2e tests run
def check_balanced(cluster: Cluster, names: list[str]) -> dict:
    """Per link between `names`: what the sender's ledger says it sent is what the receiver's says it got."""
    sent, recv = cluster.link_bytes(names, "sent"), cluster.link_bytes(names, "recv")
    inner = {k for k in set(sent) | set(recv) if k[0] in names and k[1] in names}
    for key in sorted(inner):
        assert sent[key] == recv[key], f"{key}: sent {sent[key]} != received {recv[key]}"
    return {k[:2]: sent[k] for k in inner if k[2] == "wire"}


def run_complete(cluster: Cluster, rounds: int) -> dict:
    """All nodes run to the end: every exit code 0, no one missing, every ring link balanced and equal."""
    names = cluster.names
    t0 = time.monotonic()
    try:
        cluster.start()
        codes = cluster.wait()
    finally:
        cluster.close()
    wall = time.monotonic() - t0
    assert codes == {n: 0 for n in names}, {n: cluster.stderr(n) for n in names}
    for name in names:
        s = cluster.summary(name)
        assert (s["status"], s["rounds_done"], s["tls"], s["missing"]) == ("completed", rounds, True, {}), s
        assert final_metrics(cluster, name)["peers_heard"] == 2.0
    per_link = check_balanced(cluster, names)
    ring = {(a, b) for i, a in enumerate(names) for b in (names[i - 1], names[(i + 1) % len(names)])}
    assert set(per_link) == ring
    assert len(set(per_link.values())) == 1  # same model, same rounds: every link carried the same bytes
    merged = subprocess.run([FEDSIM, "report", str(cluster.out)], capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0 and "ledger balanced: True" in merged.stdout, merged.stdout + merged.stderr
    summary = json.loads((cluster.out / "summary.json").read_text())
    assert summary["nodes"] == len(names) and summary["ledger_balanced"]
    return {"wall_s": wall, "bytes_per_link": next(iter(per_link.values())),
            "round_s": {n: cluster.summary(n)["round_s"] for n in names}}


def run_with_a_killed_node(cluster: Cluster, rounds: int, victim: str, sig: int = signal.SIGKILL) -> int:
    """Signal `victim` once it finished a round; the others must finish and name it missing.

    SIGKILL: a dead host. SIGTERM: a graceful stop — the victim finishes its round, flushes its
    logs, writes node.json and model.pt and exits 0."""
    survivors = [n for n in cluster.names if n != victim]
    try:
        cluster.start()
        deadline = time.monotonic() + 150
        while cluster.rounds_done(victim) < 1:
            assert time.monotonic() < deadline and cluster.procs[victim].poll() is None, cluster.stderr(victim)
            time.sleep(0.02)
        victim_code = cluster.kill(victim, sig)
        codes = cluster.wait(names=survivors)
    finally:
        cluster.close()
    killed_at = cluster.rounds_done(victim)
    assert killed_at < rounds, "the victim finished before it was killed; the test proves nothing"
    assert codes == {n: 0 for n in survivors}, {n: cluster.stderr(n) for n in survivors}
    for name in survivors:
        s = cluster.summary(name)
        assert (s["status"], s["rounds_done"]) == ("completed", rounds)
        if victim in s["neighbors"]:
            assert victim in s["missing"], s
            assert s["missing"][victim][-1] == rounds - 1  # missing to the end, every round logged
            assert final_metrics(cluster, name)["missing_peers"] == 1.0
            expected = "h2 is leaving the federation" if sig == signal.SIGTERM else "continuing without it"
            assert expected.replace("h2", victim) in (cluster.out / name / "node.log").read_text()
        elif sig == signal.SIGTERM:
            assert s["missing"] == {}, s
        else:
            # a node killed mid-round costs its neighbours one recv timeout, which can make them late
            # for this node in turn (timeouts cascade one hop): allowed, but nobody else may be missing
            i = cluster.names.index(victim)  # the federation is a ring over cluster.names
            victim_neighbours = {cluster.names[i - 1], cluster.names[(i + 1) % len(cluster.names)]}
            assert set(s["missing"]) <= victim_neighbours, s
    merged = subprocess.run([FEDSIM, "report", str(cluster.out)], capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stderr
    if sig == signal.SIGTERM:
        s = cluster.summary(victim)
        assert victim_code == 0 and s["status"] == f"stopped before round {killed_at}", (victim_code, s)
        assert s["rounds_done"] == killed_at and (cluster.out / victim / "model.pt").is_file()
        assert "SIGTERM received: finishing the current round" in (cluster.out / victim / "node.log").read_text()
        check_balanced(cluster, cluster.names)  # a graceful stop leaves no message half-logged
        assert f"stopped before round {killed_at}" in merged.stdout, merged.stdout
    else:
        check_balanced(cluster, survivors)
        assert "killed or crashed" in merged.stdout, merged.stdout
    return killed_at
