"""wsbroker.Config: typed attributes that reach the C config, read back, roll back on a refused
value, grouped C setters, relay ordering, ownership by one server, and Server(**keywords)."""

from __future__ import annotations

import socket

import pytest
from websockets.sync.client import connect as ws_connect

import wsbroker
from wsbroker._config import SETTING_NAMES, Setting

from clients import WsClient, frame


def test_attributes_reach_the_server() -> None:
    cfg = wsbroker.Config(worker_threads=1)
    cfg.path = "/stomp"
    cfg.heartbeat_ms = (1500, 2500)
    cfg.tcp_port = 0
    assert (cfg.path, cfg.heartbeat_ms, cfg.tcp_port, cfg.port) == ("/stomp", (1500, 2500), 0, 0)
    with wsbroker.Server(cfg) as server:
        assert server.config is cfg and server.path == "/stomp"
        assert server.tcp_port and server.url.endswith("/stomp")
        with WsClient(server.url) as c:
            c.send(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:1000,1000\n\n\0")
            assert c.expect("CONNECTED").headers["heart-beat"] == "1500,2500"


def test_a_refused_value_raises_at_once_and_keeps_the_previous_one() -> None:
    cfg = wsbroker.Config(worker_threads=1)
    with pytest.raises(wsbroker.InvalidArgument) as info:
        cfg.host = "not an address"
    assert "listen" in str(info.value)
    assert cfg.host == "127.0.0.1"
    with pytest.raises(wsbroker.InvalidArgument):
        cfg.mode = "push"
    assert cfg.mode == "poll"
    with pytest.raises(TypeError):
        cfg.permessage_deflate = "yes"
    with wsbroker.Server(cfg) as server:  # the C config still holds the good values
        assert server.url.startswith("ws://127.0.0.1:")


def test_one_setting_of_a_grouped_c_call_keeps_the_others() -> None:
    """wsb_config_set_timeouts takes four values; setting only the idle timeout must not reset
    the handshake and connect timeouts (0 would keep their defaults anyway) nor the ping."""
    cfg = wsbroker.Config(worker_threads=1, heartbeat_ms=0, ping_interval_ms=0)
    cfg.idle_timeout_ms = 300
    assert (cfg.handshake_timeout_ms, cfg.connect_timeout_ms, cfg.idle_timeout_ms, cfg.ping_interval_ms) == (
        10000, 30000, 300, 0)
    with wsbroker.Server(cfg) as server, WsClient(server.url) as c:
        c.send(frame("CONNECT", {"accept-version": "1.2", "host": "x", "heart-beat": "0,0"}))
        c.expect("CONNECTED")
        frames = c.wait_closed(timeout=10)  # silent: closed by the idle timeout, not after 70 s
        assert frames and frames[0].command == "ERROR" and "idle" in frames[0].headers["message"]


def test_header_limits_and_user_prefix_settings() -> None:
    cfg = wsbroker.Config(worker_threads=1, max_headers=4, user_prefix="/me/")
    assert cfg.max_header_length == 8192  # its partner in wsb_config_set_header_limits
    with wsbroker.Server(cfg, on_connect=lambda ev: ev.login) as server, WsClient(server.url) as c:
        c.send(frame("CONNECT", {"accept-version": "1.2", "host": "x", "login": "ann", "heart-beat": "0,0"}))
        events = server.poll(timeout=5)  # the connect decision (as user "ann") runs here
        assert [type(e) for e in events] == [wsbroker.ConnectEvent]
        c.expect("CONNECTED")
        c.subscribe("/me/queue/inbox")
        server.send_to_user("ann", "/queue/inbox", "for ann")
        assert c.expect("MESSAGE").text == "for ann"
        c.send(frame("SEND", {"destination": "/topic/x", "a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}))
        frames = c.wait_closed()
        assert any(f.command == "ERROR" for f in frames), frames


def test_max_connections_per_ip() -> None:
    with wsbroker.Server(wsbroker.Config(worker_threads=1, max_connections_per_ip=1)) as server:
        with ws_connect(server.url, subprotocols=["v12.stomp"], open_timeout=10):
            # Refused at accept, before any request is read: a raw socket reads the answer
            # (a WebSocket client may trip over the early close while sending its request).
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as second:
                answer = b""
                while b"\r\n" not in answer:
                    chunk = second.recv(1024)
                    if not chunk:
                        break
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 503"), answer


def test_relay_settings_in_any_order() -> None:
    cfg = wsbroker.Config(relay_login=("app", "secret"), relay="127.0.0.1:1", relay_prefixes=["/topic"])
    assert cfg.relay == "127.0.0.1:1" and cfg.relay_login == ("app", "secret")
    cfg.relay = "127.0.0.1:2"  # C resets the other relay settings: they are re-issued
    assert cfg.relay_login == ("app", "secret") and cfg.relay_prefixes == ("/topic",)
    assert "secret" not in repr(cfg)
    cfg.relay = None  # relay mode off forgets them, as C does
    assert cfg.relay_login == ("guest", "guest") and cfg.relay_prefixes is None
    with pytest.raises(wsbroker.InvalidArgument) as info:
        cfg.relay_vhost = "/"
    assert "relay mode is off" in str(info.value)
    assert cfg.relay_vhost is None
    with pytest.raises(wsbroker.InvalidConfig):  # checked by wsb_server_new: an empty prefix list
        wsbroker.Server(relay="127.0.0.1:1", relay_prefixes=[], worker_threads=1).start()


def test_a_config_serves_one_server() -> None:
    cfg = wsbroker.Config(worker_threads=1)
    server = wsbroker.Server(cfg)
    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Server(cfg)
    cfg.max_frame_size = 1 << 16  # still the server's to change before start
    with server:
        assert cfg.closed  # freed by start: the settings were copied
        assert cfg.max_frame_size == 1 << 16  # still reads back
        with pytest.raises(wsbroker.InvalidArgument) as info:
            cfg.max_frame_size = 1024
        assert "make a new Config" in str(info.value)
        with pytest.raises(wsbroker.InvalidArgument):
            cfg.add_allowed_origin("http://x.example")


def test_server_keywords_and_config_do_not_mix() -> None:
    with pytest.raises(TypeError, match="takes no settings keywords"):
        wsbroker.Server(wsbroker.Config(), port=0)
    with pytest.raises(TypeError, match="unknown wsbroker setting"):
        wsbroker.Server(max_frame_bytes=1)
    with pytest.raises(TypeError):
        wsbroker.Server(on_connect="not callable")
    with wsbroker.Server("127.0.0.1", 0, "/p", worker_threads=1) as server:  # the positional form
        assert server.url.endswith("/p")


def test_add_only_lists() -> None:
    cfg = wsbroker.Config()
    assert cfg.app_prefixes == ("/app",) and cfg.allowed_origins == ()
    cfg.add_app_prefix("/game")
    cfg.add_app_prefix("/chat")
    cfg.add_allowed_origin("http://good.example")
    assert cfg.app_prefixes == ("/game", "/chat") and cfg.allowed_origins == ("http://good.example",)
    with pytest.raises(TypeError):
        wsbroker.Config(app_prefixes="/game")  # a str is not a list of prefixes
    settings = cfg.settings()
    assert settings["app_prefixes"] == ("/game", "/chat") and settings["port"] == 0
    cfg.close()
    cfg.close()  # idempotent
    assert cfg.closed


def test_every_setting_has_a_docstring_and_reads_its_default() -> None:
    cfg = wsbroker.Config()
    for name in SETTING_NAMES:
        setting = vars(wsbroker.Config)[name]
        assert isinstance(setting, Setting) and setting.__doc__, name
        assert getattr(cfg, name) == setting.default, name
    # declaration order is application order: relay before the settings that need it
    assert SETTING_NAMES.index("relay") < SETTING_NAMES.index("relay_login")
