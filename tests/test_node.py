"""Node primitives over real gRPC sockets: send/recv ordering, timeouts, refusals, request/serve."""
from __future__ import annotations

import networkx as nx
import pytest
import torch

from fedsim.data.node_data import NodeData
from fedsim.errors import WireError
from fedsim.node import Node
from fedsim.payload import Kind, Payload
from fedsim.policies.base import Policy
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.ledger import Ledger


class EchoDouble(Policy):
    name = "echo"

    def serve(self, node, tag, payload):
        assert tag == "double"
        return Payload(Kind.MODEL, {"w": torch.as_tensor(payload.tensors["w"]) * 2})


def _data(name):
    x = torch.zeros(4, 3)
    y = torch.tensor([0, 1, 0, 1])
    return NodeData(name, x, y, x, y, 2, (3,), ["a", "b"])


@pytest.fixture
def trio():
    """Nodes a-b-c on a line (a and c are not neighbours), each with its own gRPC server."""
    graph = nx.path_graph(["a", "b", "c"])
    nx.set_edge_attributes(graph, 5.0, "latency_ms")
    nx.set_edge_attributes(graph, 100.0, "bandwidth_mbps")
    transports = {n: GrpcTransport("127.0.0.1", 0) for n in graph}
    directory = {n: t.address for n, t in transports.items()}
    ledger = Ledger()
    nodes = {}
    for i, n in enumerate(graph):
        nodes[n] = Node(n, graph=graph, data=_data(n), model=torch.nn.Linear(3, 2), transport=transports[n],
                        directory=directory, ledger=ledger, run_id="t", seed=i,
                        train_cfg={"lr": 0.1, "optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0,
                                   "epochs": 1, "batch_size": 2},
                        recv_timeout=5.0, send_timeout=5.0)
        nodes[n].policy = EchoDouble()
    yield nodes, ledger
    for t in transports.values():
        t.close()


def test_recv_sorted_by_sender_and_ledger_both_sides(trio):
    nodes, ledger = trio
    nodes["c"].send("b", Payload(Kind.MODEL, {"v": torch.ones(3)}), "m")
    nodes["a"].send("b", Payload(Kind.MODEL, {"v": torch.zeros(3)}), "m")
    got = nodes["b"].recv("m")
    assert [m.src for m in got] == ["a", "c"] and not got.missing
    assert torch.equal(torch.as_tensor(got.payloads["c"].tensors["v"]), torch.ones(3))
    sent = [r for r in ledger.rows() if r.side == "sent"]
    recv = [r for r in ledger.rows() if r.side == "recv"]
    assert sum(r.wire_bytes for r in sent) == sum(r.wire_bytes for r in recv) > 0
    assert all(r.link_s > 0.005 for r in sent)  # latency 5 ms + transfer time


def test_missing_sender_reported_after_timeout(trio):
    nodes, _ = trio
    nodes["a"].send("b", Payload(Kind.MODEL, {"v": torch.ones(1)}), "m")
    got = nodes["b"].recv("m", timeout=0.5)
    assert [m.src for m in got] == ["a"] and got.missing == ["c"]
    assert nodes["b"].missing_log == [(0, "m", "c")]


def test_non_neighbour_send_is_an_error(trio):
    nodes, _ = trio
    with pytest.raises(WireError, match="not a neighbour"):
        nodes["a"].send("c", Payload(Kind.MODEL, {"v": torch.ones(1)}), "m")


def test_receiver_refuses_non_neighbour_even_if_sender_cheats(trio):
    nodes, _ = trio
    nodes["a"].relay = True  # a misbehaving sender that ignores the topology
    with pytest.raises(WireError, match="accepts messages only from its neighbours"):
        nodes["a"].send("c", Payload(Kind.MODEL, {"v": torch.ones(1)}), "m")
    assert nodes["c"].recv("m", expect=["a"], timeout=0.2).missing == ["a"]


def test_request_is_a_real_round_trip(trio):
    nodes, ledger = trio
    reply = nodes["a"].request("b", "double", Payload(Kind.MODEL, {"w": torch.arange(4.0)}))
    assert torch.equal(torch.as_tensor(reply.tensors["w"]), torch.arange(4.0) * 2)
    nodes["b"].join_serving()
    tags = sorted((r.side, r.tag, r.src, r.dst) for r in ledger.rows())
    assert ("sent", "req:double", "a", "b") in tags and ("sent", "rep:double", "b", "a") in tags
    assert ("recv", "rep:double", "b", "a") in tags


def test_request_error_comes_back(trio):
    nodes, _ = trio
    with pytest.raises(WireError, match="could not serve 'unknown'"):
        nodes["a"].request("b", "unknown", Payload(Kind.CONTROL, {}))


def test_load_model_rejects_wrong_shapes(trio):
    nodes, _ = trio
    with pytest.raises(WireError, match="shape"):
        nodes["a"].load_model({"weight": torch.zeros(5, 3), "bias": torch.zeros(2)})
    with pytest.raises(WireError, match="does not match"):
        nodes["a"].load_model({"weight": torch.zeros(2, 3)})
