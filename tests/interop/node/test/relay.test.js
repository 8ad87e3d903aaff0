// Relay mode scale-out: two wsbroker processes relaying to the same RabbitMQ (rabbitmq_stomp on
// 127.0.0.1:61613, or WSBROKER_RELAY_BROKER). A stompjs client on A publishes to a topic and a
// client on B receives it; a queue message sent on A is consumed exactly once across consumers
// on A and B. Skipped with a reason when the broker is unreachable, except in CI (CI=true).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest, EXTERNAL,
  withTimeout,
} from '../lib/broker.js';

const RELAY = process.env.WSBROKER_RELAY_BROKER || '127.0.0.1:61613';
const IN_CI = ['true', '1'].includes(process.env.CI);

function reachable(address) {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(2000, () => done(false));
    socket.on('connect', () => done(true));
    socket.on('error', () => done(false));
  });
}

/** Resolves once `cond()` holds, re-checked whenever one of `inboxes` receives (bounded). */
function until(cond, inboxes, ms, what) {
  return withTimeout(new Promise((resolve) => {
    const check = () => {
      if (cond()) return resolve();
      for (const inbox of inboxes) if (!inbox.waiters.includes(check)) inbox.waiters.push(check);
    };
    check();
  }), ms, what);
}

let skip = false;
let a;
let b;
before(async () => {
  if (EXTERNAL) {
    skip = 'relay mode is a wsbroker feature (WSBROKER_URL targets another broker)';
    return;
  }
  if (!(await reachable(RELAY))) {
    const why = `RabbitMQ STOMP is not reachable on ${RELAY}; run \`bash scripts/rabbitmq.sh ensure\``;
    if (IN_CI) throw new Error(`${why} (CI=true: relay tests must run)`);
    skip = why;
    return;
  }
  a = await startBroker(['--relay', RELAY]);
  b = await startBroker(['--relay', RELAY]);
});
after(async () => {
  await stopBroker(a);
  await stopBroker(b);
});

test('a topic message published on A reaches a subscriber on B', async (t) => {
  if (skip) return t.skip(skip);
  const onA = await connect(a);
  const onB = await connect(b);
  try {
    const dest = uniqueDest('topic', 'relay');
    const { inbox } = await subscribe(onB.client, dest); // receipt from RabbitMQ
    await publish(onA.client, { destination: dest, body: 'from A' });
    const message = await inbox.next();
    assert.equal(message.body, 'from A');
    assert.equal(message.headers.destination, dest);
  } finally {
    await disconnectAll(onA.client, onB.client);
  }
});

test('a queue message sent on A is consumed exactly once across consumers on A and B', async (t) => {
  if (skip) return t.skip(skip);
  const sender = await connect(a);
  const consumerA = await connect(a);
  const consumerB = await connect(b);
  try {
    const dest = uniqueDest('queue', 'relay-once');
    const { inbox: inboxA } = await subscribe(consumerA.client, dest);
    const { inbox: inboxB } = await subscribe(consumerB.client, dest);
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const body of sent) await publish(sender.client, { destination: dest, body });
    const all = () => [...inboxA.items, ...inboxB.items].map((m) => m.body);
    await until(() => all().length >= sent.length, [inboxA, inboxB], 5000, `${sent.length} queue messages`);
    // A marker through the same queue: a duplicate still on its way would come before it.
    await publish(sender.client, { destination: dest, body: 'marker' });
    await until(() => all().includes('marker'), [inboxA, inboxB], 5000, 'the marker');
    const got = all().filter((body) => body !== 'marker');
    assert.equal(got.length, sent.length, `duplicates: ${got}`);
    assert.deepEqual([...got].sort(), [...sent].sort());
  } finally {
    await disconnectAll(sender.client, consumerA.client, consumerB.client);
  }
});
