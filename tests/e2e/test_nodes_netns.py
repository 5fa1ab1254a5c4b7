"""The loopback scenarios again, each node a separate "host": its own Linux network namespace with its
own IP on a veth pair plugged into one bridge, and (where the kernel has sch_tbf) each host's egress
limited to 100 Mbit/s, so a model takes real time on a link. Needs root; skipped only when not root."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess

import pytest

from _cluster import Cluster, federation, run_complete, run_with_a_killed_node

NAMES = ["h0", "h1", "h2", "h3"]
PORT = 50051  # every host may use the same port: they are different hosts now
RATE_MBIT = 100  # the ledger's default modelled link bandwidth, here made real with a token bucket
BURST = 64 * 1024  # bytes the bucket lets through at line rate (>= rate / kernel HZ)

if os.geteuid() != 0:
    reason = f"network namespaces need root (ip netns add); this runs as uid {os.geteuid()}"
    print(f"SKIP test_nodes_netns: {reason}")
    pytest.skip(reason, allow_module_level=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


class Hosts:
    """One namespace per node on a private bridge; `close` removes all of it, whatever happened."""

    def __init__(self, names: list[str], subnet: int) -> None:
        tag = f"fs{os.getpid() % 10000}{subnet % 10}"
        self.bridge = f"{tag}br"
        self.ns = {n: f"{tag}-{n}" for n in names}
        self.addresses = {n: f"10.213.{subnet}.{i + 10}" for i, n in enumerate(names)}
        self.shaping = None  # "tbf": every host's egress limited to RATE_MBIT (where the kernel has sch_tbf)
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("link", "set", self.bridge, "up")
            for i, (name, ns) in enumerate(self.ns.items()):
                outer, inner = f"{tag}v{i}", f"{tag}p{i}"
                ip("netns", "add", ns)
                ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                ip("link", "set", inner, "netns", ns)
                ip("link", "set", outer, "master", self.bridge)
                ip("link", "set", outer, "up")
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "set", inner, "name", "eth0")
                ip("-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
                ip("-n", ns, "link", "set", "eth0", "up")
                if shutil.which("tc") and (i == 0 or self.shaping):  # best effort, all hosts or none
                    ok = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                                         "rate", f"{RATE_MBIT}mbit", "burst", str(BURST), "latency", "200ms"],
                                        capture_output=True, timeout=20).returncode == 0
                    self.shaping = "tbf" if ok else None
        except BaseException:
            self.close()
            raise

    def prefix(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[name]]

    def close(self) -> None:
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)  # takes its veth along
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=20)


@pytest.fixture
def hosts(request):
    made = []

    def make(subnet: int) -> Hosts:
        made.append(Hosts(NAMES, subnet))
        return made[-1]

    yield make
    for h in made:
        h.close()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in leftover for h in made for ns in h.ns.values()), leftover


def cluster_on(hosts: Hosts, tmp_path, rounds: int, recv_timeout: float = 20.0) -> Cluster:
    fed = federation(NAMES, [f"{hosts.addresses[n]}:{PORT}" for n in NAMES], rounds=rounds, recv_timeout=recv_timeout)
    return Cluster(tmp_path, fed, prefix=hosts.prefix)


@pytest.mark.slow
def test_four_hosts_mtls_complete_and_agree(tmp_path, hosts):
    h = hosts(subnet=41)
    cluster = cluster_on(h, tmp_path, rounds=3)
    got = run_complete(cluster, rounds=3)
    if h.shaping:
        # each send waits for its receipt, so its wall time includes pushing the model through 100 Mbit/s
        # (less the token bucket's burst, which leaves at once)
        wire_s = (got["bytes_per_link"] / 3 - BURST) * 8 / (RATE_MBIT * 1e6)
        walls = [float(r["wall_s"]) for n in NAMES for r in csv.DictReader((cluster.out / n / "comm.csv").open())]
        assert min(walls) > wire_s, (min(walls), wire_s)
        got["send_s"] = (round(min(walls), 4), round(sorted(walls)[len(walls) // 2], 4), round(wire_s, 4))
    print(f"\nnetns ({h.shaping or 'unshaped'}; send_s = min, median, bytes/rate): {got}")


@pytest.mark.slow
def test_killed_host_is_reported_missing_and_others_finish(tmp_path, hosts):
    h = hosts(subnet=42)
    killed_at = run_with_a_killed_node(cluster_on(h, tmp_path, rounds=12, recv_timeout=8.0), rounds=12, victim="h2")
    print(f"\nnetns: h2 killed after {killed_at} of 12 rounds")
