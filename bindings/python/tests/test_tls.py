"""TLS from Python: ``wss://`` with the certificate as PEM bytes or files (Python ``ssl`` +
``websockets`` as the client), and a client CA that refuses clients without a certificate.
Certificates are made with the openssl command line."""
from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

CONNECT = "CONNECT\naccept-version:1.2\nhost:localhost\n\n\0"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """ca.pem, server.pem/server.key (localhost, signed by the CA), client.pem/client.key."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wsbroker test CA",
             "-keyout", str(tmp_path / "ca.key"), "-out", str(tmp_path / "ca.pem"))
    for name, ext in (("server", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (tmp_path / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(tmp_path / f"{name}.key"), "-out", str(tmp_path / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(tmp_path / f"{name}.csr"), "-CA", str(tmp_path / "ca.pem"),
                 "-CAkey", str(tmp_path / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(tmp_path / f"{name}.ext"), "-out", str(tmp_path / f"{name}.pem"))
    return tmp_path


def _client_context(pki: Path, with_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return context


def _stomp_connect(port: int, context: ssl.SSLContext) -> str:
    with ws_connect(f"wss://localhost:{port}/ws", ssl=context, open_timeout=5) as ws:
        ws.send(CONNECT)
        return ws.recv(timeout=5)


@pytest.mark.parametrize("source", ["pem", "file"])
def test_wss_with_pem_bytes_or_files(make_server, pki: Path, source: str) -> None:
    if source == "pem":
        cert, key = (pki / "server.pem").read_bytes(), (pki / "server.key").read_bytes()
    else:
        cert, key = pki / "server.pem", pki / "server.key"
    server = make_server(port=0, mode="callback", tls=(cert, key))
    reply = _stomp_connect(server.port, _client_context(pki, with_cert=False))
    assert reply.startswith("CONNECTED\n"), reply


def test_client_certificate_required(make_server, pki: Path) -> None:
    server = make_server(port=0, mode="callback", tls=(pki / "server.pem", pki / "server.key"),
                         tls_client_ca=(pki / "ca.pem").read_bytes())
    reply = _stomp_connect(server.port, _client_context(pki, with_cert=True))
    assert reply.startswith("CONNECTED\n"), reply
    with pytest.raises((ssl.SSLError, OSError, EOFError, WebSocketException)) as refused:
        _stomp_connect(server.port, _client_context(pki, with_cert=False))
    assert "CONNECTED" not in str(refused.value)


def test_client_ca_needs_a_certificate() -> None:
    import wsbroker

    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Server(port=0, tls_client_ca=b"-----BEGIN CERTIFICATE-----\n").start()
