// permessage-deflate on raw (non-STOMP) WebSocket endpoints with the `ws` client and its
// default compression settings: negotiated, messages of 1 B ... 16 MiB echoed intact (text
// and binary, whole and fragmented), and a compressed broadcast reaching compressing and
// non-compressing clients alike.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startBroker, stopBroker, withTimeout, WSBROKER_ONLY } from '../lib/broker.js';

let broker;
let origin;
before(async () => {
  if (WSBROKER_ONLY) return;
  broker = await startBroker(['--raw-echo', '/echo', '--raw-broadcast', '/room',
    '--max-frame-size', String(17 << 20)]);
  origin = broker.wsUrl.replace(/\/ws$/, '');
});
after(async () => {
  await stopBroker(broker);
});

function open(path, options = {}) {
  const ws = new WebSocket(`${origin}${path}`, { maxPayload: 0, ...options });
  const inbox = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const item = { data, isBinary };
    const w = waiters.shift();
    if (w) w(item); else inbox.push(item);
  });
  const next = (what = 'a message') => withTimeout(new Promise((resolve) => {
    const item = inbox.shift();
    if (item) resolve(item); else waiters.push(resolve);
  }), 15_000, what);
  const opened = withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), 5_000, `open ${path}`);
  return { ws, next, opened };
}

test('raw echo with ws default compression: 1 B ... 16 MiB, text and binary, whole and fragmented',
  { skip: WSBROKER_ONLY }, async () => {
    const c = open('/echo');
    await c.opened;
    assert.match(c.ws.extensions, /permessage-deflate/);
    try {
      for (const size of [1, 255, 256, 4096, 65_536, 1 << 20, 16 << 20]) {
        const text = 'wsbroker '.repeat(Math.ceil(size / 9)).slice(0, size);
        c.ws.send(text);
        const back = await c.next(`echo of ${size} B text`);
        assert.equal(back.isBinary, false);
        assert.equal(back.data.toString('utf8'), text, `${size} B text`);
        const bin = Buffer.alloc(size, 0);
        for (let i = 0; i < size; i += 1) bin[i] = (i * 7) & 0xff;
        c.ws.send(bin);
        const binBack = await c.next(`echo of ${size} B binary`);
        assert.equal(binBack.isBinary, true);
        assert.ok(Buffer.compare(binBack.data, bin) === 0, `${size} B binary`);
      }
      // Fragmented: ws compresses the fragments as one message.
      c.ws.send('first part, ', { fin: false });
      c.ws.send('second part, ', { fin: false });
      c.ws.send('last part'.repeat(500), { fin: true });
      assert.equal((await c.next('fragmented echo')).data.toString(), `first part, second part, ${'last part'.repeat(500)}`);
    } finally {
      c.ws.close();
    }
  });

test('a compressed raw broadcast reaches compressing and plain clients', { skip: WSBROKER_ONLY }, async () => {
  const a = open('/room');
  const b = open('/room');
  const plain = open('/room', { perMessageDeflate: false });
  await Promise.all([a.opened, b.opened, plain.opened]);
  assert.equal(plain.ws.extensions, '');
  try {
    const body = JSON.stringify({ pos: [1, 2, 3], name: 'player-one' }).repeat(100);
    a.ws.send(body);
    assert.equal((await b.next('broadcast to b')).data.toString(), body);
    assert.equal((await plain.next('broadcast to the plain client')).data.toString(), body);
    plain.ws.send('from the plain client');
    assert.equal((await a.next('broadcast to a')).data.toString(), 'from the plain client');
  } finally {
    a.ws.close(); b.ws.close(); plain.ws.close();
  }
});
