#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (run from anywhere; idempotent).

ws_decoder, stomp_decoder and stomp_session inputs start with one selector byte (see
src/fuzzing.rs): ws: bit0 = tiny limits, bit1 = permessage-deflate; stomp: bits0-1 = version (none/1.0/1.1/1.2),
bit2 = tiny limits; session: bit3/4 = connect answer, bit5 = refuse SUBSCRIBE;
sockjs_frame: bit0 = a single string is accepted too, bit1 = tiny limit.
"""
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MASK = b"\x37\xfa\x21\x3d"


def ws(b0, payload, mask=MASK, ext=None):
    n = len(payload)
    if ext == 16 or (ext is None and 126 <= n <= 0xFFFF):
        head = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    elif ext == 64 or (ext is None and n > 0xFFFF):
        head = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    else:
        head = bytes([b0, 0x80 | n])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def stomp(cmd, headers=(), body=b"", nul=True):
    out = cmd.encode() + b"\n"
    for k, v in headers:
        out += k.encode() + b":" + v.encode() + b"\n"
    return out + b"\n" + body + (b"\x00" if nul else b"")


def deflate(data):
    """A permessage-deflate payload: raw deflate, sync flush, trailing 00 00 ff ff removed."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


CONNECT = {
    "1.0": stomp("CONNECT", [("login", "a"), ("passcode", "b")]),
    "1.1": stomp("CONNECT", [("accept-version", "1.1"), ("host", "/"), ("heart-beat", "0,1000")]),
    "1.2": stomp("STOMP", [("accept-version", "1.0,1.1,1.2"), ("host", "/")]),
}
SESSION_BODY = [
    stomp("SUBSCRIBE", [("destination", "/topic/a"), ("id", "0"), ("receipt", "r1")]),
    stomp("SEND", [("destination", "/topic/a"), ("content-length", "5")], b"he\x00lo"),
    stomp("SEND", [("destination", "/queue/q"), ("receipt", "r2")], b"body"),
    stomp("SUBSCRIBE", [("destination", "/queue/q"), ("id", "1"), ("ack", "client-individual")]),
    stomp("ACK", [("id", "1-1"), ("message-id", "1-1"), ("subscription", "1")]),
    stomp("NACK", [("id", "x")]),
    stomp("BEGIN", [("transaction", "t")]),
    stomp("SEND", [("destination", "/queue/q"), ("transaction", "t")], b"tx"),
    stomp("COMMIT", [("transaction", "t")]),
    stomp("BEGIN", [("transaction", "u")]),
    stomp("ABORT", [("transaction", "u")]),
    stomp("UNSUBSCRIBE", [("id", "0")]),
    b"\n\r\n",
    stomp("DISCONNECT", [("receipt", "bye")]),
]

CORPUS = {
    "ws_decoder": {
        "text": b"\x00" + ws(0x81, b"Hello"),
        "binary_16bit_len": b"\x00" + ws(0x82, bytes(range(256)) * 2),
        "fragmented_text_with_ping": b"\x00" + ws(0x01, "κό".encode()) + ws(0x89, b"ping")
        + ws(0x00, b"\xcf\x83") + ws(0x80, "με€".encode()),
        "close_with_reason": b"\x00" + ws(0x88, b"\x03\xe8bye"),
        "close_empty": b"\x00" + ws(0x88, b"") + ws(0x81, b"after close"),
        "close_bad_code": b"\x00" + ws(0x88, b"\x03\xed"),
        "pong_then_text": b"\x00" + ws(0x8A, b"p") + ws(0x81, b"x", mask=b"\0\0\0\0"),
        "invalid_utf8": b"\x00" + ws(0x81, b"a\xed\xa0\x80"),
        "utf8_split_fragments": b"\x00" + ws(0x01, b"\xf0\x9d") + ws(0x80, b"\x84\x9e"),
        "unmasked": b"\x00\x81\x02hi",
        "rsv_bits": b"\x00" + ws(0xC1, b"x"),
        "reserved_opcode": b"\x00" + ws(0x83, b""),
        "continuation_first": b"\x00" + ws(0x80, b"x"),
        "nonminimal_64bit_len": b"\x00" + ws(0x82, b"abc", ext=64),
        "msb_64bit_len": b"\x00\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01" + MASK,
        "tiny_limits_fragments": b"\x01" + ws(0x02, b"a" * 60) + ws(0x00, b"b" * 60),
        "stomp_in_ws": b"\x00" + ws(0x81, CONNECT["1.2"]) + ws(0x81, SESSION_BODY[1]),
        # permessage-deflate (selector bit 1): RFC 7692 "Hello", fragmented with RSV1 on the
        # first frame only, a stored block, a bomb under tiny limits, RSV1 on a continuation.
        "deflate_hello": b"\x02" + ws(0xC1, b"\xf2\x48\xcd\xc9\xc9\x07\x00"),
        "deflate_fragmented": b"\x02" + ws(0x41, b"\xf2\x48\xcd") + ws(0x89, b"")
        + ws(0x80, b"\xc9\xc9\x07\x00") + ws(0xC2, b"\x00\x05\x00\xfa\xffHello"),
        "deflate_stomp": b"\x02" + ws(0xC1, deflate(CONNECT["1.2"] + SESSION_BODY[1])),
        "deflate_bomb_tiny_limits": b"\x03" + ws(0xC2, deflate(b"\x00" * 4096)),
        "deflate_rsv1_continuation": b"\x02" + ws(0x41, b"\xf2\x48") + ws(0xC0, b"\xcd"),
        "deflate_corrupt": b"\x02" + ws(0xC1, b"\xff\xff\xff"),
    },
    "ws_handshake": {
        "upgrade": b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: v11.stomp, v12.stomp\r\nOrigin: https://example.com\r\n\r\n",
        "upgrade_pipelined_frame": b"GET /stomp?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" + ws(0x81, b"CONNECT\n\n\x00"),
        "deflate_offers": b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, x-foo; a=\"b,c\"\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"10\"; "
        b"client_max_window_bits\r\n\r\n",
        "bad_version": b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        "post": b"POST /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "http10": b"GET /ws HTTP/1.0\r\n\r\n",
        "http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "partial": b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: webs",
        "bad_key": b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    },
    "stomp_decoder": {
        "connect_none": b"\x00" + CONNECT["1.0"] + CONNECT["1.1"],
        "send_v10_raw_colon": b"\x01" + stomp("SEND", [("destination", "/q"), ("a", "b:c\\n")], b"x"),
        "send_v11_escapes": b"\x02" + stomp("SEND", [("destination", "/q"), ("k\\c", "v\\n\\\\")], b"y"),
        "send_v11_bad_escape": b"\x02" + stomp("SEND", [("destination", "/q\\r")]),
        "send_v12_escapes_crlf": b"\x03" + stomp("SEND", [("destination", "/q\\r\\c")]).replace(b"\n", b"\r\n"),
        "content_length_nuls": b"\x03" + stomp("SEND", [("content-length", " 4\t"), ("content-length", "9")], b"\x00\x00ab") + b"\n\n",
        "content_length_no_nul": b"\x03" + stomp("SEND", [("content-length", "1")], b"ab"),
        "bad_content_length": b"\x02" + stomp("SEND", [("content-length", "-1")]),
        "heartbeats": b"\x03\n\n\r\n\n" + stomp("MESSAGE", [("subscription", "0")], b"m") + b"\r\n",
        "unknown_command": b"\x03FOO\n\n\x00",
        "empty_header_name": b"\x03SEND\n:v\n\n\x00",
        "missing_colon": b"\x02SEND\nnocolon\n\n\x00",
        "bad_utf8_header": b"\x01SEND\na:\xff\n\n\x00",
        "tiny_limits": b"\x07" + stomp("SEND", [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]),
        "tiny_limits_long_header": b"\x06" + stomp("SEND", [("h", "v" * 60)]),
        "all_commands": b"\x03" + b"".join(stomp(c) for c in [
            "CONNECT", "STOMP", "CONNECTED", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK",
            "BEGIN", "COMMIT", "ABORT", "DISCONNECT", "MESSAGE", "RECEIPT", "ERROR"]),
    },
    "stomp_session": {
        "v10_flow": b"\x00" + CONNECT["1.0"] + b"".join(SESSION_BODY),
        "v11_flow_user": b"\x08" + CONNECT["1.1"] + b"".join(SESSION_BODY),
        "v12_flow_escaped": b"\x00" + CONNECT["1.2"] + stomp("SUBSCRIBE", [("destination", "/topic/a\\cb"), ("id", "s\\n")])
        + stomp("SEND", [("destination", "/topic/a:b"), ("content-length", "2")], b"\x00\x00") + b"".join(SESSION_BODY),
        "user_dest": b"\x08" + CONNECT["1.2"] + stomp("SUBSCRIBE", [("destination", "/user/queue/x"), ("id", "0")])
        + stomp("SEND", [("destination", "/user/fuzz/queue/x")], b"hi"),
        "connect_rejected": b"\x18" + CONNECT["1.2"] + SESSION_BODY[0],
        "subscribe_refused": b"\x20" + CONNECT["1.2"] + SESSION_BODY[0] + SESSION_BODY[1],
        "send_before_connect": b"\x00" + SESSION_BODY[1] + CONNECT["1.2"],
        "bad_version": b"\x00" + stomp("CONNECT", [("accept-version", "2.0")]),
        "double_connect": b"\x00" + CONNECT["1.2"] + CONNECT["1.1"],
        "decode_error_after_connect": b"\x04" + CONNECT["1.1"] + b"SEND\n" + b"h:" + b"v" * 80 + b"\n\n\x00",
    },
    "sockjs_frame": {
        "array": b"\x00" + b'["a","b"]',
        "empty_array": b"\x00[]",
        "single_string": b"\x01" + b'"CONNECT\\naccept-version:1.2\\n\\n\\u0000"',
        "stomp_split": b"\x00" + b'["SEND\\ndestination:/q\\n", "\\nbody\\u0000"]',
        "escapes": b"\x00" + b'["\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u2028 \\uffff"]',
        "surrogates": b"\x00" + b'["\\ud83d\\ude00 \\ud800 \\udc00 \\ud800\\u0041"]',
        "utf8": b"\x00" + '["h\u00e9llo \u20ac \U0001f600"]'.encode(),
        "whitespace": b"\x01" + b' \t\r\n[ "x" ,\n"y" ]\n ',
        "broken": b"\x00" + b'["x',
        "raw_control": b"\x00" + b'["a\x01"]',
        "trailing": b"\x00" + b'["a"] x',
        "tiny_limit": b"\x02" + b'["' + b"x" * 40 + b'"]',
        "url_like": b"\x00/sockjs/000/abc/xhr_streaming",
    },
}

for target, files in CORPUS.items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print("wrote", sum(len(f) for f in CORPUS.values()), "files")
