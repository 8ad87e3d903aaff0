// Acknowledgement modes: client (cumulative) and client-individual with NACK redelivery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(); });
after(async () => { await stopBroker(broker); });

test('ack:client is cumulative; unacked messages are redelivered to the next consumer', async () => {
  const pub = await connect(broker);
  const c1 = await connect(broker);
  let c2;
  try {
    const dest = uniqueDest('queue', 'client-ack');
    const { inbox } = await subscribe(c1.client, dest, { ack: 'client' });
    for (let i = 0; i < 3; i++) await publish(pub.client, { destination: dest, body: `m${i}` });
    const got = await inbox.waitCount(3);
    assert.deepEqual(got.map((m) => m.body), ['m0', 'm1', 'm2']);
    // Acknowledge m1: in client mode this also acknowledges m0.
    got[1].ack();
    // Disconnect gracefully (DISCONNECT with receipt) so that the ACK is processed first.
    await disconnectAll(c1.client);
    c2 = await connect(broker);
    const { inbox: inbox2 } = await subscribe(c2.client, dest, { ack: 'auto' });
    const again = await inbox2.next(5000, 'redelivery of the unacknowledged m2');
    assert.equal(again.body, 'm2');
    // Marker: anything redelivered besides m2 would arrive before it.
    await publish(pub.client, { destination: dest, body: 'marker' });
    await inbox2.waitCount(2);
    assert.deepEqual(inbox2.items.map((m) => m.body), ['m2', 'marker']);
  } finally {
    await disconnectAll(pub.client, c1.client, c2 && c2.client);
  }
});

test('ack:client-individual: ACK one, NACK another -> NACKed one redelivered with redelivered:true', async () => {
  const pub = await connect(broker);
  const c = await connect(broker);
  try {
    const dest = uniqueDest('queue', 'individual');
    const { inbox } = await subscribe(c.client, dest, { ack: 'client-individual' });
    await publish(pub.client, { destination: dest, body: 'first' });
    await publish(pub.client, { destination: dest, body: 'second' });
    const [first, second] = await inbox.waitCount(2);
    assert.equal(first.body, 'first');
    assert.equal(second.body, 'second');
    assert.notEqual(first.headers.redelivered, 'true');
    assert.ok(first.headers.ack, 'STOMP 1.2 MESSAGE in client-individual mode carries an ack header');
    second.ack();
    first.nack();
    const redelivered = await inbox.next(5000, 'redelivery after NACK');
    assert.equal(redelivered.body, 'first');
    assert.equal(redelivered.headers.redelivered, 'true', JSON.stringify(redelivered.headers));
    redelivered.ack();
    // Marker proves 'second' (ACKed) is not redelivered.
    await publish(pub.client, { destination: dest, body: 'marker' });
    const marker = await inbox.next();
    assert.equal(marker.body, 'marker');
    assert.deepEqual(inbox.items.map((m) => m.body), ['first', 'second', 'first', 'marker']);
  } finally {
    await disconnectAll(pub.client, c.client);
  }
});
