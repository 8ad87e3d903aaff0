"""Presence from Python: presence patterns and limits on the Config, members read with
Server.presence while real STOMP clients subscribe, join/leave MESSAGEs to listeners."""

from __future__ import annotations

import json

import pytest

import wsbroker
from clients import TcpClient, frame, unique


def test_members_joins_and_leaves(make_server) -> None:
    server = make_server(tcp_port=0, presence=["/topic/room/*"], presence_max_info=32)
    room = f"/topic/room/{unique('r')}"
    assert server.presence(room) == wsbroker.Presence(count=0, members=[])
    with TcpClient("127.0.0.1", server.tcp_port) as ann, TcpClient("127.0.0.1", server.tcp_port) as bob:
        ann.connect(login="ann")
        ann.send(frame("SUBSCRIBE", {"destination": room, "id": "1", "x-presence": "true",
                                     "x-presence-info": '{"color":"red"}', "receipt": "r1"}))
        snapshot = ann.expect("MESSAGE")
        assert snapshot.headers["x-presence"] == "snapshot"
        (me,) = json.loads(snapshot.body)
        assert (me["user"], json.loads(me["info"])) == ("ann", {"color": "red"})
        assert ann.expect("RECEIPT").headers["x-presence-count"] == "1"

        bob.connect(login="bob")
        bob.subscribe(room)  # a member by the pattern, not a listener
        join = ann.expect("MESSAGE")
        assert (join.headers["x-presence"], join.headers["x-presence-user"], join.headers["x-presence-count"]) == (
            "join", "bob", "2")
        members = server.presence(room)
        assert members.count == 2
        assert [(m.user, m.info) for m in members.members] == [("ann", '{"color":"red"}'), ("bob", None)]
        assert members.members[0].session == int(me["session"])
        bob.send(frame("UNSUBSCRIBE", {"id": "s1"}))
        leave = ann.expect("MESSAGE")
        assert (leave.headers["x-presence"], leave.headers["x-presence-count"]) == ("leave", "1")
    with pytest.raises(wsbroker.InvalidArgument):
        server.presence("/topic/room/*")


def test_presence_config() -> None:
    config = wsbroker.Config(presence=["/topic/a/**"], presence_event_limit=5)
    config.add_presence("/topic/b")
    assert config.presence == ("/topic/a/**", "/topic/b")
    assert config.settings()["presence_event_limit"] == 5
    with pytest.raises(wsbroker.InvalidArgument, match="must start with '/'"):
        config.add_presence("topic")
    assert config.presence == ("/topic/a/**", "/topic/b")
    config.close()
