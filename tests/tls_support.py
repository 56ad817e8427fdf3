"""A throwaway PKI for the TLS tests, made with the ``openssl`` command line (the
``cryptography`` package is not a project dependency), shared by tests/mllp and tests/e2e.

From one test CA (run with ``openssl ca``, so it keeps the database a CRL is made from):
a server certificate for 127.0.0.1/localhost, an expired server certificate, a client
certificate, a revoked client certificate and the CA's CRL listing it. From a second,
unknown CA: a client certificate nobody trusts.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_CA_CONFIG = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = issued
certificate = ca.crt
private_key = ca.key
serial = serial
crlnumber = crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = any
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
"""
SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    expired_cert: Path
    expired_key: Path
    revoked_cert: Path
    revoked_key: Path
    crl: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _request(d: Path, name: str, subject: str) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=d)


def _sign(d: Path, name: str, ext: str, *dates: str) -> None:
    """Issue ``name``.csr from the test CA (``dates``: ``-startdate``/``-enddate``)."""
    (d / f"{name}.ext").write_text(ext)
    openssl("ca", "-batch", "-config", "ca.cnf", "-notext", "-in", f"{name}.csr",
            "-out", f"{name}.crt", "-extfile", f"{name}.ext", *dates, cwd=d)


def _self_signed_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=Accord Test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_pki(d: Path) -> Certs:
    """Every certificate of the module docstring, under ``d``."""
    for ca in ("ca", "rogue-ca"):
        _self_signed_ca(d, ca)
    (d / "ca.cnf").write_text(_CA_CONFIG)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "crlnumber").write_text("1000\n")
    (d / "issued").mkdir()
    for name, subject in (("server", "/CN=localhost/O=Accord Test"),
                          ("expired", "/CN=localhost/O=Accord Test"),
                          ("client", "/CN=ris-sender/O=Accord Test"),
                          ("revoked", "/CN=old-sender/O=Accord Test")):
        _request(d, name, subject)
    _sign(d, "server", SERVER_EXT)
    _sign(d, "expired", SERVER_EXT, "-startdate", "20200101000000Z",
          "-enddate", "20200201000000Z")
    _sign(d, "client", CLIENT_EXT)
    _sign(d, "revoked", CLIENT_EXT)
    openssl("ca", "-batch", "-config", "ca.cnf", "-revoke", "revoked.crt", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "ca.crl", cwd=d)
    _request(d, "rogue", "/CN=rogue-sender/O=Elsewhere")
    (d / "rogue.ext").write_text(CLIENT_EXT)
    openssl("x509", "-req", "-in", "rogue.csr", "-CA", "rogue-ca.crt", "-CAkey",
            "rogue-ca.key", "-CAcreateserial", "-out", "rogue.crt", "-days", "2",
            "-sha256", "-extfile", "rogue.ext", cwd=d)
    return Certs(ca=d / "ca.crt", server_cert=d / "server.crt", server_key=d / "server.key",
                 client_cert=d / "client.crt", client_key=d / "client.key",
                 rogue_cert=d / "rogue.crt", rogue_key=d / "rogue.key",
                 expired_cert=d / "expired.crt", expired_key=d / "expired.key",
                 revoked_cert=d / "revoked.crt", revoked_key=d / "revoked.key",
                 crl=d / "ca.crl")
