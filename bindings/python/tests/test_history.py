"""Message history from Python: history rules on the Config, offsets returned by publish,
pages read with Server.history, and gap-free resume by a raw STOMP client and by
wsbroker.Client after its connection drops."""

from __future__ import annotations

import time
from typing import List

import pytest

import wsbroker
from clients import TcpClient, unique

WAIT = 5.0


def test_rules_from_tuples_dicts_and_objects() -> None:
    config = wsbroker.Config(history=[("/topic/a/**", 10), {"pattern": "/topic/b", "size": 5, "ttl": 60},
                                      wsbroker.HistoryRule("/topic/c/*", 1, last_value=True)])
    config.add_history("/topic/d", 3, ttl=0.5)
    assert [r.pattern for r in config.history] == ["/topic/a/**", "/topic/b", "/topic/c/*", "/topic/d"]
    assert config.settings()["history"][1] == wsbroker.HistoryRule("/topic/b", 5, 60, False)
    with pytest.raises(wsbroker.InvalidArgument, match="at least 1"):
        config.add_history("/topic/e", 0)
    with pytest.raises(wsbroker.InvalidArgument, match="start with '/'"):
        config.add_history("topic/e", 1)
    with pytest.raises(wsbroker.OutOfRange):
        config.add_history("/topic/e", 1, ttl=0)
    with pytest.raises(TypeError):
        wsbroker.Config(history=["/topic/x=10"])
    assert len(config.history) == 4, "refused rules are not kept"
    config.history_max_destinations = 50
    config.close()


def test_publish_returns_offsets_and_history_reads_them(make_server) -> None:
    server = make_server(history=[("/topic/h/**", 3)])
    assert [server.publish("/topic/h/x", f"m{i}") for i in range(1, 6)] == [1, 2, 3, 4, 5]
    assert server.publish("/topic/plain", "x") is None
    assert server.publish("/topic/h/x", "m6", wait=1.0) == 6
    page = server.history("/topic/h/x", since=3)
    assert page.complete and page.last_offset == 6 and page.epoch
    assert [(o, m.text, m.headers["x-offset"]) for o, m in page.messages] == [
        (4, "m4", "4"), (5, "m5", "5"), (6, "m6", "6")]
    assert all(m.headers["x-epoch"] == page.epoch for _, m in page.messages)
    assert not server.history("/topic/h/x").complete, "offsets 1-3 are no longer retained"
    assert [o for o, _ in server.history("/topic/h/x", limit=1).messages] == [4]
    with pytest.raises(wsbroker.NotFound, match="/topic/plain"):
        server.history("/topic/plain")


def test_stomp_client_resumes_without_gaps_or_duplicates(make_server) -> None:
    server = make_server(tcp_port=0, history=[("/topic/chat/**", 1000)])
    room = f"/topic/chat/{unique('room')}"
    with TcpClient("127.0.0.1", server.tcp_port) as first:
        first.connect()
        first.subscribe(room)
        for i in range(1, 51):
            server.publish(room, str(i))
        seen = [first.expect("MESSAGE") for _ in range(50)]
    last = seen[-1].headers
    assert last["x-offset"] == "50"
    # Published while no one listens.
    for i in range(51, 101):
        server.publish(room, str(i))
    with TcpClient("127.0.0.1", server.tcp_port) as again:
        again.connect()
        receipt = unique("resume")
        again.send(f"SUBSCRIBE\ndestination:{room}\nid:r\nx-since:{last['x-offset']}\nx-epoch:{last['x-epoch']}\n"
                   f"receipt:{receipt}\n\n\0".encode())
        answer = again.wait_receipt(receipt)
        assert answer.command == "RECEIPT" and answer.headers["x-recovered"] == "true", answer
        server.publish(room, "101")
        got = [again.expect("MESSAGE") for _ in range(51)]
    assert [m.text for m in got] == [str(i) for i in range(51, 102)], "0 gaps, 0 duplicates"
    assert got[0].headers.get("x-recovered") == "true"
    assert [int(m.headers["x-offset"]) for m in got] == list(range(51, 102))


def test_python_client_resumes_after_its_connection_drops(make_server, pump_of) -> None:
    sessions: List[int] = []
    server = make_server(history=[("/topic/feed", 100)],
                         on_connect=lambda ev: sessions.append(ev.session) or wsbroker.Accept())
    pump_of(server)
    client = wsbroker.Client(server.url, reconnect_delay=(0.05, 0.2), system_roots=False).connect(WAIT)
    bodies: List[bytes] = []
    try:
        sub = client.subscribe("/topic/feed", confirm=WAIT)
        for i in range(1, 6):
            server.publish("/topic/feed", str(i))
        resubscribed = []
        deadline = time.monotonic() + WAIT
        while len(bodies) < 5 and time.monotonic() < deadline:
            bodies += [e.body for e in client.poll(timeout=0.1) if e.kind == "message"]
        server.disconnect(sessions[0], "dropped by the test")
        for i in range(6, 11):
            server.publish("/topic/feed", str(i))
        deadline = time.monotonic() + 2 * WAIT
        while (len(bodies) < 10 or not resubscribed) and time.monotonic() < deadline:
            for e in client.poll(timeout=0.1):
                if e.kind == "message":
                    bodies.append(e.body)
                elif e.kind == "resubscribed":
                    resubscribed.append((e.subscription, e.recovered))
        assert resubscribed == [(sub, True)]
        assert bodies == [str(i).encode() for i in range(1, 11)], "0 gaps, 0 duplicates"
    finally:
        client.close()


def test_data_dir_keeps_history_and_queued_messages_across_a_restart(make_server, tmp_path) -> None:
    settings = dict(tcp_port=0, history=[("/topic/kept", 100)], data_dir=str(tmp_path / "store"),
                    fsync_window_ms=2)
    first = make_server(**settings)
    assert first.config.data_dir == str(tmp_path / "store") and first.config.fsync_window_ms == 2
    with TcpClient("127.0.0.1", first.tcp_port) as c:
        c.connect()
        for i in range(1, 4):
            answer = c.send_frame("/topic/kept", str(i))
            assert answer.command == "RECEIPT", answer
        assert c.send_frame("/queue/jobs", "job").command == "RECEIPT"
    page = first.history("/topic/kept")
    epoch = page.epoch
    assert [o for o, _ in page.messages] == [1, 2, 3]
    first.close()

    second = make_server(**settings)
    page = second.history("/topic/kept")
    assert (page.epoch, page.last_offset) == (epoch, 3), "the same stream after a restart"
    assert [m.text for _, m in page.messages] == ["1", "2", "3"]
    with TcpClient("127.0.0.1", second.tcp_port) as c:
        c.connect()
        c.subscribe("/queue/jobs")
        assert c.expect("MESSAGE").text == "job"
    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Config(data_dir=str(tmp_path), fsync_window_ms=20_000)
