"""Messages dropped for a slow subscriber are counted in stats and reported to the host as
coalesced MessagesDroppedEvent events."""

from __future__ import annotations

import threading
import time
from typing import List

import wsbroker

from clients import TIMEOUT, TcpClient, frame, unique


def _slow_subscriber(server: wsbroker.Server, sub_id: str, destination: str) -> TcpClient:
    """A TCP client subscribed with the drop-newest policy that then never reads."""
    client = TcpClient("127.0.0.1", server.tcp_port)
    client.connect()
    receipt = unique("sub")
    client.send(frame("SUBSCRIBE", {"destination": destination, "id": sub_id, "receipt": receipt,
                                    "overflow-policy": "drop-newest"}))
    assert client.wait_receipt(receipt).command == "RECEIPT"
    return client


def _flood(server: wsbroker.Server, destination: str) -> int:
    body = b"x" * 16384
    for _ in range(3000):  # 48 MB: far more than 8 queued frames and the socket buffers
        server.publish(destination, body)
    dropped = server.stats().dropped
    assert dropped > 0
    return dropped


def _check(reports: List[wsbroker.MessagesDroppedEvent], dropped: int, sub_id: str, destination: str) -> None:
    assert sum(r.count for r in reports) == dropped, "every drop reported exactly once"
    assert len(reports) < dropped, "coalesced"
    for r in reports:
        assert r.kind == wsbroker.EventKind.MESSAGES_DROPPED
        assert (r.subscription, r.destination) == (sub_id, destination)
        assert r.session > 0 and r.count > 0


def test_drops_reported_in_poll_mode(make_server) -> None:
    server = make_server(port=0, tcp_port=0, mode="poll", outbound_limits=(8, 1 << 20))
    client = _slow_subscriber(server, "flood", "/topic/flood")
    try:
        dropped = _flood(server, "/topic/flood")
        reports: List[wsbroker.MessagesDroppedEvent] = []
        deadline = time.monotonic() + TIMEOUT
        while sum(r.count for r in reports) < dropped:
            assert time.monotonic() < deadline, f"reported {sum(r.count for r in reports)} of {dropped}"
            reports += [e for e in server.poll(timeout=0.1) if isinstance(e, wsbroker.MessagesDroppedEvent)]
        _check(reports, dropped, "flood", "/topic/flood")
    finally:
        client.close()


def test_drops_reported_in_callback_mode(make_server) -> None:
    reports: List[wsbroker.MessagesDroppedEvent] = []
    cond = threading.Condition()

    def on_event(ev: wsbroker.Event) -> None:
        if isinstance(ev, wsbroker.MessagesDroppedEvent):
            with cond:
                reports.append(ev)
                cond.notify_all()

    server = make_server(port=0, tcp_port=0, mode="callback", outbound_limits=(8, 1 << 20), on_event=on_event)
    client = _slow_subscriber(server, "s-1", "/topic/ticks")
    try:
        dropped = _flood(server, "/topic/ticks")
        with cond:
            assert cond.wait_for(lambda: sum(r.count for r in reports) >= dropped, TIMEOUT), reports
            _check(list(reports), dropped, "s-1", "/topic/ticks")
    finally:
        client.close()
