"""wsbroker.Client against an in-process wsbroker server (and RabbitMQ when it runs here):
sync polling with per-subscription callbacks, callback mode on the network thread, asyncio,
receipts, acks and transactions, reconnection with resubscription, errors by result code."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from typing import List

import pytest

import wsbroker

WAIT = 5.0


def poll_until(client: wsbroker.Client, pred, timeout: float = WAIT) -> List[wsbroker.ClientEvent]:
    deadline = time.monotonic() + timeout
    seen: List[wsbroker.ClientEvent] = []
    while time.monotonic() < deadline:
        seen.extend(client.poll(timeout=0.1))
        if pred(seen):
            return seen
    raise AssertionError(f"condition not met within {timeout}s; saw {seen!r}")


def messages(events):
    return [e for e in events if e.kind == "message"]


def test_sync_round_trip_with_receipts_and_callbacks(make_server) -> None:
    server = make_server(port=0, tcp_port=0)
    for url in (server.url, f"stomp://127.0.0.1:{server.tcp_port}"):
        got: List[wsbroker.ClientEvent] = []
        with wsbroker.Client(url, heartbeat=(1.0, 1.0), system_roots=False) as client:
            assert client.connected
            sub = client.subscribe("/topic/py", got.append, headers={"x-test": "1"}, confirm=WAIT)
            client.send("/topic/py", "héllo", headers={"k": "a:b"}, receipt=WAIT)
            events = poll_until(client, lambda evs: len(messages(evs)) == 1)
            assert events[0].kind == "connected" and events[0].text == "1.2"
            (m,) = got
            assert (m.subscription, m.destination, m.body) == (sub, "/topic/py", "héllo".encode())
            assert m.header("k") == "a:b"
            client.unsubscribe(sub)
            with pytest.raises(wsbroker.NotFound):
                client.unsubscribe(sub)
        assert client.closed


def test_acks_transactions_and_errors(make_server) -> None:
    server = make_server(port=0)
    client = wsbroker.Client(server.url, system_roots=False).connect(WAIT)
    try:
        client.subscribe("/queue/py-acks", ack="client-individual", confirm=WAIT)
        tx = client.begin()
        client.send("/queue/py-acks", b"\x00bin", transaction=tx)
        client.commit(tx, receipt=WAIT)
        with pytest.raises(wsbroker.NotFound):
            client.commit(tx)
        (m,) = messages(poll_until(client, lambda evs: len(messages(evs)) == 1))
        assert m.body == b"\x00bin" and m.ack_id
        client.ack(m)
        with pytest.raises(wsbroker.InvalidArgument):
            client.subscribe("/queue/x", ack="sometimes")
        with pytest.raises(wsbroker.OutOfRange):
            client.send("/queue/x", "x", receipt=-1)
        with pytest.raises(wsbroker.InvalidArgument):
            client.send_raw("raw needs raw mode")
    finally:
        client.close()
    with pytest.raises(wsbroker.InvalidArgument):
        client.send("/topic/x", "closed")


def test_refused_and_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = wsbroker.Client(f"ws://127.0.0.1:{port}/ws", system_roots=False)
    with pytest.raises(wsbroker.NotConnected):
        client.connect(WAIT)
    client.close()
    with pytest.raises(wsbroker.InvalidConfig):
        wsbroker.Client("http://nowhere")


def test_callback_mode_runs_on_the_network_thread(make_server) -> None:
    server = make_server(port=0)
    threads: List[int] = []
    done = threading.Event()

    def on_message(event: wsbroker.ClientEvent) -> None:
        threads.append(threading.get_ident())
        done.set()

    client = wsbroker.Client(server.url, mode="callback", system_roots=False).connect(WAIT)
    try:
        client.subscribe("/topic/cb", on_message, confirm=WAIT)
        client.send("/topic/cb", "x")
        assert done.wait(WAIT)
        assert threads and threads[0] != threading.get_ident(), "ran on the network thread"
        with pytest.raises(wsbroker.InvalidArgument):
            client.poll()
    finally:
        client.close()


def test_asyncio(make_server) -> None:
    server = make_server(port=0)

    async def main() -> List[bytes]:
        client = await wsbroker.Client(server.url, system_roots=False).aconnect(WAIT)
        try:
            await client.asubscribe("/topic/aio", confirm=WAIT)
            for i in range(3):
                await client.asend("/topic/aio", f"m{i}", receipt=WAIT)
            bodies: List[bytes] = []

            async def collect() -> None:
                async for event in client.aevents():
                    if event.kind == "message":
                        bodies.append(event.body)
                        if len(bodies) == 3:
                            return

            await asyncio.wait_for(collect(), WAIT)
            return bodies
        finally:
            await client.adisconnect()
            client.close()

    assert asyncio.run(main()) == [b"m0", b"m1", b"m2"]


def test_reconnects_and_resubscribes_after_a_server_restart(make_server) -> None:
    first = make_server(port=0)
    port = first.port
    client = wsbroker.Client(first.url, reconnect_delay=(0.05, 0.2), system_roots=False).connect(WAIT)
    try:
        sub = client.subscribe("/topic/restart", confirm=WAIT)
        first.close()
        poll_until(client, lambda evs: any(e.kind == "disconnected" and e.reconnecting for e in evs))
        second = make_server(port=port)
        events = poll_until(client, lambda evs: any(e.kind == "resubscribed" for e in evs))
        (resub,) = [e for e in events if e.kind == "resubscribed"]
        assert (resub.subscription, resub.recovered) == (sub, False)  # no history on the server
        second.publish("/topic/restart", "after")
        (m,) = messages(poll_until(client, lambda evs: len(messages(evs)) == 1))
        assert m.body == b"after"
    finally:
        client.close()


def _rabbitmq(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        if os.environ.get("CI") in ("true", "1"):
            raise
        return False


@pytest.mark.skipif(not (_rabbitmq(15674) and _rabbitmq(61613)), reason="RabbitMQ is not running here")
def test_against_rabbitmq() -> None:
    for url in ("ws://127.0.0.1:15674/ws", "stomp://127.0.0.1:61613"):
        queue = f"/queue/py-{uuid.uuid4().hex}"
        with wsbroker.Client(url, login="guest", passcode="guest", host="/", system_roots=False) as client:
            client.subscribe(queue, ack="client", confirm=WAIT)
            client.send(queue, "to rabbit", receipt=WAIT)
            (m,) = messages(poll_until(client, lambda evs: len(messages(evs)) == 1))
            assert m.body == b"to rabbit"
            client.ack(m)
            client.disconnect(WAIT)
