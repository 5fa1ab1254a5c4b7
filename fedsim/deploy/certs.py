"""`fedsim deploy certs`: a private CA for the federation and one key/certificate per node.

Layout (what a site copies is its own folder only; ca.key stays with whoever runs this):
    certs/ca.pem, certs/ca.key          the federation's CA (keep ca.key offline)
    certs/<node>/ca.pem                 the CA certificate, to verify peers
    certs/<node>/node.pem, node.key     this node's certificate and private key
A node certificate's common name is the node name: the receiver authorizes a sender by it.
Its subject alternative names are the node name and the host of its address, so TLS clients can
check the server they reach is the node they meant.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedsim.deploy.federation import Federation, is_ip
from fedsim.errors import FedsimError

CA_CERT, CA_KEY, NODE_CERT, NODE_KEY = "ca.pem", "ca.key", "node.pem", "node.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never world-readable, even briefly
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(name: str, days: int = 825) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fedsim CA {name}"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedsim federation")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_node_cert(name: str, hosts: list[str], ca_key, ca_cert: x509.Certificate, days: int = 825):
    key = _key()
    sans: list[x509.GeneralName] = [x509.DNSName(name)]
    for host in hosts:
        if is_ip(host):
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        elif host != name:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedsim federation")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _load_ca(out: Path):
    try:
        key = serialization.load_pem_private_key((out / CA_KEY).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((out / CA_CERT).read_bytes())
    except (OSError, ValueError) as exc:
        raise FedsimError(f"{out}: cannot read the existing CA ({exc}); use --force to create a new one") from None
    return key, cert


def write_certs(fed: Federation, out: Path, *, force: bool = False, days: int = 825) -> list[Path]:
    """Create (or reuse, unless force) the CA in `out` and issue every node a fresh key and certificate."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / CA_KEY).exists() and not force:
        ca_key, ca_cert = _load_ca(out)  # adding a node later must not invalidate the others
    else:
        ca_key, ca_cert = make_ca(fed.cfg["name"], days)
        _write_key(out / CA_KEY, ca_key)
        (out / CA_CERT).write_bytes(_pem(ca_cert))
    written = []
    for name, spec in fed.nodes.items():
        d = out / name
        d.mkdir(exist_ok=True)
        key, cert = make_node_cert(name, [spec.host], ca_key, ca_cert, days)
        _write_key(d / NODE_KEY, key)
        (d / NODE_CERT).write_bytes(_pem(cert))
        (d / CA_CERT).write_bytes(_pem(ca_cert))
        written.append(d)
    return written


def node_cert_dir(certs_root: Path, name: str) -> Path:
    """A node's certificate folder: certs_root/<name> when the full tree is there, else certs_root itself
    (a site that only received its own folder, or a container with it mounted at /certs)."""
    sub = certs_root / name
    return sub if (sub / NODE_CERT).is_file() else certs_root
