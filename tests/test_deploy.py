"""Deployment kit: federation file validation, certificates, compose file (against the Compose
specification schema), and the Docker entrypoint running the same command the e2e tests run."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from fedsim.deploy.certs import write_certs
from fedsim.deploy.compose import compose_dict
from fedsim.deploy.federation import load_federation_file, parse_federation
from fedsim.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "e2e"))
from _cluster import FEDSIM, NODE_COMMAND, NODE_FLAGS, federation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose_spec.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)  # the file says 2019-09 but uses only draft-7 keywords


def fed_file(tmp_path, **changes) -> Path:
    fed = federation(["hospital-a", "hospital-b", "hospital-c", "hospital-d"],
                     [f"hospital-{c}:50051" for c in "abc"] + ["10.20.0.4:50051"], rounds=2)
    fed["nodes"]["hospital-a"].update(gpu=True, data_dir="sites/a")
    fed.update(changes)
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(fed, sort_keys=False))
    return path


def test_federation_file_parses(tmp_path):
    fed = load_federation_file(fed_file(tmp_path))
    assert fed.names == ["hospital-a", "hospital-b", "hospital-c", "hospital-d"]
    assert fed.nodes["hospital-d"].host == "10.20.0.4" and fed.nodes["hospital-d"].port == 50051
    assert sorted(fed.graph.neighbors("hospital-a")) == ["hospital-b", "hospital-d"]
    assert fed.node_config("hospital-a")["data"]["dataset"] == "synthmed"


@pytest.mark.parametrize("mutate, key, fragment", [
    (lambda f: f["nodes"]["h1"].pop("address"), "nodes.h1.address", "host:port"),
    (lambda f: f["nodes"]["h1"].update(address="h1"), "nodes.h1.address", "host:port"),
    (lambda f: f["nodes"]["h1"].update(address="h1:70000"), "nodes.h1.address", "port must be"),
    (lambda f: f["nodes"]["h1"].update(address=f["nodes"]["h0"]["address"]), "nodes.h1.address", "h0 has it too"),
    (lambda f: f["nodes"]["h1"].update(colour="red"), "nodes.h1.colour", "unknown key"),
    (lambda f: f["nodes"].pop("h3"), "nodes", "only in topology: ['h3']"),
    (lambda f: f.pop("topology"), "topology", "must name its topology"),
    (lambda f: f.update(deploy={"restart": "sometimes"}), "deploy.restart", "unless-stopped"),
    (lambda f: f["nodes"]["h1"].update(gpu="yes"), "nodes.h1.gpu", "true or false"),
])
def test_federation_file_errors_name_the_key(tmp_path, mutate, key, fragment):
    raw = federation(["h0", "h1", "h2", "h3"], [f"h{i}:5005{i}" for i in range(4)], rounds=2)
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_federation(raw, tmp_path / "f.yaml")
    assert err.value.key == key and fragment in str(err.value)


def test_certs_ca_and_one_cert_per_node(tmp_path):
    path = fed_file(tmp_path)
    run = subprocess.run([FEDSIM, "deploy", "certs", str(path), "-o", str(tmp_path / "certs")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    ca = x509.load_pem_x509_certificate((tmp_path / "certs" / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name, host in [("hospital-a", "hospital-a"), ("hospital-d", "10.20.0.4")]:
        d = tmp_path / "certs" / name
        cert = x509.load_pem_x509_certificate((d / "node.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in san.get_values_for_type(x509.DNSName)
        if host != name:
            assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [host]
        assert stat.S_IMODE(os.stat(d / "node.key").st_mode) == 0o600
        assert (d / "ca.pem").read_bytes() == (tmp_path / "certs" / "ca.pem").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "certs" / "ca.key").st_mode) == 0o600
    # a second run reuses the CA (adding a site must not invalidate the others) unless forced
    write_certs(load_federation_file(path), tmp_path / "certs")
    assert (tmp_path / "certs" / "ca.pem").read_bytes() == ca.public_bytes(__import__("cryptography").hazmat
                                                                            .primitives.serialization.Encoding.PEM)
    write_certs(load_federation_file(path), tmp_path / "certs", force=True)
    assert x509.load_pem_x509_certificate((tmp_path / "certs" / "ca.pem").read_bytes()) != ca


def test_compose_file_matches_the_compose_specification(tmp_path):
    path = fed_file(tmp_path)
    out = tmp_path / "deploy" / "compose.yaml"
    run = subprocess.run([FEDSIM, "deploy", "compose", str(path), "-o", str(out)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    doc = yaml.safe_load(out.read_text())
    VALIDATOR.validate(doc)
    services = doc["services"]
    assert list(services) == ["hospital-a", "hospital-b", "hospital-c", "hospital-d"]
    a, d = services["hospital-a"], services["hospital-d"]
    assert a["environment"]["FEDSIM_NODE"] == "hospital-a" and a["hostname"] == "hospital-a"
    assert "hostname" not in d  # an IP address is the network's business, not a hostname
    mounts = {v["target"]: v for v in a["volumes"]}
    assert mounts["/certs"]["source"] == "../certs/hospital-a" and mounts["/certs"]["read_only"]
    assert mounts["/data"]["source"] == "../sites/a" and mounts["/data"]["read_only"]
    assert mounts["/etc/fedsim/federation.yaml"]["source"] == "../federation.yaml"
    assert "/data" not in {v["target"] for v in d["volumes"]}
    assert a["ports"] == ["50051:50051"] and a["restart"] == "on-failure"
    assert a["labels"]["org.fedsim.address"] == "hospital-a:50051"
    assert a["healthcheck"]["test"][:4] == ["CMD", "fedsim", "deploy", "health"]
    assert a["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "deploy" not in d
    # the schema is not a formality: a wrong type is caught
    bad = compose_dict(load_federation_file(path), out.parent)
    bad["services"]["hospital-a"]["restart"] = ["always"]
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(bad)


def test_dockerfile_entrypoint_runs_the_tested_node_command(tmp_path):
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile, re.M).group(1)
    copied = re.search(r"^COPY docker/entrypoint.sh (\S+)$", dockerfile, re.M).group(1)
    assert entry == copied
    assert re.search(r"^ARG BASE=python:3\.11-slim$", dockerfile, re.M)  # CPU by default, CUDA via --build-arg
    assert "whl/cpu" in dockerfile
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    words = exec_line.split()[1:]
    assert tuple(words[:2]) == NODE_COMMAND
    assert [w for w in words if w.startswith("--")] == list(NODE_FLAGS)
    # and the script really starts that command: here it must reach `fedsim node`'s own checks
    fed = fed_file(tmp_path)
    env = {**os.environ, "PATH": f"{Path(FEDSIM).parent}:{os.environ['PATH']}", "FEDSIM_NODE": "nobody",
           "FEDSIM_CONFIG": str(fed), "FEDSIM_CERTS": str(tmp_path), "FEDSIM_OUT": str(tmp_path / "out")}
    run = subprocess.run(["sh", str(ROOT / "docker" / "entrypoint.sh")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2 and "config key '--name': got 'nobody'" in run.stderr, run.stderr
    run = subprocess.run(["sh", str(ROOT / "docker" / "entrypoint.sh")], env={**env, "FEDSIM_NODE": ""},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "set FEDSIM_NODE" in run.stderr


def test_node_without_certificates_says_how_to_get_them(tmp_path):
    run = subprocess.run([FEDSIM, "node", "--config", str(fed_file(tmp_path)), "--name", "hospital-b",
                          "--certs", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "TLS files missing" in run.stderr and "fedsim deploy certs" in run.stderr and "--insecure" in run.stderr


def test_restarted_node_keeps_the_previous_attempt(tmp_path):
    from fedsim.deploy.standalone import keep_previous_attempt

    out = tmp_path / "h0"
    out.mkdir()
    assert keep_previous_attempt(out) is None
    for attempt in (1, 2):
        (out / "metrics.csv").write_text(f"attempt {attempt}\n")
        (out / "comm.csv").write_text("x\n")
        assert keep_previous_attempt(out) == out / "previous" / str(attempt)
        assert [p.name for p in out.iterdir()] == ["previous"]
    assert (out / "previous" / "1" / "metrics.csv").read_text() == "attempt 1\n"
    assert (out / "previous" / "2" / "metrics.csv").read_text() == "attempt 2\n"
