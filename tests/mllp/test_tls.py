"""TLS on the MLLP listener, with certificates made by the test (see conftest.certs)."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import pytest

from accord.errors import ConfigError
from accord.mllp.server import MllpServer, PeerInfo
from accord.mllp.tls import client_context, server_context

from .conftest import Certs, Peer, ServeFactory

_seen: list[PeerInfo] = []


async def recording_echo(payload: bytes, peer: PeerInfo) -> bytes:
    _seen.append(peer)
    return b"ECHO:" + payload


async def _tls_server(serve: ServeFactory, certs: Certs, *, mutual: bool = False) -> MllpServer:
    ctx = server_context(certs.server_cert, certs.server_key,
                         ca_file=certs.ca if mutual else None, require_client_cert=mutual)
    return await serve(recording_echo, ssl_context=ctx)


async def _exchange(port: int, ctx: ssl.SSLContext) -> bytes | None:
    """One message over TLS; None when the server refused (handshake or first read)."""
    try:
        peer = await Peer.open(port, ssl_context=ctx, server_hostname="127.0.0.1")
        await peer.send(b"MSH|tls")
        reply = await peer.reply()
        await peer.close()
        return reply
    except (ssl.SSLError, ConnectionError):
        return None


async def test_good_server_certificate(serve: ServeFactory, certs: Certs) -> None:
    _seen.clear()
    server = await _tls_server(serve, certs)
    assert await _exchange(server.port, client_context(ca_file=certs.ca)) == b"ECHO:MSH|tls"
    assert _seen[-1].tls and _seen[-1].client_subject is None


async def test_client_rejects_a_server_from_an_unknown_ca(
    serve: ServeFactory, certs: Certs, tmp_path: Path
) -> None:
    server = await _tls_server(serve, certs)
    other_ca = certs.ca.parent / "rogue-ca.crt"
    with pytest.raises(ssl.SSLCertVerificationError):
        await Peer.open(server.port, ssl_context=client_context(ca_file=other_ca),
                        server_hostname="127.0.0.1")
    assert server.stats.accepted == 0


async def test_mutual_tls_without_client_certificate_is_refused(
    serve: ServeFactory, certs: Certs
) -> None:
    server = await _tls_server(serve, certs, mutual=True)
    assert await _exchange(server.port, client_context(ca_file=certs.ca)) is None
    assert server.stats.messages == 0


async def test_mutual_tls_with_unknown_ca_client_certificate_is_refused(
    serve: ServeFactory, certs: Certs
) -> None:
    server = await _tls_server(serve, certs, mutual=True)
    ctx = client_context(ca_file=certs.ca, cert_file=certs.rogue_cert, key_file=certs.rogue_key)
    assert await _exchange(server.port, ctx) is None
    assert server.stats.messages == 0


async def test_mutual_tls_with_good_client_certificate(serve: ServeFactory, certs: Certs) -> None:
    _seen.clear()
    server = await _tls_server(serve, certs, mutual=True)
    ctx = client_context(ca_file=certs.ca, cert_file=certs.client_cert, key_file=certs.client_key)
    assert await _exchange(server.port, ctx) == b"ECHO:MSH|tls"
    assert _seen[-1].tls
    assert _seen[-1].client_subject == "CN=ris-sender,O=Accord Test"


async def test_tls_1_1_is_refused(serve: ServeFactory, certs: Certs) -> None:
    server = await _tls_server(serve, certs)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # OpenSSL 3 only offers TLS 1.1 at security level 0; lower it so the client really
    # proposes TLS 1.1 and it is the server (minimum TLS 1.2) that refuses. Where the local
    # OpenSSL cannot offer TLS 1.1 at all, the client fails first ("no protocols
    # available"): still a refused connection, which is what this asserts.
    # The server's asyncio SSL layer drops the connection without flushing its alert, so the
    # client sees a reset or EOF rather than an SSL alert: both are a refusal.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the point is to use TLS 1.1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await Peer.open(server.port, ssl_context=ctx, server_hostname="127.0.0.1")
    assert server.stats.accepted == 0
    assert (await _exchange(server.port, client_context(ca_file=certs.ca))) == b"ECHO:MSH|tls"


def test_contexts_floor_is_tls_1_2(certs: Certs) -> None:
    server = server_context(certs.server_cert, certs.server_key)
    client = client_context(ca_file=certs.ca)
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    unverified = client_context(verify=False)
    assert not unverified.check_hostname and unverified.verify_mode == ssl.CERT_NONE
    mutual = server_context(certs.server_cert, certs.server_key, certs.ca, True)
    assert mutual.verify_mode == ssl.CERT_REQUIRED


def test_bad_files_are_config_errors(certs: Certs, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load certificate"):
        server_context(tmp_path / "missing.crt", tmp_path / "missing.key")
    with pytest.raises(ConfigError, match="cannot load CA file"):
        client_context(ca_file=tmp_path / "missing-ca.crt")
    with pytest.raises(ConfigError, match="CA file"):
        server_context(certs.server_cert, certs.server_key, require_client_cert=True)
    with pytest.raises(ConfigError, match="without its certificate"):
        client_context(ca_file=certs.ca, key_file=certs.client_key)
    with pytest.raises(ConfigError):  # certificate and key that do not belong together
        server_context(certs.server_cert, certs.client_key)
