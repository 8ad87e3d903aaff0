// permessage-deflate (RFC 7692) with the `ws` library: negotiation, large STOMP messages
// compressed in both directions (checked with the bytes the socket actually carried), a zip
// bomb closed with 1009, and the switch that turns compression off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  startBroker, stopBroker, uniqueDest, withTimeout, WSBROKER_ONLY, LOGIN, PASSCODE, DEFAULT_TIMEOUT_MS,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(); });
after(async () => { await stopBroker(broker); });

/** A raw STOMP-over-WebSocket client on `ws`, with the TCP socket for byte counts. */
class RawStomp {
  static async open(url, wsOptions = { perMessageDeflate: true }) {
    const c = new RawStomp();
    c.ws = new WebSocket(url, ['v12.stomp'], wsOptions);
    c.frames = [];
    c.waiters = [];
    c.closed = new Promise((resolve) => c.ws.on('close', (code) => resolve(code)));
    c.ws.on('upgrade', (res) => {
      c.socket = res.socket;
      c.agreed = res.headers['sec-websocket-extensions'] || '';
    });
    c.ws.on('message', (data) => {
      const text = data.toString('utf8');
      for (const part of text.split('\0')) {
        if (part.replace(/[\r\n]/g, '') === '') continue; // heart-beats and the trailing NUL
        c.frames.push(part.replace(/^[\r\n]+/, ''));
      }
      c.wake();
    });
    c.ws.on('error', () => {});
    await withTimeout(new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    }), DEFAULT_TIMEOUT_MS, 'the WebSocket to open');
    return c;
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(command, headers, body = '') {
    const lines = Object.entries(headers).map(([k, v]) => `${k}:${v}`);
    this.ws.send(`${command}\n${lines.join('\n')}\n\n${body}\0`);
  }

  /** The next STOMP frame as { command, headers, body } (bounded wait). */
  async next(what, timeoutMs = DEFAULT_TIMEOUT_MS) {
    return withTimeout((async () => {
      while (this.frames.length === 0) {
        await new Promise((resolve) => this.waiters.push(resolve));
      }
      const raw = this.frames.shift();
      const split = raw.indexOf('\n\n');
      const [command, ...lines] = raw.slice(0, split).split('\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
      return { command, headers, body: raw.slice(split + 2) };
    })(), timeoutMs, what);
  }

  async expect(command) {
    const frame = await this.next(command);
    assert.equal(frame.command, command, JSON.stringify(frame));
    return frame;
  }

  async connect() {
    this.send('CONNECT', { 'accept-version': '1.2', host: 'localhost', login: LOGIN, passcode: PASSCODE, 'heart-beat': '0,0' });
    return this.expect('CONNECTED');
  }
}

/** A JSON document of about `size` bytes, like a market-data snapshot. */
function jsonBody(size) {
  const items = [];
  let length = 2;
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: i, symbol: `SYM${i % 13}`, price: 100 + (i % 50) / 4, qty: i * 10 });
    items.push(item);
    length += item.length + 1;
  }
  return `[${items.join(',')}]`;
}

test('ws negotiates permessage-deflate and large messages travel compressed both ways', { skip: WSBROKER_ONLY }, async () => {
  const sub = await RawStomp.open(broker.wsUrl);
  const pub = await RawStomp.open(broker.wsUrl);
  try {
    for (const c of [sub, pub]) {
      assert.equal(c.ws.extensions, 'permessage-deflate');
      assert.match(c.agreed, /^permessage-deflate/);
      assert.match(c.agreed, /server_no_context_takeover/);
      assert.match(c.agreed, /client_no_context_takeover/);
      await c.connect();
    }
    const dest = uniqueDest('topic', 'deflate');
    sub.send('SUBSCRIBE', { id: 's1', destination: dest, receipt: 'sub' });
    assert.equal((await sub.expect('RECEIPT')).headers['receipt-id'], 'sub');

    const body = jsonBody(256 * 1024);
    const readBefore = sub.socket.bytesRead;
    const writtenBefore = pub.socket.bytesWritten;
    pub.send('SEND', { destination: dest, 'content-type': 'application/json', receipt: 'sent' }, body);
    assert.equal((await pub.expect('RECEIPT')).headers['receipt-id'], 'sent');
    const msg = await sub.expect('MESSAGE');
    assert.equal(msg.headers.subscription, 's1');
    assert.equal(msg.headers['content-length'], String(Buffer.byteLength(body)));
    assert.ok(msg.body === body, 'body differs');
    // Both directions carried far fewer bytes than the message: it was compressed.
    const read = sub.socket.bytesRead - readBefore;
    const written = pub.socket.bytesWritten - writtenBefore;
    assert.ok(read < body.length / 4, `subscriber read ${read} bytes for a ${body.length}-byte body`);
    assert.ok(written < body.length / 4, `publisher wrote ${written} bytes for a ${body.length}-byte body`);
  } finally {
    sub.ws.close();
    pub.ws.close();
  }
});

test('a compressed message that inflates past the limit is closed with 1009', { skip: WSBROKER_ONLY }, async () => {
  const small = await startBroker(['--max-frame-size', String(64 * 1024)]);
  try {
    const c = await RawStomp.open(small.wsUrl);
    await c.connect();
    // 8 MiB of one letter: a few KiB on the wire.
    const bomb = `SEND\ndestination:/topic/bomb\n\n${'A'.repeat(8 * 1024 * 1024)}\0`;
    const written = c.socket.bytesWritten;
    c.ws.send(bomb);
    const code = await withTimeout(c.closed, DEFAULT_TIMEOUT_MS, 'the close');
    assert.equal(code, 1009);
    assert.ok(c.socket.bytesWritten - written < 64 * 1024, 'the bomb was sent compressed');
  } finally {
    await stopBroker(small);
  }
});

test('--no-permessage-deflate ignores the offer', { skip: WSBROKER_ONLY }, async () => {
  const plain = await startBroker(['--no-permessage-deflate']);
  try {
    const c = await RawStomp.open(plain.wsUrl);
    assert.equal(c.ws.extensions, '');
    assert.equal(c.agreed, '');
    await c.connect();
    c.ws.close();
  } finally {
    await stopBroker(plain);
  }
});
