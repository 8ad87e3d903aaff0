"""Flow control seen from the host: publishes are refused with Backpressure (nothing
delivered) while a subscriber's queue is congested, ``publish(wait=...)`` waits for room, and a
subscriber that never reads is disconnected once the slow-consumer timeout passed."""

from __future__ import annotations

import socket

import pytest

import wsbroker

from clients import TcpClient, frame, unique


def _stuck_subscriber(server: wsbroker.Server, destination: str) -> TcpClient:
    """A TCP client subscribed to ``destination`` that then never reads (small buffer)."""
    client = TcpClient("127.0.0.1", server.tcp_port)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect()
    receipt = unique("sub")
    client.send(frame("SUBSCRIBE", {"destination": destination, "id": "s", "receipt": receipt}))
    assert client.wait_receipt(receipt).command == "RECEIPT"
    return client


def test_congested_subscribers_refuse_then_wait_then_drop_the_stuck_one(make_server) -> None:
    server = make_server(port=0, tcp_port=0, outbound_limits=(64, 256 << 10),
                         outbound_high_watermark=64 << 10, outbound_low_watermark=16 << 10,
                         slow_consumer_timeout_ms=300)
    assert (server.config.outbound_high_watermark, server.config.slow_consumer_timeout_ms) == (64 << 10, 300)
    client = _stuck_subscriber(server, "/topic/flow")
    try:
        body = b"x" * 16384
        with pytest.raises(wsbroker.Backpressure):
            for _ in range(10_000):  # far more than the kernel's buffers and the queue hold
                server.publish("/topic/flow", body)
        assert server.stats().publishes_refused >= 1
        # Waiting publishes go through as the queue drains into the kernel's buffers; once
        # those are full too, a wait outlasts the slow-consumer timeout: the stuck client is
        # dropped and the publish goes through. Bounded: the buffers hold a few MiB at most.
        for _ in range(2_000):
            server.publish("/topic/flow", body, wait=5.0)
            if server.stats().slow_consumer_disconnects == 1:
                break
        assert server.stats().slow_consumer_disconnects == 1
        with pytest.raises(wsbroker.OutOfRange):
            server.publish("/topic/flow", body, wait=-1)
    finally:
        client.close()
