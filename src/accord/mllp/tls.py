"""TLS contexts for MLLP (HL7 v2 Transport Specification: MLLP over TLS is plain TLS around
the same blocks). TLS 1.2 is the floor on both sides; TLS 1.1 and older are refused.

The listener offers only forward-secret AEAD cipher suites on TLS 1.2 (:data:`CIPHERS`:
ECDHE or DHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3's suites are all of that kind), so
a client that offers only CBC, RC4, 3DES, export, NULL or anonymous suites is refused. With
a CRL file, a client certificate it lists as revoked is refused (mutual TLS); the CRL must
be the one of the CA that issued the client certificates, and it is read at start.

Problems with the files (missing, unreadable, wrong key) raise :class:`ConfigError` naming
the file, so ``accord serve``/``accord send`` print one line instead of a traceback.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from accord.errors import ConfigError

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"

StrPath = str | Path


def server_context(cert_file: StrPath, key_file: StrPath, ca_file: StrPath | None = None,
                   require_client_cert: bool = False,
                   crl_file: StrPath | None = None) -> ssl.SSLContext:
    """Listener context. With ``ca_file`` a client certificate is checked against it when
    offered; ``require_client_cert`` makes one mandatory (mutual TLS); ``crl_file`` (PEM)
    refuses the client certificates it revokes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    ctx.set_ciphers(CIPHERS)
    _load_chain(ctx, cert_file, key_file)
    if ca_file is not None:
        _load_ca(ctx, ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    elif require_client_cert:
        raise ConfigError("a client certificate can only be required with a CA file",
                          location="tls.ca")
    if crl_file is not None:
        if ca_file is None:
            raise ConfigError("a CRL can only be checked with a CA file", location="tls.crl")
        _load_crl(ctx, crl_file)
    return ctx


def client_context(ca_file: StrPath | None = None, cert_file: StrPath | None = None,
                   key_file: StrPath | None = None, verify: bool = True,
                   check_hostname: bool | None = None) -> ssl.SSLContext:
    """Sender context. ``ca_file`` replaces the system trust store; ``cert_file`` (with
    ``key_file``, or a PEM holding both) authenticates us. ``verify=False`` accepts any
    server certificate (tests, first contact); ``check_hostname`` defaults to ``verify``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = MINIMUM_VERSION
    if verify:
        if ca_file is not None:
            _load_ca(ctx, ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = verify if check_hostname is None else check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file is not None:
        _load_chain(ctx, cert_file, key_file)
    elif key_file is not None:
        raise ConfigError("a client key was given without its certificate", location="tls.cert")
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_file: StrPath, key_file: StrPath | None) -> None:
    try:
        ctx.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load certificate {cert_file} / key {key_file}: "
                          f"{_reason(exc)}", location="tls.cert") from None


def _load_ca(ctx: ssl.SSLContext, ca_file: StrPath) -> None:
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load CA file {ca_file}: {_reason(exc)}",
                          location="tls.ca") from None


def _load_crl(ctx: ssl.SSLContext, crl_file: StrPath) -> None:
    path = Path(crl_file)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot load CRL file {crl_file}: {_reason(exc)}",
                          location="tls.crl") from None
    if "-----BEGIN X509 CRL-----" not in text:
        # load_verify_locations would take a file of certificates silently: no check at all.
        raise ConfigError(f"CRL file {crl_file} holds no PEM CRL", location="tls.crl")
    try:
        ctx.load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot load CRL file {crl_file}: {_reason(exc)}",
                          location="tls.crl") from None
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
