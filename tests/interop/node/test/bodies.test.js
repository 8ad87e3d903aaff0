// Bodies: a 1 MiB text body split in 8 KiB WebSocket messages, and a binary body with NUL bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest, EXTERNAL,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(['--max-frame-size', String(8 * 1024 * 1024)]); });
after(async () => { await stopBroker(broker); });

test('1 MiB text body sent in 8 KiB WebSocket chunks arrives intact', async () => {
  const sub = await connect(broker, { timeoutMs: 10000 });
  const pub = await connect(broker, { splitLargeFrames: true, maxWebSocketChunkSize: 8 * 1024 });
  try {
    const dest = uniqueDest('queue', 'large');
    const { inbox } = await subscribe(sub.client, dest);
    const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
    let body = '';
    for (let i = 0; body.length < 1024 * 1024; i++) body += `${i}:${line}\n`;
    body = body.slice(0, 1024 * 1024);
    await publish(pub.client, { destination: dest, body, headers: { 'x-size': String(body.length) } });
    const msg = await inbox.next(15000, 'the 1 MiB message');
    assert.equal(msg.headers['x-size'], String(1024 * 1024));
    assert.equal(msg.body.length, body.length);
    assert.ok(msg.body === body, 'body differs');
  } finally {
    await disconnectAll(sub.client, pub.client);
  }
});

test('binary body with NUL bytes (binaryBody) arrives byte-exact', async () => {
  const sub = await connect(broker);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('queue', 'binary');
    const { inbox } = await subscribe(sub.client, dest);
    // All 256 byte values (RabbitMQ Web-STOMP sends text WebSocket frames: keep to ASCII there).
    const range = EXTERNAL ? 128 : 256;
    const bytes = new Uint8Array(4 * range + 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % range;
    bytes.set([0, 0, 0], bytes.length - 3); // trailing NULs too
    await publish(pub.client, {
      destination: dest, binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' },
    });
    const msg = await inbox.next();
    assert.equal(msg.headers['content-length'], String(bytes.length));
    assert.deepEqual(Buffer.from(msg.binaryBody), Buffer.from(bytes));
  } finally {
    await disconnectAll(sub.client, pub.client);
  }
});
