#!/usr/bin/env node
// Publishes one message with @stomp/stompjs over WebSocket, waits for its RECEIPT, exits 0.
// Usage: node publish.mjs URL DESTINATION BODY [name=value ...]
// Used by the Python suite for the cross-transport test. Exits 1 on error, 2 after 10 s.
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const [url, destination, body, ...pairs] = process.argv.slice(2);
if (!url || !destination || body === undefined) {
  console.error('usage: node publish.mjs URL DESTINATION BODY [name=value ...]');
  process.exit(64);
}
const headers = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
const guard = setTimeout(() => { console.error('publish.mjs: timed out after 10 s'); process.exit(2); }, 10_000);

let done = false;
const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  connectHeaders: {
    login: process.env.WSBROKER_LOGIN || 'guest',
    passcode: process.env.WSBROKER_PASSCODE || 'guest',
  },
  reconnectDelay: 0,
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  onConnect: () => {
    const receipt = `publish-mjs-${process.pid}`;
    client.watchForReceipt(receipt, async () => {
      done = true;
      await client.deactivate();
      clearTimeout(guard);
      process.exit(0);
    });
    client.publish({ destination, body, headers: { ...headers, receipt } });
  },
  onStompError: (frame) => {
    console.error(`publish.mjs: STOMP ERROR ${frame.headers.message}: ${frame.body}`);
    process.exit(1);
  },
  onWebSocketClose: (evt) => {
    if (done) return;
    console.error(`publish.mjs: WebSocket closed (code ${evt.code})`);
    process.exit(1);
  },
});
client.activate();
