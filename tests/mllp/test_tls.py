"""TLS on the MLLP listener, with certificates made by the test (see conftest.certs)."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import pytest

from accord.errors import ConfigError, DeliveryError
from accord.mllp.client import MllpClient
from accord.mllp.server import MllpServer, PeerInfo
from accord.mllp.tls import client_context, server_context

from .conftest import WAIT, Certs, Peer, ServeFactory

_seen: list[PeerInfo] = []


async def recording_echo(payload: bytes, peer: PeerInfo) -> bytes:
    _seen.append(peer)
    return b"ECHO:" + payload


async def _tls_server(serve: ServeFactory, certs: Certs, *, mutual: bool = False,
                      crl: bool = False, expired: bool = False) -> MllpServer:
    cert, key = ((certs.expired_cert, certs.expired_key) if expired
                 else (certs.server_cert, certs.server_key))
    ctx = server_context(cert, key, ca_file=certs.ca if mutual else None,
                         require_client_cert=mutual, crl_file=certs.crl if crl else None)
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


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_tls_1_2_and_1_3_are_accepted(serve: ServeFactory, certs: Certs,
                                            version: ssl.TLSVersion) -> None:
    server = await _tls_server(serve, certs)
    ctx = client_context(ca_file=certs.ca)
    ctx.minimum_version = ctx.maximum_version = version
    peer = await Peer.open(server.port, ssl_context=ctx, server_hostname="127.0.0.1")
    assert peer.writer.get_extra_info("ssl_object").version() == version.name.replace(
        "v", "v").replace("TLSv1_", "TLSv1.")
    await peer.send(b"MSH|tls")
    assert await peer.reply() == b"ECHO:MSH|tls"
    await peer.close()


def _legacy_client(**versions: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers what OpenSSL 3 only offers at security level 0."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the point is to use them
        for name, version in versions.items():
            setattr(ctx, name, version)
    return ctx


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_tls_1_0_and_1_1_are_refused(serve: ServeFactory, certs: Certs,
                                           version: ssl.TLSVersion) -> None:
    server = await _tls_server(serve, certs)
    # The client really proposes the old version (security level 0) and it is the server
    # (minimum TLS 1.2) that refuses. Where the local OpenSSL cannot offer it at all, the
    # client fails first ("no protocols available"): still a refused connection. The
    # server's asyncio SSL layer may drop the connection without flushing its alert, so
    # the client sees a reset or EOF rather than an SSL alert: both are a refusal.
    ctx = _legacy_client(minimum_version=version, maximum_version=version)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await Peer.open(server.port, ssl_context=ctx, server_hostname="127.0.0.1")
    assert server.stats.accepted == 0
    assert (await _exchange(server.port, client_context(ca_file=certs.ca))) == b"ECHO:MSH|tls"


# Suites a client might offer that the listener must not accept: no forward secrecy
# (RSA key exchange), CBC, 3DES, RC4, NULL, anonymous, export. Some are compiled out of
# this OpenSSL: the client cannot offer them at all, which is recorded, not asserted on.
WEAK_SUITES = ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
               "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-SHA256", "DES-CBC3-SHA", "RC4-SHA",
               "NULL-SHA256", "ADH-AES128-GCM-SHA256", "EXP-RC4-MD5")


@pytest.mark.parametrize("suite", WEAK_SUITES)
async def test_weak_cipher_suites_are_refused(serve: ServeFactory, certs: Certs,
                                              suite: str) -> None:
    server = await _tls_server(serve, certs)
    ctx = _legacy_client(maximum_version=ssl.TLSVersion.TLSv1_2)
    try:
        ctx.set_ciphers(f"{suite}:@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip(f"{suite} is not in this OpenSSL: no client here can offer it")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await Peer.open(server.port, ssl_context=ctx, server_hostname="127.0.0.1")
    assert server.stats.accepted == 0 and server.stats.tls_failed == 1


async def test_a_strong_tls_1_2_suite_is_accepted(serve: ServeFactory, certs: Certs) -> None:
    server = await _tls_server(serve, certs)
    ctx = client_context(ca_file=certs.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    assert await _exchange(server.port, ctx) == b"ECHO:MSH|tls"


async def test_mutual_tls_with_a_revoked_client_certificate_is_refused(
    serve: ServeFactory, certs: Certs
) -> None:
    server = await _tls_server(serve, certs, mutual=True, crl=True)
    revoked = client_context(ca_file=certs.ca, cert_file=certs.revoked_cert,
                             key_file=certs.revoked_key)
    assert await _exchange(server.port, revoked) is None
    good = client_context(ca_file=certs.ca, cert_file=certs.client_cert,
                          key_file=certs.client_key)
    assert await _exchange(server.port, good) == b"ECHO:MSH|tls"
    assert server.stats.messages == 1 and server.peers()[0].tls_failed == 1


async def test_outbound_refuses_an_expired_server_certificate(
    serve: ServeFactory, certs: Certs
) -> None:
    server = await _tls_server(serve, certs, expired=True)
    client = MllpClient("127.0.0.1", server.port, ssl_context=client_context(ca_file=certs.ca),
                        connect_timeout=WAIT)
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.connect()
    assert server.stats.messages == 0


async def test_outbound_refuses_a_certificate_for_another_host(
    serve: ServeFactory, certs: Certs
) -> None:
    server = await _tls_server(serve, certs)
    client = MllpClient("127.0.0.1", server.port, ssl_context=client_context(ca_file=certs.ca),
                        server_hostname="ris.hospital.example", connect_timeout=WAIT)
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.connect()
    right = MllpClient("127.0.0.1", server.port, ssl_context=client_context(ca_file=certs.ca),
                       server_hostname="localhost", connect_timeout=WAIT)
    await right.connect()
    await right.close()


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
    with pytest.raises(ConfigError, match="CRL can only be checked with a CA file"):
        server_context(certs.server_cert, certs.server_key, crl_file=certs.crl)
    with pytest.raises(ConfigError, match="holds no PEM CRL"):
        server_context(certs.server_cert, certs.server_key, certs.ca, crl_file=certs.ca)
    with pytest.raises(ConfigError, match="cannot load CRL file"):
        server_context(certs.server_cert, certs.server_key, certs.ca,
                       crl_file=tmp_path / "missing.crl")
