"""Real STOMP clients for the tests: raw frames over `websockets` and over a TCP socket, and
stomp.py (TCP and WebSocket). Every wait is bounded."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional

import stomp
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

TIMEOUT = 10.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


def unescape(value: str) -> str:
    table = {"\\": "\\", "r": "\r", "n": "\n", "c": ":"}
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def frame(command: str, headers: Optional[Dict[str, str]] = None, body: bytes | str = b"") -> bytes:
    if isinstance(body, str):
        body = body.encode()
    lines = [command] + [f"{escape(k)}:{escape(str(v))}" for k, v in (headers or {}).items()]
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


class Frame:
    def __init__(self, command: str, headers: Dict[str, str], body: bytes) -> None:
        self.command, self.headers, self.body = command, headers, body

    @property
    def text(self) -> str:
        return self.body.decode()

    def __repr__(self) -> str:
        return f"Frame({self.command!r}, {self.headers!r}, {self.body[:80]!r})"


class FrameParser:
    """Incremental STOMP 1.2 parser (heart-beat EOLs skipped)."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes | str) -> List[Frame]:
        self.buf += data.encode() if isinstance(data, str) else data
        frames = []
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            end = self.buf.find(b"\n\n")
            if end < 0:
                return frames
            head = self.buf[:end].decode().replace("\r\n", "\n")
            lines = head.split("\n")
            headers: Dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.setdefault(unescape(k), unescape(v))
            start = end + 2
            if "content-length" in headers:
                n = int(headers["content-length"])
                if len(self.buf) < start + n + 1:
                    return frames
                body = self.buf[start:start + n]
                self.buf = self.buf[start + n + 1:]
            else:
                nul = self.buf.find(b"\0", start)
                if nul < 0:
                    return frames
                body = self.buf[start:nul]
                self.buf = self.buf[nul + 1:]
            frames.append(Frame(lines[0], headers, body))


class _RawBase:
    def __init__(self) -> None:
        self.parser = FrameParser()
        self.pending: List[Frame] = []

    def _recv_bytes(self, timeout: float) -> bytes:
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def recv_frame(self, timeout: float = TIMEOUT) -> Frame:
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no STOMP frame within {timeout}s")
            self.pending.extend(self.parser.feed(self._recv_bytes(remaining)))
        return self.pending.pop(0)

    def expect(self, command: str, timeout: float = TIMEOUT) -> Frame:
        f = self.recv_frame(timeout)
        assert f.command == command, f"expected {command}, got {f!r}"
        return f

    def connect(self, login: str = "guest", passcode: str = "guest", expect: str = "CONNECTED") -> Frame:
        self.send(frame("CONNECT", {"accept-version": "1.2", "host": "localhost", "login": login,
                                    "passcode": passcode, "heart-beat": "0,0"}))
        return self.expect(expect)

    def subscribe(self, destination: str, sub_id: str = "s1") -> None:
        receipt = unique("sub")
        self.send(frame("SUBSCRIBE", {"destination": destination, "id": sub_id, "receipt": receipt}))
        f = self.wait_receipt(receipt)
        assert f.command == "RECEIPT", f

    def send_frame(self, destination: str, body: bytes | str, headers: Optional[Dict[str, str]] = None,
                   receipt: bool = True) -> Optional[Frame]:
        h = {"destination": destination, **(headers or {})}
        rid = unique("send") if receipt else None
        if rid:
            h["receipt"] = rid
        self.send(frame("SEND", h, body))
        if rid:
            return self.wait_receipt(rid)
        return None

    def wait_receipt(self, rid: str, timeout: float = TIMEOUT) -> Frame:
        """Reads until the RECEIPT ``rid`` (or an ERROR); other frames stay queued in order."""
        deadline = time.monotonic() + timeout
        others: List[Frame] = []
        try:
            while True:
                f = self.recv_frame(max(deadline - time.monotonic(), 0.001))
                if f.command == "ERROR" or (f.command == "RECEIPT" and f.headers.get("receipt-id") == rid):
                    return f
                others.append(f)
        finally:
            self.pending[:0] = others

    def wait_closed(self, timeout: float = TIMEOUT) -> List[Frame]:
        """Frames received until the server closes the connection (fails if it stays open)."""
        frames: List[Frame] = []
        deadline = time.monotonic() + timeout
        frames.extend(self.pending)
        self.pending = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout}s (frames: {frames})")
            try:
                data = self._recv_bytes(remaining)
            except (ConnectionClosed, ConnectionError, EOFError):
                return frames
            if not data:
                return frames
            frames.extend(self.parser.feed(data))


class WsClient(_RawBase):
    """Raw STOMP frames over the `websockets` library (subprotocol v12.stomp)."""

    def __init__(self, url: str, origin: Optional[str] = None,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__()
        self.ws = ws_connect(url, subprotocols=["v12.stomp"], open_timeout=TIMEOUT, close_timeout=2,
                             origin=origin, additional_headers=headers, legacy=True)

    def _recv_bytes(self, timeout: float) -> bytes:
        data = self.ws.recv(timeout=timeout)
        return data.encode() if isinstance(data, str) else data

    def send(self, data: bytes) -> None:
        self.ws.send(data.decode())

    def close(self) -> None:
        self.ws.close()


class TcpClient(_RawBase):
    """Raw STOMP frames over a plain TCP socket."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)

    def _recv_bytes(self, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data") from None
        if not data:
            raise EOFError("closed")
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# stomp.py


class Collector(stomp.ConnectionListener):
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.messages: list = []
        self.errors: list = []
        self.receipts: list = []
        self.connected: list = []

    def _add(self, attr: str, value) -> None:
        with self.cond:
            getattr(self, attr).append(value)
            self.cond.notify_all()

    def on_message(self, f) -> None:
        self._add("messages", f)

    def on_error(self, f) -> None:
        self._add("errors", f)

    def on_receipt(self, f) -> None:
        self._add("receipts", f.headers.get("receipt-id"))

    def on_connected(self, f) -> None:
        self._add("connected", f)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what} (messages={len(self.messages)}, "
                                         f"errors={[e.headers for e in self.errors]})")
                self.cond.wait(remaining)

    def wait_receipt(self, rid: str) -> None:
        self.wait_for(lambda: rid in self.receipts, f"RECEIPT {rid}")

    def wait_messages(self, n: int, timeout: float = TIMEOUT) -> list:
        self.wait_for(lambda: len(self.messages) >= n, f"{n} messages", timeout)
        return self.messages[:n]


def stomppy_tcp(host: str, port: int) -> "stomp.Connection12":
    return stomp.Connection12([(host, port)], heartbeats=(0, 0), reconnect_attempts_max=1, timeout=5)


def stomppy_ws(host: str, port: int, path: str) -> "stomp.WSStompConnection":
    return stomp.WSStompConnection([(host, port)], ws_path=path, header={"Sec-WebSocket-Protocol": "v12.stomp"},
                                   reconnect_attempts_max=1, timeout=5)


def stomppy_connect(conn, login: str = "guest", passcode: str = "guest") -> Collector:
    col = Collector()
    conn.set_listener("collector", col)
    conn.connect(login, passcode, wait=True)
    return col


def stomppy_subscribe(conn, col: Collector, destination: str, sub_id: str = "s1") -> None:
    rid = unique("sub")
    conn.subscribe(destination, id=sub_id, ack="auto", headers={"receipt": rid})
    col.wait_receipt(rid)


def stomppy_close(*conns) -> None:
    for c in conns:
        try:
            if c.is_connected():
                c.disconnect()
        except Exception:  # noqa: BLE001 - best effort
            pass


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT, step: float = 0.01,
               poll: Optional[Callable[[], object]] = None) -> None:
    """Waits (bounded) for ``predicate``; ``poll`` runs between checks (e.g. ``server.poll``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if poll is not None:
            poll()
        else:
            time.sleep(step)
