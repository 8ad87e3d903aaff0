// Heart-beats: 2000,2000 negotiated and the connection stays up for more than 5 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest, delay, EXTERNAL,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(['--heartbeat', '2000']); });
after(async () => { await stopBroker(broker); });

test('heart-beat 2000,2000 negotiated; connection survives 6 s of idle time', async () => {
  let pongs = 0;
  let closedEarly = null;
  const c = await connect(broker, {
    heartbeatIncoming: 2000,
    heartbeatOutgoing: 2000,
    debug: (s) => { if (s.includes('<<< PONG')) pongs += 1; },
    onWebSocketClose: (evt) => { closedEarly = evt; },
  });
  try {
    const hb = c.connected.headers['heart-beat'];
    assert.match(hb || '', /^\d+,\d+$/, `CONNECTED heart-beat header: ${hb}`);
    if (!EXTERNAL) assert.equal(hb, '2000,2000', 'wsbroker --heartbeat 2000 offers and wants 2000 ms');
    const [sx, sy] = hb.split(',').map(Number);
    assert.ok(sx > 0, `server must offer to send heart-beats (sx=${sx})`);
    assert.ok(sy > 0, `server must want heart-beats from the client (sy=${sy})`);
    await delay(6000);
    assert.equal(closedEarly, null, `connection closed during idle period (code ${closedEarly && closedEarly.code})`);
    assert.ok(c.client.connected, 'client still connected after 6 s');
    const interval = Math.max(sx, 2000);
    assert.ok(pongs >= Math.floor(6000 / interval) - 1 && pongs >= 1,
      `expected server heart-beats every ~${interval} ms, received ${pongs} in 6 s`);
    // The connection is still fully functional.
    const dest = uniqueDest('topic', 'hb');
    const { inbox } = await subscribe(c.client, dest);
    await publish(c.client, { destination: dest, body: 'still alive' });
    assert.equal((await inbox.next()).body, 'still alive');
  } finally {
    await disconnectAll(c.client);
  }
});
