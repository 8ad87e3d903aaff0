// Transactions: COMMIT delivers, ABORT discards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(); });
after(async () => { await stopBroker(broker); });

test('transaction commit delivers the transactional SENDs, only after COMMIT', async () => {
  const sub = await connect(broker);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('queue', 'tx-commit');
    const { inbox } = await subscribe(sub.client, dest);
    const tx = pub.client.begin();
    pub.client.publish({ destination: dest, body: 'tx-1', headers: { transaction: tx.id } });
    pub.client.publish({ destination: dest, body: 'tx-2', headers: { transaction: tx.id } });
    // A non-transactional marker (with receipt) must overtake the uncommitted messages.
    await publish(pub.client, { destination: dest, body: 'marker' });
    const first = await inbox.next();
    assert.equal(first.body, 'marker', 'transactional messages must not be delivered before COMMIT');
    tx.commit();
    const got = await inbox.waitCount(3);
    assert.deepEqual(got.map((m) => m.body), ['marker', 'tx-1', 'tx-2']);
  } finally {
    await disconnectAll(sub.client, pub.client);
  }
});

test('transaction abort discards the transactional SENDs', async () => {
  const sub = await connect(broker);
  const pub = await connect(broker);
  try {
    const dest = uniqueDest('queue', 'tx-abort');
    const { inbox } = await subscribe(sub.client, dest);
    const tx = pub.client.begin();
    pub.client.publish({ destination: dest, body: 'aborted-1', headers: { transaction: tx.id } });
    pub.client.publish({ destination: dest, body: 'aborted-2', headers: { transaction: tx.id } });
    tx.abort();
    // Frames of one connection are processed in order: once the marker arrives, ABORT was handled.
    await publish(pub.client, { destination: dest, body: 'after-abort' });
    const msg = await inbox.next();
    assert.equal(msg.body, 'after-abort');
    // A second marker catches late deliveries of aborted messages.
    await publish(pub.client, { destination: dest, body: 'after-abort-2' });
    await inbox.waitCount(2);
    assert.deepEqual(inbox.items.map((m) => m.body), ['after-abort', 'after-abort-2']);
  } finally {
    await disconnectAll(sub.client, pub.client);
  }
});
