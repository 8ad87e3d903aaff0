// JWT token authentication (docs/authentication.md) with @stomp/stompjs: HS256 tokens in the
// CONNECT passcode or token header, wsb.sub/wsb.pub permissions, refresh on the live connection
// by SEND to /wsb/refresh, expiry closing a session that did not refresh, and private
// destinations opened by subscription tokens whose expiry ends only that subscription.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  startBroker, stopBroker, connect, disconnectAll, subscribe, publish, uniqueDest,
  nextReceiptId, receiptPromise, withTimeout, delay, WSBROKER_ONLY,
} from '../lib/broker.js';

const SECRET = 'interop-jwt-secret-0123456789abcdef';

let broker;
let tmpDir;
before(async () => {
  if (WSBROKER_ONLY) return;
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'wsbroker-jwt-'));
  const secretFile = path.join(tmpDir, 'hs256.secret');
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  // Leeway 0: a token is refused (and a session closed) exactly at its `exp`.
  broker = await startBroker(['--jwt-hmac-secret-file', secretFile, '--jwt-leeway', '0',
    '--jwt-private', '/topic/private/**']);
});
after(async () => {
  try {
    await stopBroker(broker);
  } finally {
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  }
});

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An HS256 JWT signed with `secret`. */
function sign(claims, secret = SECRET) {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** `exp` (whole seconds) at least `secs` seconds from now. */
const expIn = (secs) => Math.ceil(Date.now() / 1000 + secs);

/**
 * After `connect()`: the first ERROR frame and the WebSocket close of the session, as promises
 * (bounded by the caller with withTimeout). The harness' own handlers only watch the handshake.
 */
function watchSession(c) {
  const state = { error: null, closeEvt: null };
  state.errored = new Promise((resolve) => {
    c.client.onStompError = (frame) => { state.error = state.error || frame; resolve(frame); };
  });
  state.closed = c.closed.then((evt) => { state.closeEvt = evt; return evt; });
  return state;
}

test('valid HS256 token connects (passcode and token header) and pub/sub works; bad signature is refused',
  { skip: WSBROKER_ONLY }, async () => {
    const dest = uniqueDest('topic', 'jwt-ok');
    const perms = { 'wsb.sub': [dest], 'wsb.pub': [dest] };
    // stompjs' connectHeaders passcode carries the token (the login is ignored) ...
    const sub = await connect(broker, {
      connectHeaders: { passcode: sign({ sub: 'alice', exp: expIn(300), ...perms }) },
    });
    // ... or a `token` header.
    const pub = await connect(broker, {
      connectHeaders: { login: '', passcode: '', token: sign({ sub: 'bob', exp: expIn(300), ...perms }) },
    });
    try {
      const { inbox } = await subscribe(sub.client, dest);
      await publish(pub.client, { destination: dest, body: 'signed hello', headers: { 'x-k': 'v' } });
      const msg = await inbox.next();
      assert.equal(msg.body, 'signed hello');
      assert.equal(msg.headers['x-k'], 'v');
    } finally {
      await disconnectAll(sub.client, pub.client);
    }

    // Same claims, signed with another secret: ERROR before CONNECTED, then the socket closes.
    const forged = sign({ sub: 'mallory', exp: expIn(300) }, 'not-the-broker-secret');
    await assert.rejects(connect(broker, { connectHeaders: { passcode: forged } }),
      (err) => {
        assert.match(err.message, /^STOMP ERROR: token refused/, err.message);
        return true;
      });
    await assert.rejects(connect(broker, { connectHeaders: { token: forged } }),
      /STOMP ERROR: token refused/);
    // A tampered payload with the original signature is refused too.
    const good = sign({ sub: 'alice', exp: expIn(300), 'wsb.sub': [dest] }).split('.');
    const tampered = [good[0], b64url(JSON.stringify({ sub: 'alice', exp: expIn(300), 'wsb.sub': ['**'] })), good[2]].join('.');
    await assert.rejects(connect(broker, { connectHeaders: { token: tampered } }),
      /STOMP ERROR: token refused/);
  });

test('SUBSCRIBE outside wsb.sub gets an ERROR naming the destination and the session closes',
  { skip: WSBROKER_ONLY }, async () => {
    const allowed = uniqueDest('topic', 'jwt-allowed');
    const denied = uniqueDest('topic', 'jwt-denied');
    const c = await connect(broker, {
      connectHeaders: { token: sign({ sub: 'carol', exp: expIn(300), 'wsb.sub': [allowed], 'wsb.pub': [allowed] }) },
    });
    const s = watchSession(c);
    try {
      // The allowed destination works (SUBSCRIBE confirmed, own SEND delivered).
      const { inbox } = await subscribe(c.client, allowed);
      await publish(c.client, { destination: allowed, body: 'allowed' });
      assert.equal((await inbox.next()).body, 'allowed');

      c.client.subscribe(denied, () => assert.fail(`MESSAGE on denied ${denied}`));
      const frame = await withTimeout(s.errored, 5000, `ERROR for SUBSCRIBE ${denied}`);
      assert.equal(frame.headers.message, `permission denied: user carol may not subscribe to ${denied}`);
      const evt = await withTimeout(s.closed, 5000, 'WebSocket close after the permission ERROR');
      assert.equal(evt.code, 1008, `close code (reason ${evt.reason})`);
    } finally {
      await disconnectAll(c.client);
    }
  });

test('refresh on the live connection: RECEIPT, then the session outlives the first token',
  { skip: WSBROKER_ONLY }, async () => {
    const dest = uniqueDest('topic', 'jwt-refresh');
    const perms = { 'wsb.sub': [dest], 'wsb.pub': [dest] };
    const firstExp = expIn(3);
    const c = await connect(broker, { connectHeaders: { passcode: sign({ sub: 'dave', exp: firstExp, ...perms }) } });
    const s = watchSession(c);
    const pub = await connect(broker, { connectHeaders: { token: sign({ sub: 'erin', exp: expIn(300), ...perms }) } });
    try {
      const { inbox } = await subscribe(c.client, dest);
      assert.ok(Date.now() < firstExp * 1000 - 500, 'setup must leave time to refresh before exp');

      const receipt = nextReceiptId('refresh');
      const got = receiptPromise(c.client, receipt);
      c.client.publish({
        destination: '/wsb/refresh',
        headers: { token: sign({ sub: 'dave', exp: expIn(300), ...perms }), receipt },
      });
      await got;
      assert.ok(Date.now() < firstExp * 1000, 'RECEIPT of the refresh arrived before the first exp');
      assert.equal(s.error, null, 'no ERROR after the refresh');

      // Past the first token's exp (leeway 0) plus a margin: without the refresh the session
      // would have been closed by now (see the next test).
      const waitMs = firstExp * 1000 + 1500 - Date.now();
      await Promise.race([delay(waitMs), s.errored, s.closed]);
      assert.equal(s.error, null, `ERROR after the first exp: ${s.error && s.error.headers.message}`);
      assert.equal(s.closeEvt, null, 'session closed after the first exp');
      assert.ok(c.client.connected, 'refreshed session still connected');

      // Still receiving (message published after the first exp) and still allowed to SEND.
      await publish(pub.client, { destination: dest, body: 'after first exp' });
      assert.equal((await inbox.next(5000, 'message published after the first exp')).body, 'after first exp');
      await publish(c.client, { destination: dest, body: 'own send after first exp' });
      assert.equal((await inbox.next()).body, 'own send after first exp');
      assert.equal(s.error, null);
    } finally {
      await disconnectAll(c.client, pub.client);
    }
  });

test('without refresh, a ~2 s token gets ERROR "token expired" and the session is closed',
  { skip: WSBROKER_ONLY }, async () => {
    const dest = uniqueDest('topic', 'jwt-expire');
    const exp = expIn(2);
    const c = await connect(broker, { connectHeaders: { token: sign({ sub: 'frank', exp, 'wsb.sub': [dest] }) } });
    const s = watchSession(c);
    try {
      const { inbox } = await subscribe(c.client, dest);
      // The connection stays silent: the broker's own expiry timer must fire.
      const frame = await withTimeout(s.errored, exp * 1000 - Date.now() + 5000, 'ERROR "token expired"');
      const at = Date.now();
      assert.equal(frame.headers.message, 'token expired');
      assert.ok(at >= exp * 1000 - 250, `ERROR ${exp * 1000 - at} ms before exp`);
      const evt = await withTimeout(s.closed, 5000, 'WebSocket close after "token expired"');
      assert.equal(evt.code, 1008, `close code (reason ${evt.reason})`);
      assert.equal(c.client.connected, false);
      assert.equal(inbox.items.length, 0);
    } finally {
      await disconnectAll(c.client);
    }
  });

test('a private destination opens with a subscription token; its expiry ends only that subscription',
  { skip: WSBROKER_ONLY }, async () => {
    const room = `/topic/private/${uniqueDest('topic', 'jwt-private').split('/').pop()}`;
    const open = uniqueDest('topic', 'jwt-open');
    // grace's own token may not subscribe to anything: the subscription token is what counts.
    const c = await connect(broker, {
      connectHeaders: { token: sign({ sub: 'grace', exp: expIn(300), 'wsb.sub': [open], 'wsb.pub': [] }) },
    });
    const s = watchSession(c);
    const pub = await connect(broker, {
      connectHeaders: { token: sign({ sub: 'heidi', exp: expIn(300), 'wsb.pub': [room, open] }) },
    });
    try {
      const subExp = expIn(2);
      const { inbox } = await subscribe(c.client, room, {
        'x-sub-token': sign({ sub: 'grace', exp: subExp, wsb: { dest: room } }),
      });
      const { inbox: openInbox } = await subscribe(c.client, open);
      await publish(pub.client, { destination: room, body: 'for grace' });
      assert.equal((await inbox.next()).body, 'for grace');

      // At the subscription token's exp the broker ends that subscription with a last MESSAGE.
      const last = await inbox.next(subExp * 1000 - Date.now() + 5000, 'x-unsubscribed MESSAGE');
      assert.equal(last.headers['x-unsubscribed'], 'token expired');
      assert.equal(last.body, '');
      await publish(pub.client, { destination: room, body: 'after the sub token' });
      await publish(pub.client, { destination: open, body: 'still here' });
      assert.equal((await openInbox.next()).body, 'still here', 'the session and its other subscription go on');
      assert.equal(inbox.items.length, 2, 'nothing after the subscription ended');
      assert.equal(s.error, null);
      assert.ok(c.client.connected);

      // Without a subscription token a private destination is an ERROR naming it.
      const bare = await connect(broker, { connectHeaders: { token: sign({ sub: 'grace', exp: expIn(300) }) } });
      const bs = watchSession(bare);
      bare.client.subscribe(room, () => {});
      const error = await withTimeout(bs.errored, 5000, 'ERROR for a private SUBSCRIBE without a token');
      assert.match(error.headers.message, /private destination/);
      await disconnectAll(bare.client);
    } finally {
      await disconnectAll(c.client, pub.client);
    }
  });
