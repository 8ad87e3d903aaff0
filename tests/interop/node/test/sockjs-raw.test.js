// SockJS for raw (non-STOMP) endpoints, driven by sockjs-client 1.6 against the services the
// SockJS protocol test suite expects (`wsbroker --sockjs-test-services`): echo, close,
// disabled websocket and cookie-needed, over every transport sockjs-client runs in Node
// (websocket, xhr-streaming, xhr-polling, eventsource; the DOM-only ones are covered at the
// protocol level by the Rust suite). Also a broadcast endpoint shared by SockJS and plain
// WebSocket clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SockJS from 'sockjs-client';
import WebSocket from 'ws';
import { startBroker, stopBroker, withTimeout, DEFAULT_TIMEOUT_MS, WSBROKER_ONLY } from '../lib/broker.js';

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];

let broker;
let origin;
before(async () => {
  if (WSBROKER_ONLY) return;
  broker = await startBroker(['--sockjs-test-services', '--raw-broadcast', '/room', '--raw-sockjs']);
  origin = broker.wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
});
after(async () => { await stopBroker(broker); });

/** A SockJS socket restricted to `transport`, with a bounded inbox. */
function open(path, transport) {
  const socket = new SockJS(`${origin}${path}`, null, { transports: [transport], timeout: DEFAULT_TIMEOUT_MS });
  const inbox = [];
  const waiters = [];
  socket.onmessage = (e) => {
    const w = waiters.shift();
    if (w) w(e.data); else inbox.push(e.data);
  };
  const next = (what) => withTimeout(new Promise((resolve) => {
    if (inbox.length) resolve(inbox.shift()); else waiters.push(resolve);
  }), DEFAULT_TIMEOUT_MS, what);
  const opened = withTimeout(new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onclose = (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`));
  }), DEFAULT_TIMEOUT_MS, `open ${path} over ${transport}`);
  const closed = new Promise((resolve) => { socket.addEventListener('close', resolve); });
  return { socket, next, opened, closed };
}

for (const transport of TRANSPORTS) {
  test(`sockjs-client ${transport}: /echo echoes text, unicode and a message above the response limit`,
    { skip: WSBROKER_ONLY }, async () => {
      const c = open('/echo', transport);
      await c.opened;
      assert.equal(c.socket.transport, transport, 'no silent fallback');
      try {
        const messages = ['hello', '', 'unicode h\u00e9llo \u2713 \u2028 \ud83d\ude00 "q" \\ b', 'x'.repeat(10_000)];
        for (const m of messages) c.socket.send(m);
        for (const m of messages) assert.equal(await c.next(`echo of ${m.length} chars`), m);
      } finally {
        c.socket.close();
      }
    });

  test(`sockjs-client ${transport}: /close closes every session with 3000 "Go away!"`,
    { skip: WSBROKER_ONLY }, async () => {
      const c = open('/close', transport);
      await c.opened;
      const evt = await withTimeout(c.closed, DEFAULT_TIMEOUT_MS, 'close from /close');
      assert.equal(evt.code, 3000);
      assert.equal(evt.reason, 'Go away!');
    });
}

test('/disabled_websocket_echo offers no websocket and echoes over xhr-streaming', { skip: WSBROKER_ONLY }, async () => {
  const info = await (await fetch(`${origin}/disabled_websocket_echo/info`)).json();
  assert.equal(info.websocket, false);
  const c = open('/disabled_websocket_echo', 'xhr-streaming');
  await c.opened;
  try {
    c.socket.send('no websocket here');
    assert.equal(await c.next('echo'), 'no websocket here');
  } finally {
    c.socket.close();
  }
});

test('/cookie_needed_echo asks for and sets JSESSIONID', { skip: WSBROKER_ONLY }, async () => {
  const info = await (await fetch(`${origin}/cookie_needed_echo/info`)).json();
  assert.equal(info.cookie_needed, true);
  const response = await fetch(`${origin}/cookie_needed_echo/000/cookie1/xhr`, { method: 'POST' });
  assert.match(response.headers.get('set-cookie') || '', /JSESSIONID=/);
  assert.equal(await response.text(), 'o\n');
  const c = open('/cookie_needed_echo', 'xhr-polling');
  await c.opened;
  try {
    c.socket.send('with a cookie');
    assert.equal(await c.next('echo'), 'with a cookie');
  } finally {
    c.socket.close();
  }
});

test('a raw broadcast endpoint is shared by SockJS and plain WebSocket clients', { skip: WSBROKER_ONLY }, async () => {
  const sock = open('/room', 'xhr-streaming');
  await sock.opened;
  const ws = new WebSocket(`${broker.wsUrl.replace(/\/ws$/, '')}/room`);
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }),
    DEFAULT_TIMEOUT_MS, 'plain websocket open');
  const fromSock = withTimeout(new Promise((resolve) => ws.once('message', (d) => resolve(d.toString()))),
    DEFAULT_TIMEOUT_MS, 'message at the plain client');
  try {
    sock.socket.send('from sockjs');
    assert.equal(await fromSock, 'from sockjs');
    ws.send('from websocket');
    assert.equal(await sock.next('message at the sockjs client'), 'from websocket');
  } finally {
    sock.socket.close();
    ws.close();
  }
});
