// WebSocket subprotocols v10.stomp / v11.stomp / v12.stomp and STOMP version negotiation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest,
  Versions, WebSocket,
} from '../lib/broker.js';

let broker;
before(async () => { broker = await startBroker(); });
after(async () => { await stopBroker(broker); });

for (const version of ['1.0', '1.1', '1.2']) {
  const subprotocol = `v${version.replace('.', '')}.stomp`;
  test(`STOMP ${version} over subprotocol ${subprotocol}`, async () => {
    const stompVersions = new Versions([version]);
    let ws;
    const c = await connect(broker, {
      stompVersions,
      webSocketFactory: () => { ws = new WebSocket(broker.wsUrl, stompVersions.protocolVersions()); return ws; },
    });
    try {
      assert.equal(ws.protocol, subprotocol, 'negotiated WebSocket subprotocol');
      if (version !== '1.0' || c.connected.headers.version !== undefined) {
        assert.equal(c.connected.headers.version, version, 'CONNECTED version header');
      }
      const dest = uniqueDest('topic', `v${version}`);
      const { inbox } = await subscribe(c.client, dest);
      await publish(c.client, { destination: dest, body: `hello ${version}`, headers: { 'x-v': version } });
      const msg = await inbox.next();
      assert.equal(msg.body, `hello ${version}`);
      assert.equal(msg.headers['x-v'], version);
    } finally {
      await disconnectAll(c.client);
    }
  });
}
