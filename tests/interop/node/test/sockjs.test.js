// STOMP over SockJS with the clients browsers use: sockjs-client 1.6 carrying @stomp/stompjs,
// once per transport sockjs-client can run in Node.
//
// In Node, sockjs-client has drivers for `websocket` (faye-websocket), `xhr-streaming` and
// `xhr-polling` (node:http) and `eventsource` (the `eventsource` package). The `htmlfile`,
// `jsonp-polling`, `xdr-*` and `iframe-*` transports need a browser DOM (document, iframes,
// script tags, XDomainRequest) and report themselves disabled in Node; the Rust suite
// (tests/sockjs_protocol.rs) covers those transports at the protocol level.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SockJS from 'sockjs-client';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest, withTimeout,
  DEFAULT_TIMEOUT_MS, EXTERNAL,
} from '../lib/broker.js';

const SKIP = EXTERNAL ? 'SockJS URL of an external broker is not known' : false;

let broker;
before(async () => { if (!SKIP) broker = await startBroker(); });
after(async () => { if (!SKIP) await stopBroker(broker); });

/** A stompjs client over a SockJS socket restricted to one transport. */
async function connectSockJS(transport) {
  let socket;
  const session = await connect(broker, {
    webSocketFactory: () => {
      socket = new SockJS(broker.sockjsUrl, null, { transports: [transport], timeout: DEFAULT_TIMEOUT_MS });
      return socket;
    },
  });
  // The session really runs on the transport asked for (no silent fallback).
  assert.equal(socket.transport, transport);
  return session;
}

for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
  test(`sockjs-client ${transport}: subscribe, publish, receive, unicode and a large body`, { skip: SKIP }, async () => {
    const sub = await connectSockJS(transport);
    const pub = await connectSockJS(transport);
    try {
      assert.equal(sub.connected.headers.version, '1.2');
      const dest = uniqueDest('topic', `sockjs-${transport}`);
      const { inbox } = await subscribe(sub.client, dest);
      const bodies = [
        'hello over sockjs',
        'unicode h\u00e9llo \u2713 \u2028 \ud83d\ude00 "quoted" \\ back',
        'x'.repeat(200_000),
      ];
      for (const body of bodies) {
        await publish(pub.client, { destination: dest, body, headers: { 'content-type': 'text/plain' } });
      }
      const got = await inbox.waitCount(bodies.length);
      assert.deepEqual(got.map((m) => m.body), bodies);
      assert.equal(got[0].headers.destination, dest);
    } finally {
      await disconnectAll(sub.client, pub.client);
    }
  });
}

test('sockjs and plain WebSocket clients share one broker', { skip: SKIP }, async () => {
  const viaSockJS = await connectSockJS('xhr-streaming');
  const viaWs = await connect(broker);
  try {
    const dest = uniqueDest('topic', 'mixed');
    const { inbox } = await subscribe(viaSockJS.client, dest);
    await publish(viaWs.client, { destination: dest, body: 'from ws to sockjs' });
    assert.equal((await inbox.next()).body, 'from ws to sockjs');
  } finally {
    await disconnectAll(viaSockJS.client, viaWs.client);
  }
});

test('sockjs /info as sockjs-client reads it', { skip: SKIP }, async () => {
  const response = await withTimeout(fetch(`${broker.sockjsUrl}/info`), DEFAULT_TIMEOUT_MS, '/info');
  assert.equal(response.status, 200);
  const info = await response.json();
  assert.equal(info.websocket, true);
  assert.deepEqual(info.origins, ['*:*']);
  assert.equal(typeof info.entropy, 'number');
});
