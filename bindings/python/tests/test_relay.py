"""Relay mode from Python: the relay keywords, BrokerEvent, and a round trip through RabbitMQ.

The round trip needs RabbitMQ with rabbitmq_stomp on 127.0.0.1:61613 (``bash scripts/rabbitmq.sh
ensure``; ``WSBROKER_RELAY_BROKER`` overrides the address). Without it that test is skipped,
except with CI=true, where it fails.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

import wsbroker

from clients import TIMEOUT, WsClient


def _unused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % s.getsockname()[1]


def _broker_events(server: wsbroker.Server, deadline: float):
    while time.monotonic() < deadline:
        for event in server.poll(timeout=0.05):
            if isinstance(event, wsbroker.BrokerEvent):
                return event
    raise AssertionError("no BrokerEvent in time")


def _rabbitmq() -> str:
    address = os.environ.get("WSBROKER_RELAY_BROKER", "127.0.0.1:61613")
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        why = f"RabbitMQ STOMP is not reachable on {address}; run `bash scripts/rabbitmq.sh ensure`"
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(why + " (CI=true: relay tests must run)")
        pytest.skip(why)
    return address


def test_bad_relay_settings_are_refused(make_server) -> None:
    with pytest.raises(wsbroker.InvalidConfig):
        make_server(port=0, relay="no-port")
    with pytest.raises(wsbroker.InvalidConfig):
        make_server(port=0, relay="127.0.0.1:61613", relay_prefixes=[])


def test_an_unreachable_broker_is_a_broker_event(make_server) -> None:
    address = _unused_address()
    server = make_server(port=0, relay=address, relay_login=("u", "p"), relay_vhost="/")
    event = _broker_events(server, time.monotonic() + TIMEOUT)
    assert event.kind == wsbroker.EventKind.BROKER_UNAVAILABLE
    assert not event.available
    assert address in (event.reason or "")
    with pytest.raises(wsbroker.Backpressure):
        server.publish("/topic/x", "nowhere")
    with WsClient(server.url) as c:
        error = c.connect(expect="ERROR")
        assert error.headers["message"].startswith("message broker unavailable")


def test_a_host_publish_reaches_a_client_through_rabbitmq(make_server) -> None:
    broker = _rabbitmq()
    server = make_server(port=0, relay=broker, relay_heartbeat_ms=2000, relay_session_restore=True)
    event = _broker_events(server, time.monotonic() + TIMEOUT)
    assert event.kind == wsbroker.EventKind.BROKER_AVAILABLE and event.available
    topic = "/topic/py-" + uuid.uuid4().hex
    with WsClient(server.url) as c:
        c.connect()
        c.subscribe(topic)  # the RECEIPT comes from RabbitMQ
        server.publish(topic, "through the broker")
        assert c.expect("MESSAGE").text == "through the broker"
