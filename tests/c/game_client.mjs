#!/usr/bin/env node
// Drives examples/c/game_loop with @stomp/stompjs over WebSocket (the packages installed in
// tests/interop/node/node_modules by `npm ci`; override with WSBROKER_NODE_DIR).
//
//   node tests/c/game_client.mjs --ws ws://127.0.0.1:PORT/ws --mode poll|callback [--slow]
//
//  1. SUBSCRIBE /topic/state: snapshots arrive with increasing "tick" numbers.
//  2. SEND /app/input {"player":<unique>,"dx":1,"dy":0}   → a later snapshot shows x=1, y=0.
//  3. SEND /app/input {"player":<unique>,"dx":0,"dy":-1}  → a later snapshot shows x=1, y=-1.
//  4. SEND an invalid input (dx 5): callback mode → ERROR from the handler;
//     poll mode → ignored, later snapshots still show x=1, y=-1.
// Exit code 0 on success, 1 on a failed expectation, 2 on the overall time limit.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = process.env.WSBROKER_NODE_DIR || path.resolve(here, '../interop/node');
const require = createRequire(path.join(nodeDir, 'package.json'));
const { Client } = require('@stomp/stompjs');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const url = opt('--ws');
const mode = opt('--mode');
const slow = args.includes('--slow');
if (!url || !['poll', 'callback'].includes(mode)) {
  console.error('usage: node game_client.mjs --ws URL --mode poll|callback [--slow]');
  process.exit(64);
}
const WAIT_MS = slow ? 45_000 : 10_000;
const guard = setTimeout(() => fail('overall time limit reached', 2), slow ? 150_000 : 40_000);

function fail(message, code = 1) {
  console.error(`game_client: FAIL: ${message}`);
  process.exit(code);
}

const player = `p${process.pid}`;
const snapshots = [];
const errors = [];
let waiters = [];
const notify = () => {
  waiters = waiters.filter((w) => !w());
};

// Resolves when predicate() holds; fails after WAIT_MS.
function waitFor(predicate, what) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      const last = snapshots.length ? JSON.stringify(snapshots[snapshots.length - 1]) : 'none';
      fail(`timed out after ${WAIT_MS} ms waiting for ${what} (snapshots: ${snapshots.length}, last: ${last}, errors: ${JSON.stringify(errors)})`);
    }, WAIT_MS);
    const check = () => {
      if (!predicate()) return false;
      clearTimeout(timer);
      resolve();
      return true;
    };
    if (!check()) waiters.push(check);
  });
}

const me = (snap) => (snap.players || []).find((p) => p.id === player);

let connectedResolve;
const connected = new Promise((resolve) => { connectedResolve = resolve; });
let closing = false;
const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  connectHeaders: { login: player, passcode: 'x' },
  reconnectDelay: 0,
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  onConnect: () => connectedResolve(),
  onStompError: (frame) => {
    errors.push({ message: frame.headers.message, body: frame.body });
    notify();
  },
  onWebSocketClose: (evt) => {
    if (!closing && !(mode === 'callback' && errors.length)) fail(`WebSocket closed unexpectedly (code ${evt.code})`);
  },
});

async function sendInput(body) {
  const receipt = `in-${snapshots.length}-${Math.random().toString(36).slice(2, 8)}`;
  const got = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.publish({ destination: '/app/input', body: JSON.stringify(body), headers: { receipt, 'content-type': 'application/json' } });
  await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error('no receipt')), WAIT_MS))])
    .catch(() => fail(`no RECEIPT for input ${JSON.stringify(body)}`));
}

async function main() {
  client.activate();
  await connected;
  client.subscribe('/topic/state', (m) => {
    let snap;
    try {
      snap = JSON.parse(m.body);
    } catch (e) {
      fail(`snapshot is not JSON: ${m.body}`);
    }
    const prev = snapshots[snapshots.length - 1];
    if (typeof snap.tick !== 'number' || (prev && snap.tick <= prev.tick)) {
      fail(`snapshot ticks must increase: ${prev && prev.tick} then ${m.body}`);
    }
    snapshots.push(snap);
    notify();
  });

  await waitFor(() => snapshots.length >= 3, 'three snapshots on /topic/state');
  const t0 = snapshots[snapshots.length - 1].tick;

  await sendInput({ player, dx: 1, dy: 0 });
  await waitFor(() => { const p = me(snapshots[snapshots.length - 1]); return p && p.x === 1 && p.y === 0; },
    `a snapshot with ${player} at (1,0)`);
  if (snapshots[snapshots.length - 1].tick <= t0) fail('the move showed up in an older tick');

  await sendInput({ player, dx: 0, dy: -1 });
  await waitFor(() => { const p = me(snapshots[snapshots.length - 1]); return p && p.x === 1 && p.y === -1; },
    `a snapshot with ${player} at (1,-1)`);

  const bad = { player, dx: 5, dy: 0 };
  if (mode === 'callback') {
    // The app callback refuses it: ERROR "/app/input failed: invalid input: ..."
    client.publish({ destination: '/app/input', body: JSON.stringify(bad) });
    await waitFor(() => errors.length > 0, 'an ERROR for the invalid input');
    if (!/invalid input/.test(errors[0].message || '')) fail(`unexpected ERROR ${JSON.stringify(errors[0])}`);
  } else {
    // The main loop ignores it: the position must not change over the next ticks.
    await sendInput(bad);
    const after = snapshots.length;
    await waitFor(() => snapshots.length >= after + 10, 'ten more snapshots');
    const p = me(snapshots[snapshots.length - 1]);
    if (!p || p.x !== 1 || p.y !== -1) fail(`the invalid input moved the player: ${JSON.stringify(p)}`);
    if (errors.length) fail(`unexpected ERROR ${JSON.stringify(errors)}`);
  }

  closing = true;
  await client.deactivate();
  clearTimeout(guard);
  console.log(`game_client: PASS (${snapshots.length} snapshots, ticks ${snapshots[0].tick}..${snapshots[snapshots.length - 1].tick})`);
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
