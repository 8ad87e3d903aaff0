"""Raw WebSocket mode (no STOMP) of the wsbroker binary, driven by the `websockets` library:
`--raw-broadcast PATH` and `--raw-echo PATH`."""

import socket
import struct
import threading

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import wsbroker_only
from stomputil import frame

TIMEOUT = 5.0

pytestmark = wsbroker_only


@pytest.fixture
def raw_broker(broker_factory):
    b = broker_factory("--raw-broadcast", "/b", "--raw-echo", "/e", "--raw-broadcast", "/b2")
    base = b.ws_url.rsplit("/", 1)[0]
    return b, base


def connect(url, **kwargs):
    return ws_connect(url, open_timeout=TIMEOUT, close_timeout=2, **kwargs)


def test_startup_lines_name_each_raw_endpoint(raw_broker):
    b, base = raw_broker
    raw_lines = [line for line in b.stdout_lines if line.startswith("wsbroker listening raw ")]
    assert raw_lines == [
        f"wsbroker listening raw {base}/b (broadcast)",
        f"wsbroker listening raw {base}/b2 (broadcast)",
        f"wsbroker listening raw {base}/e (echo)",
    ]


def test_broadcast_goes_to_every_other_client_same_opcode(raw_broker):
    _, base = raw_broker
    with connect(f"{base}/b") as a, connect(f"{base}/b") as b, connect(f"{base}/b") as c, \
            connect(f"{base}/b2") as other:
        a.send("text from a")
        assert b.recv(timeout=TIMEOUT) == "text from a"
        assert c.recv(timeout=TIMEOUT) == "text from a"
        b.send(b"\x00binary\xff")
        assert a.recv(timeout=TIMEOUT) == b"\x00binary\xff"
        assert c.recv(timeout=TIMEOUT) == b"\x00binary\xff"
        # Neither sender got its own message back, and /b2 saw nothing of /b.
        c.send("from c")
        assert a.recv(timeout=TIMEOUT) == "from c"
        assert b.recv(timeout=TIMEOUT) == "from c"
        other.send("alone")
        with pytest.raises(TimeoutError):
            other.recv(timeout=0.3)


def test_echo_returns_messages_fragmented_large_and_control(raw_broker):
    _, base = raw_broker
    with connect(f"{base}/e", max_size=None) as ws:
        ws.send("caf\u00e9")
        assert ws.recv(timeout=TIMEOUT) == "caf\u00e9"
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=TIMEOUT) == b"\x01\x02\x03"
        # A fragmented message comes back as one message.
        ws.send(iter(["frag", "ment", "ed"]))
        assert ws.recv(timeout=TIMEOUT) == "fragmented"
        big = bytes(range(256)) * 4096  # 1 MiB
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big
        pong = ws.ping(b"are you there")
        assert pong.wait(TIMEOUT)


def test_many_echo_clients_in_parallel(raw_broker):
    _, base = raw_broker
    errors = []

    def client(n):
        try:
            with connect(f"{base}/e") as ws:
                for i in range(50):
                    ws.send(f"{n}:{i}")
                for i in range(50):
                    assert ws.recv(timeout=TIMEOUT) == f"{n}:{i}"
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_raw_endpoint_selects_no_stomp_subprotocol(raw_broker):
    b, base = raw_broker
    with connect(f"{base}/e", subprotocols=["v12.stomp"]) as ws:
        assert ws.subprotocol is None
        # A STOMP frame is just bytes here: echoed, not answered with CONNECTED.
        connect_frame = frame("CONNECT", {"accept-version": "1.2", "host": "x"}).decode()
        ws.send(connect_frame)
        assert ws.recv(timeout=TIMEOUT) == connect_frame
    # The STOMP endpoint of the same broker still speaks STOMP.
    with connect(b.ws_url, subprotocols=["v12.stomp"]) as stomp_ws:
        assert stomp_ws.subprotocol == "v12.stomp"
        stomp_ws.send(frame("CONNECT", {"accept-version": "1.2", "host": "x"}).decode())
        reply = stomp_ws.recv(timeout=TIMEOUT)
        assert reply.startswith("CONNECTED\n")


def test_client_close_code_is_echoed(raw_broker):
    _, base = raw_broker
    with connect(f"{base}/b") as ws:
        ws.close(code=4321, reason="done")
        assert ws.close_code == 4321


def test_invalid_utf8_text_closes_with_1007(raw_broker):
    """websockets never sends invalid text, so this client writes the frames by hand."""
    b, _ = raw_broker
    with socket.create_connection((b.ws_host, b.ws_port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"GET /e HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            assert chunk, "closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101")
        mask = b"\x01\x02\x03\x04"
        payload = bytes(x ^ mask[i % 4] for i, x in enumerate(b"\xff\xfe"))
        sock.sendall(b"\x81\x82" + mask + payload)  # FIN + text, masked, 2 bytes
        reply = b""
        while len(reply) < 4:
            chunk = sock.recv(64)
            assert chunk, "closed without a close frame"
            reply += chunk
        assert reply[0] == 0x88, reply  # FIN + close
        assert struct.unpack("!H", reply[2:4])[0] == 1007
