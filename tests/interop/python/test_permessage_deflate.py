"""permessage-deflate (RFC 7692) with the `websockets` library, which offers it by default:
negotiation, large STOMP messages received as compressed (RSV1) frames, compressed messages
sent by the client, a zip bomb closed with 1009, and the switch that turns compression off."""

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate

from conftest import wsbroker_only
from stomputil import frame, unique_dest
from test_raw_websocket import RawClient

pytestmark = wsbroker_only


def json_body(size: int) -> str:
    items, length = [], 2
    while length < size:
        item = json.dumps({"id": len(items), "symbol": f"SYM{len(items) % 13}", "price": 100 + len(items) % 50 / 4})
        items.append(item)
        length += len(item) + 1
    return "[" + ",".join(items) + "]"


def count_compressed_frames(client: RawClient) -> list:
    """Wraps the connection's permessage-deflate decoder to record the RSV1 flag of each
    received data frame; returns the (growing) list of flags."""
    (extension,) = client.ws.protocol.extensions
    assert isinstance(extension, PerMessageDeflate)
    seen = []
    decode = extension.decode

    def recording(frame_, *, max_size=None):
        if frame_.opcode.name in ("TEXT", "BINARY"):
            seen.append(frame_.rsv1)
        return decode(frame_, max_size=max_size)

    extension.decode = recording
    return seen


def test_default_client_negotiates_deflate(broker):
    with RawClient(broker.ws_url) as c:
        header = c.ws.response.headers["Sec-WebSocket-Extensions"]
        assert header.startswith("permessage-deflate"), header
        assert "server_no_context_takeover" in header and "client_no_context_takeover" in header
        (extension,) = c.ws.protocol.extensions
        assert isinstance(extension, PerMessageDeflate)
        assert extension.remote_no_context_takeover and extension.local_no_context_takeover


def test_large_messages_round_trip_compressed(broker):
    dest = unique_dest("topic", "deflate")
    body = json_body(200 * 1024)
    with RawClient(broker.ws_url) as sub, RawClient(broker.ws_url) as pub:
        sub.connect()
        pub.connect()
        flags = count_compressed_frames(sub)
        sub.send(frame("SUBSCRIBE", {"id": "s1", "destination": dest, "receipt": "sub"}))
        assert sub.expect("RECEIPT").headers["receipt-id"] == "sub"
        # websockets compresses what it sends: the broker inflates it.
        pub.send(frame("SEND", {"destination": dest, "content-type": "application/json", "receipt": "r"}, body))
        assert pub.expect("RECEIPT").headers["receipt-id"] == "r"
        msg = sub.expect("MESSAGE")
        assert msg.headers["subscription"] == "s1"
        assert msg.body.decode() == body
        # The small RECEIPT went uncompressed, the MESSAGE compressed.
        assert flags == [False, True], flags


@pytest.mark.timeout(30)
def test_zip_bomb_is_closed_with_1009(broker_factory):
    small = broker_factory("--max-frame-size", str(64 * 1024))
    with RawClient(small.ws_url) as c:
        c.connect()
        c.send(frame("SEND", {"destination": "/topic/bomb"}, "A" * (8 * 1024 * 1024)))
        frames = c.wait_closed()
        assert c.ws.protocol.close_rcvd.code == 1009, c.ws.protocol.close_rcvd
        assert [f.command for f in frames] == ["ERROR"], frames
        assert "maximum message size" in frames[0].headers["message"]


def test_compression_can_be_switched_off(broker_factory):
    plain = broker_factory("--no-permessage-deflate")
    with RawClient(plain.ws_url) as c:
        assert "Sec-WebSocket-Extensions" not in c.ws.response.headers
        assert c.ws.protocol.extensions == []
        c.connect()
        try:
            c.ws.close()
        except ConnectionClosed:
            pass
