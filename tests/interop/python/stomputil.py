"""Helpers shared by the tests: unique names, a collecting stomp.py listener, raw STOMP frames."""

import threading
import time
import uuid

import stomp

from conftest import LOGIN, PASSCODE

DEFAULT_TIMEOUT = 5.0


def unique_dest(kind: str, name: str) -> str:
    return f"/{kind}/interop-py-{name}-{uuid.uuid4().hex[:10]}"


class Collector(stomp.ConnectionListener):
    """Records every frame stomp.py hands to the listener; waits are bounded."""

    def __init__(self):
        self.cond = threading.Condition()
        self.messages = []
        self.receipts = []
        self.errors = []
        self.connected = []
        self.disconnected = 0
        self.heartbeat_timeouts = 0

    def _add(self, attr, value):
        with self.cond:
            getattr(self, attr).append(value)
            self.cond.notify_all()

    def on_message(self, frame):
        self._add("messages", frame)

    def on_receipt(self, frame):
        self._add("receipts", frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self._add("errors", frame)

    def on_connected(self, frame):
        self._add("connected", frame)

    def on_disconnected(self):
        with self.cond:
            self.disconnected += 1
            self.cond.notify_all()

    def on_heartbeat_timeout(self):
        with self.cond:
            self.heartbeat_timeouts += 1
            self.cond.notify_all()

    def wait_for(self, predicate, what, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                                         f"(messages={[m.body for m in self.messages]}, "
                                         f"receipts={self.receipts}, errors={[e.headers for e in self.errors]})")
                self.cond.wait(remaining)

    def wait_receipt(self, receipt_id, timeout=DEFAULT_TIMEOUT):
        self.wait_for(lambda: receipt_id in self.receipts, f"RECEIPT {receipt_id}", timeout)

    def wait_messages(self, n, timeout=DEFAULT_TIMEOUT):
        self.wait_for(lambda: len(self.messages) >= n, f"{n} messages", timeout)
        return self.messages[:n]


def new_receipt(prefix="r"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def connect(conn, collector=None, headers=None):
    collector = collector or Collector()
    conn.set_listener("collector", collector)
    conn.connect(LOGIN, PASSCODE, wait=True, headers=headers or {})
    return collector


def subscribe(conn, collector, dest, sub_id, ack="auto", headers=None):
    receipt = new_receipt("sub")
    conn.subscribe(dest, id=sub_id, ack=ack, headers={**(headers or {}), "receipt": receipt})
    collector.wait_receipt(receipt)


def send(conn, collector, dest, body, headers=None, **kw):
    receipt = new_receipt("send")
    conn.send(dest, body, headers={**(headers or {}), "receipt": receipt}, **kw)
    collector.wait_receipt(receipt)


def safe_disconnect(*conns):
    for c in conns:
        try:
            if c.is_connected():
                c.disconnect(receipt=new_receipt("bye"))
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


# ---------------------------------------------------------------------------------------------
# Raw STOMP frames (for the `websockets` tests)

def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


def unescape(value: str) -> str:
    out, i = [], 0
    table = {"\\": "\\", "r": "\r", "n": "\n", "c": ":"}
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def frame(command: str, headers=None, body: bytes | str = b"", escape_headers=True) -> bytes:
    if isinstance(body, str):
        body = body.encode()
    lines = [command]
    for k, v in (headers or {}).items():
        lines.append(f"{escape(k)}:{escape(str(v))}" if escape_headers else f"{k}:{v}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


class RawFrame:
    def __init__(self, command, headers, body):
        self.command, self.headers, self.body = command, headers, body

    def __repr__(self):
        return f"RawFrame({self.command!r}, {self.headers!r}, {self.body[:80]!r})"


class FrameParser:
    """Incremental STOMP 1.2 frame parser over a byte stream (heart-beat EOLs are counted and skipped)."""

    def __init__(self):
        self.buf = b""
        self.heartbeats = 0

    def feed(self, data: bytes | str):
        self.buf += data.encode() if isinstance(data, str) else data
        frames = []
        while True:
            while self.buf[:1] in (b"\n", b"\r"):
                if self.buf[:2] == b"\r\n":
                    self.buf = self.buf[2:]
                elif self.buf[:1] == b"\r":
                    break
                else:
                    self.buf = self.buf[1:]
                self.heartbeats += 1
            end = self.buf.find(b"\n\n")
            end_crlf = self.buf.find(b"\r\n\r\n")
            if end < 0 and end_crlf < 0:
                return frames
            if end_crlf >= 0 and (end < 0 or end_crlf < end):
                head, body_start = self.buf[:end_crlf].decode(), end_crlf + 4
            else:
                head, body_start = self.buf[:end].decode(), end + 2
            lines = head.replace("\r\n", "\n").split("\n")
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.setdefault(unescape(k), unescape(v))
            if "content-length" in headers:
                n = int(headers["content-length"])
                if len(self.buf) < body_start + n + 1:
                    return frames
                body = self.buf[body_start:body_start + n]
                assert self.buf[body_start + n:body_start + n + 1] == b"\0", "frame must end with NUL"
                self.buf = self.buf[body_start + n + 1:]
            else:
                nul = self.buf.find(b"\0", body_start)
                if nul < 0:
                    return frames
                body = self.buf[body_start:nul]
                self.buf = self.buf[nul + 1:]
            frames.append(RawFrame(lines[0], headers, body))
