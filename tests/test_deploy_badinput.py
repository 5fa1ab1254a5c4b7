"""A deployed node under bad input: each refused with a clear message, nothing reaches the model,
and the node keeps serving. The node is a real StandaloneNode with mutual TLS on a real port; the
attackers are real GrpcTransports with their own (valid, rogue or missing) certificates."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fedsim.deploy.certs import make_ca, make_node_cert, write_certs, _pem, _write_key
from fedsim.deploy.federation import load_federation_file
from fedsim.errors import WireError
from fedsim.payload import Kind, Payload
from fedsim.deploy.health import probe_health
from fedsim.deploy.standalone import StandaloneNode
from fedsim.wire.codec import encode
from fedsim.wire.grpc_transport import GrpcTransport
from fedsim.wire.tls import TlsFiles, credentials

sys.path.insert(0, str(Path(__file__).parent / "e2e"))
from _cluster import federation, free_ports  # noqa: E402

NAMES = ["h0", "h1", "h2", "h3"]  # ring: h0's neighbours are h1 and h3; h2 is not one


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    fed_raw = federation(NAMES, [f"127.0.0.1:{p}" for p in free_ports(4)], rounds=2)
    fed_raw["runtime"]["max_message_mb"] = 1.0  # a model is ~0.4 MB; 1 MiB is the limit under test
    (tmp / "federation.yaml").write_text(yaml.safe_dump(fed_raw))
    fed = load_federation_file(tmp / "federation.yaml")
    write_certs(fed, tmp / "certs")
    node = StandaloneNode(fed, "h0", out_dir=tmp / "out", tls_dir=tmp / "certs" / "h0", threads=1)
    before = copy.deepcopy(node.node.model.state_dict())
    yield tmp, fed, node, before
    node.close()


def client(tmp: Path, name: str, certs: Path | None = None, *, server_name: str = "h0", address: str = "") -> GrpcTransport:
    folder = certs if certs is not None else tmp / "certs" / name
    creds = credentials(TlsFiles.in_dir(folder))
    return GrpcTransport("127.0.0.1", 0, server_credentials=creds[0], channel_credentials=creds[1],
                         target_names={address: server_name})


def frames_for(node: StandaloneNode, src: str, payload: Payload | None = None, *, dst: str = "h0", tag: str = "model"):
    payload = payload if payload is not None else node.node.model_payload(Kind.MODEL)
    return encode(payload, run_id=node.run_id, round=0, src=src, dst=dst, tag=tag, message_id=f"{src}/0/{tag}/x")


def refused(tmp, node, sender: str, frames, certs: Path | None = None) -> str:
    address = node.transport.address
    with client(tmp, sender, certs, address=address) as t:
        with pytest.raises(WireError) as err:
            t.send(address, frames, timeout=10)
    print(f"{sender}: {err.value}")  # shown with -s: what an operator would read
    return str(err.value)


def assert_untouched(node: StandaloneNode, before: dict) -> None:
    assert node.ledger.rows("recv") == []          # nothing was even accepted for the ledger
    assert node.node._inbox == {}                  # nothing waits for the policy
    for k, v in node.node.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_peer_with_certificate_from_another_ca(site):
    tmp, fed, node, before = site
    rogue = tmp / "rogue"
    rogue.mkdir()
    ca_key, ca_cert = make_ca("rogue")
    key, cert = make_node_cert("h1", ["127.0.0.1"], ca_key, ca_cert)  # claims to be a real neighbour
    _write_key(rogue / "node.key", key)
    (rogue / "node.pem").write_bytes(_pem(cert))
    (rogue / "ca.pem").write_bytes((tmp / "certs" / "ca.pem").read_bytes())  # trusts the real CA itself
    msg = refused(tmp, node, "h1", frames_for(node, "h1"), certs=rogue)
    assert f"peer at {node.transport.address} unreachable" in msg and "from the federation's CA" in msg, msg
    assert_untouched(node, before)


def test_plaintext_peer_cannot_talk_to_a_tls_node(site):
    tmp, fed, node, before = site
    with GrpcTransport("127.0.0.1", 0) as t:
        with pytest.raises(WireError, match="unreachable|failed"):
            t.send(node.transport.address, frames_for(node, "h1"), timeout=10)
    assert_untouched(node, before)


def test_non_neighbour_with_a_valid_certificate(site):
    tmp, fed, node, before = site
    msg = refused(tmp, node, "h2", frames_for(node, "h2"))
    assert "REFUSED" in msg and "'h2' is not a topology neighbour of 'h0'" in msg, msg
    assert "'h2' is not a topology neighbour" in (tmp / "out" / "node.log").read_text()
    assert_untouched(node, before)


def test_certificate_and_header_sender_must_agree(site):
    tmp, fed, node, before = site
    msg = refused(tmp, node, "h2", frames_for(node, "h1"))  # h2's certificate, h1 in the header
    assert "certificate belongs to 'h2' but the header claims sender 'h1'" in msg, msg
    assert_untouched(node, before)


def test_frame_for_another_node(site):
    tmp, fed, node, before = site
    msg = refused(tmp, node, "h1", frames_for(node, "h1", dst="h3"))
    assert "UNKNOWN_DESTINATION" in msg and "no node 'h3' registered" in msg, msg
    assert_untouched(node, before)


def test_truncated_stream(site):
    tmp, fed, node, before = site
    frames = frames_for(node, "h1")
    assert len(frames) >= 2
    msg = refused(tmp, node, "h1", frames[:-1])
    assert "PARTIAL" in msg or "CORRUPT" in msg, msg
    assert_untouched(node, before)


def test_payload_above_the_limit(site):
    tmp, fed, node, before = site
    big = Payload(Kind.SAMPLES, {"x": torch.zeros(300_000)}, {})  # 1.2 MB > runtime.max_message_mb = 1
    msg = refused(tmp, node, "h1", frames_for(node, "h1", big, tag="samples"))
    assert "OVERSIZED" in msg, msg
    assert_untouched(node, before)


def test_model_with_wrong_tensor_shapes(site):
    tmp, fed, node, before = site
    state = {k: v.clone() for k, v in node.node.model.state_dict().items()}
    name = next(k for k, v in state.items() if v.dim() == 2)
    state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
    msg = refused(tmp, node, "h1", frames_for(node, "h1", Payload(Kind.MODEL, state, {})))
    assert "REFUSED" in msg and f"model tensor '{name}' has shape" in msg and "h0's model needs" in msg, msg
    state.pop(name)
    state["backdoor.weight"] = torch.zeros(3)
    msg = refused(tmp, node, "h1", frames_for(node, "h1", Payload(Kind.MODEL, state, {})))
    assert "'backdoor.weight' is not part of h0's model" in msg, msg
    assert_untouched(node, before)


def test_node_keeps_serving_after_bad_input(site):
    """Runs last in this module: after every attack above, a neighbour's honest model still gets in."""
    tmp, fed, node, before = site
    address = node.transport.address
    creds = credentials(TlsFiles.in_dir(tmp / "certs" / "h1"))[1]
    assert probe_health(address, creds, "h0")
    assert not probe_health(address, None, "h0")  # the health service, too, is behind mutual TLS
    with client(tmp, "h1", address=address) as t:
        receipt = t.send(address, frames_for(node, "h1"), timeout=10)
    assert receipt.ok
    got = node.node.recv("model", expect=["h1"], round=0, timeout=5)
    assert [m.src for m in got] == ["h1"] and got.missing == []
    assert len(node.ledger.rows("recv")) == 1


def test_server_identity_is_checked_by_the_client(site):
    """A client that means to reach h3 but lands on h0's port refuses h0's certificate."""
    tmp, fed, node, before = site
    address = node.transport.address
    with client(tmp, "h1", server_name="h3", address=address) as t:
        with pytest.raises(WireError, match="unreachable|failed"):
            t.send(address, frames_for(node, "h1"), timeout=10)


def test_insecure_node_still_admits_only_neighbours(site, tmp_path):
    """--insecure drops authentication, not authorization by topology or the model check."""
    tmp, fed, _, _ = site
    node = StandaloneNode(fed, "h1", out_dir=tmp_path / "out", tls_dir=None, threads=1)
    try:
        address = node.transport.address
        with GrpcTransport("127.0.0.1", 0) as t:
            with pytest.raises(WireError, match="accepts messages only from its neighbours; 'h3' is not one"):
                t.send(address, frames_for(node, "h3", dst="h1"), timeout=10)
            assert t.send(address, frames_for(node, "h2", dst="h1"), timeout=10).ok
        assert [r.src for r in node.ledger.rows("recv")] == ["h2"]
    finally:
        node.close()


def test_container_health_check_command(site):
    """The compose health check: `fedsim deploy health` with the node's own certificate over mTLS."""
    import subprocess
    from _cluster import FEDSIM

    tmp, fed, node, _ = site
    base = [FEDSIM, "deploy", "health", str(tmp / "federation.yaml"), "--name", "h0"]
    ok = subprocess.run(base + ["--certs", str(tmp / "certs" / "h0"), "--address", node.transport.address],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "h0 at" in ok.stdout and "SERVING" in ok.stdout, ok.stdout + ok.stderr
    plain = subprocess.run(base + ["--insecure", "--timeout", "1"], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 1 and "NOT SERVING" in plain.stdout, plain.stdout + plain.stderr
