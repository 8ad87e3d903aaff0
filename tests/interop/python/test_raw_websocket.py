"""Raw STOMP frames over the `websockets` library (subprotocol v12.stomp)."""

import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from conftest import EXTERNAL, LOGIN, PASSCODE, VHOST, wsbroker_only
from stomputil import FrameParser, frame, new_receipt, unique_dest

TIMEOUT = 5.0


class RawClient:
    """A WebSocket carrying raw STOMP frames; every wait is bounded."""

    def __init__(self, url, subprotocol="v12.stomp"):
        self.ws = ws_connect(url, subprotocols=[subprotocol], open_timeout=TIMEOUT, close_timeout=2,
                             legacy=True)
        self.parser = FrameParser()
        self.pending = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.ws.close()

    def send(self, data: bytes, binary=False):
        self.ws.send(data if binary else data.decode())

    def recv_frame(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no STOMP frame within {timeout}s")
            self.pending.extend(self.parser.feed(self.ws.recv(timeout=remaining)))
        return self.pending.pop(0)

    def expect(self, command, timeout=TIMEOUT):
        f = self.recv_frame(timeout)
        assert f.command == command, f"expected {command}, got {f!r}"
        return f

    def connect(self, heart_beat="0,0", **extra):
        headers = {"accept-version": "1.2", "host": VHOST or "localhost", "login": LOGIN, "passcode": PASSCODE,
                   "heart-beat": heart_beat, **extra}
        self.send(frame("CONNECT", headers))
        return self.expect("CONNECTED")

    def collect_until(self, predicate, timeout=TIMEOUT):
        frames, deadline = [], time.monotonic() + timeout
        while not predicate(frames):
            frames.append(self.recv_frame(max(deadline - time.monotonic(), 0.001)))
        return frames

    def wait_closed(self, timeout=TIMEOUT):
        """Reads (and returns) frames until the server closes the socket; fails if it stays open."""
        frames, deadline = [], time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"socket still open after {timeout}s (frames: {frames})")
                frames.extend(self.parser.feed(self.ws.recv(timeout=remaining)))
        except ConnectionClosed:
            return frames
        except TimeoutError:
            pytest.fail(f"socket still open after {timeout}s (frames: {frames})")


def receipts(frames):
    return {f.headers.get("receipt-id") for f in frames if f.command == "RECEIPT"}


def test_connect_connected_headers(broker):
    with RawClient(broker.ws_url) as c:
        assert c.ws.subprotocol == "v12.stomp"
        connected = c.connect(heart_beat="0,0")
        assert connected.headers.get("version") == "1.2"
        assert connected.headers.get("server"), connected.headers
        assert connected.headers.get("session"), connected.headers
        hb = connected.headers.get("heart-beat", "")
        assert [x.isdigit() for x in hb.split(",")] == [True, True], f"heart-beat header {hb!r}"


def test_two_frames_in_one_websocket_message(broker):
    with RawClient(broker.ws_url) as c:
        c.connect()
        dest = unique_dest("topic", "two-in-one")
        r_sub, r_send = new_receipt("sub"), new_receipt("send")
        c.send(frame("SUBSCRIBE", {"id": "0", "destination": dest, "receipt": r_sub})
               + frame("SEND", {"destination": dest, "receipt": r_send, "x-k": "v"}, "hello twice"))
        frames = c.collect_until(lambda fs: receipts(fs) >= {r_sub, r_send}
                                 and any(f.command == "MESSAGE" for f in fs))
        (msg,) = [f for f in frames if f.command == "MESSAGE"]
        assert msg.body == b"hello twice"
        assert msg.headers.get("x-k") == "v"
        assert msg.headers.get("subscription") == "0"


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_one_frame_split_across_three_messages(broker, binary):
    with RawClient(broker.ws_url) as c:
        c.connect()
        dest = unique_dest("topic", "split")
        r_sub = new_receipt("sub")
        c.send(frame("SUBSCRIBE", {"id": "s", "destination": dest, "receipt": r_sub}))
        assert c.expect("RECEIPT").headers.get("receipt-id") == r_sub
        r_send = new_receipt("send")
        data = frame("SEND", {"destination": dest, "receipt": r_send, "content-type": "text/plain"},
                     "split body " * 20)
        cuts = [3, len(data) // 2, len(data)]  # inside the command, inside the body, up to the NUL
        for start, end in zip([0] + cuts[:-1], cuts):
            c.send(data[start:end], binary=binary)
        frames = c.collect_until(lambda fs: r_send in receipts(fs) and any(f.command == "MESSAGE" for f in fs))
        (msg,) = [f for f in frames if f.command == "MESSAGE"]
        assert msg.body == ("split body " * 20).encode()


MALFORMED = {
    "header-without-colon": b"SEND\ndestination /queue/x\n\nbody\0",
    "content-length-mismatch": b"SEND\ndestination:/queue/x\ncontent-length:2\n\nbody\0",
    "unknown-command": b"BOGUS\nfoo:bar\n\n\0",
}


@wsbroker_only  # RabbitMQ closes with WebSocket code 1007 without an ERROR frame, or keeps the socket open
@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frame_gets_error_then_close(broker, data):
    with RawClient(broker.ws_url) as c:
        c.connect()
        c.send(data)
        frames = c.wait_closed()
        errors = [f for f in frames if f.command == "ERROR"]
        assert errors, f"expected an ERROR frame before close, got {frames}"
        assert errors[0].headers.get("message"), errors[0]


@pytest.mark.skipif(EXTERNAL, reason="RabbitMQ Web-STOMP closes on DISCONNECT without sending the RECEIPT")
def test_disconnect_with_receipt_then_close(broker):
    with RawClient(broker.ws_url) as c:
        c.connect()
        r = new_receipt("disconnect")
        c.send(frame("DISCONNECT", {"receipt": r}))
        receipt = c.expect("RECEIPT")
        assert receipt.headers.get("receipt-id") == r
        frames = c.wait_closed()
        assert frames == [], f"nothing may follow the DISCONNECT receipt: {frames}"


def test_silent_client_promising_heartbeats_is_closed(broker_factory):
    """The client promises a heart-beat every second (heart-beat:1000,0) and then stays silent:
    the broker must close the connection well within 10 s."""
    b = broker_factory("--heartbeat", "1000")
    with RawClient(b.ws_url) as c:
        connected = c.connect(heart_beat="1000,0")
        sx, sy = (int(x) for x in connected.headers["heart-beat"].split(","))
        assert sy > 0, f"broker must ask for client heart-beats: {connected.headers}"
        started = time.monotonic()
        c.wait_closed(timeout=10)
        assert time.monotonic() - started < 10
