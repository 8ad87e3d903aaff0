// Publish/subscribe semantics: headers, topic fan-out, queue round-robin, user destinations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest,
  delay, WSBROKER_ONLY,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(); });
after(async () => { await stopBroker(broker); });

test('subscribe with receipt, then publish with custom headers: headers arrive intact', async () => {
  const sub = await connect(broker);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('topic', 'headers');
    const { inbox } = await subscribe(sub.client, dest);
    const headers = {
      'x-custom': 'hello',
      'x-number': '42',
      'x-escaped': 'colon:in value',
      'x-unicode': 'h\u00e9llo \u2713',
      'content-type': 'text/plain',
    };
    await publish(pub.client, { destination: dest, body: 'payload with headers', headers });
    const msg = await inbox.next();
    assert.equal(msg.body, 'payload with headers');
    assert.equal(msg.headers.destination, dest);
    assert.ok(msg.headers['message-id'], 'MESSAGE must carry message-id');
    assert.ok(msg.headers.subscription, 'MESSAGE must carry subscription');
    for (const [k, v] of Object.entries(headers)) {
      assert.equal(msg.headers[k], v, `header ${k}`);
    }
  } finally {
    await disconnectAll(sub.client, pub.client);
  }
});

test('topic fan-out: each of 3 subscribers gets every message, in order', async () => {
  const subs = await Promise.all([connect(broker), connect(broker), connect(broker)]);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('topic', 'fanout');
    const inboxes = [];
    for (const s of subs) inboxes.push((await subscribe(s.client, dest)).inbox);
    const bodies = Array.from({ length: 5 }, (_, i) => `fan-${i}`);
    for (const body of bodies) await publish(pub.client, { destination: dest, body });
    for (const inbox of inboxes) {
      const got = await inbox.waitCount(bodies.length);
      assert.deepEqual(got.map((m) => m.body), bodies);
    }
  } finally {
    await disconnectAll(...subs.map((s) => s.client), pub.client);
  }
});

test('queue round-robin across 2 consumers: each message delivered exactly once overall', async () => {
  const c1 = await connect(broker);
  const c2 = await connect(broker);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('queue', 'rr');
    const { inbox: i1 } = await subscribe(c1.client, dest);
    const { inbox: i2 } = await subscribe(c2.client, dest);
    const total = 10;
    for (let i = 0; i < total; i++) await publish(pub.client, { destination: dest, body: `q-${i}` });
    // Wait until all messages arrived, whichever consumer got them.
    const deadline = Date.now() + 5000;
    while (i1.items.length + i2.items.length < total) {
      assert.ok(Date.now() < deadline,
        `timed out: got ${i1.items.length}+${i2.items.length} of ${total} messages`);
      await Promise.race([i1.waitCount(i1.items.length + 1, 200).catch(() => {}),
        i2.waitCount(i2.items.length + 1, 200).catch(() => {})]);
    }
    // Give duplicates (if any) a chance to show up before counting.
    await delay(300);
    const all = [...i1.items, ...i2.items].map((m) => m.body).sort();
    const expected = Array.from({ length: total }, (_, i) => `q-${i}`).sort();
    assert.deepEqual(all, expected, 'each message exactly once overall');
    assert.equal(i1.items.length, total / 2, 'round-robin: consumer 1 gets half');
    assert.equal(i2.items.length, total / 2, 'round-robin: consumer 2 gets half');
  } finally {
    await disconnectAll(c1.client, c2.client, pub.client);
  }
});

test('queue keeps messages while there is no subscriber', async () => {
  const pub = await connect(broker);
  let c;
  try {
    const dest = uniqueDest('queue', 'stored');
    for (let i = 0; i < 3; i++) await publish(pub.client, { destination: dest, body: `stored-${i}` });
    c = await connect(broker);
    const { inbox } = await subscribe(c.client, dest);
    const got = await inbox.waitCount(3);
    assert.deepEqual(got.map((m) => m.body), ['stored-0', 'stored-1', 'stored-2']);
  } finally {
    await disconnectAll(pub.client, c && c.client);
  }
});

test('user destination: /user/alice/queue/x reaches alice subscribed to /user/queue/x only',
  { skip: WSBROKER_ONLY }, async () => {
    const alice = await connect(broker, { connectHeaders: { login: 'alice', passcode: 'secret' } });
    const carol = await connect(broker, { connectHeaders: { login: 'carol', passcode: 'secret' } });
    const bob = await connect(broker, { connectHeaders: { login: 'bob', passcode: 'secret' } });
    try {
      const name = uniqueDest('queue', 'user').replace('/queue/', '');
      const { inbox: aliceInbox } = await subscribe(alice.client, `/user/queue/${name}`);
      const { inbox: carolInbox } = await subscribe(carol.client, `/user/queue/${name}`);
      await publish(bob.client, {
        destination: `/user/alice/queue/${name}`, body: 'for alice', headers: { 'x-from': 'bob' },
      });
      const msg = await aliceInbox.next();
      assert.equal(msg.body, 'for alice');
      assert.equal(msg.headers['x-from'], 'bob');
      // Marker for carol: when it arrives, the message for alice must not have reached her.
      await publish(bob.client, { destination: `/user/carol/queue/${name}`, body: 'for carol' });
      const carolMsg = await carolInbox.next();
      assert.equal(carolMsg.body, 'for carol');
      assert.deepEqual(carolInbox.items.map((m) => m.body), ['for carol']);
      assert.deepEqual(aliceInbox.items.map((m) => m.body), ['for alice']);
    } finally {
      await disconnectAll(alice.client, carol.client, bob.client);
    }
  });
