// Shared helpers for the wsbroker Node interop suite.
//
// Environment:
//   WSBROKER_BIN    path of the broker binary to spawn
//                   (default: ../../../../target/release/wsbroker relative to this file)
//   WSBROKER_URL    e.g. ws://127.0.0.1:15674/ws : do not spawn, target this broker instead
//   WSBROKER_TCP    host:port of the plain-TCP STOMP listener of that external broker (optional)
//   WSBROKER_LOGIN / WSBROKER_PASSCODE  credentials (default guest/guest)
//   WSBROKER_DEBUG  if set, print stompjs debug output and broker stderr

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));

export const DEFAULT_BIN = path.resolve(here, '../../../../target/release/wsbroker');
export const STARTUP_TIMEOUT_MS = 10_000;
export const SHUTDOWN_TIMEOUT_MS = 5_000;
export const DEFAULT_TIMEOUT_MS = 5_000;

/** True when the suite targets an external broker (e.g. RabbitMQ) instead of wsbroker. */
export const EXTERNAL = Boolean(process.env.WSBROKER_URL);

/** Tests relying on wsbroker-only features pass this as the `skip` option. */
export const WSBROKER_ONLY = EXTERNAL ? 'wsbroker-only feature (WSBROKER_URL targets another broker)' : false;

export const LOGIN = process.env.WSBROKER_LOGIN || 'guest';
export const PASSCODE = process.env.WSBROKER_PASSCODE || 'guest';

const DEBUG = Boolean(process.env.WSBROKER_DEBUG);

/** A destination name unique to this run, so tests never see each other's messages. */
export function uniqueDest(kind, name) {
  return `/${kind}/interop-${name}-${randomBytes(5).toString('hex')}`;
}

/** Rejects after `ms` with a descriptive error unless `promise` settles first. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Spawns the broker (or describes the external one).
 * Resolves to { wsUrl, tcp: {host, port} | null, external, proc, stderr() }.
 */
export async function startBroker(extraArgs = []) {
  if (EXTERNAL) {
    let tcp = null;
    if (process.env.WSBROKER_TCP) {
      const [host, port] = process.env.WSBROKER_TCP.split(':');
      tcp = { host, port: Number(port) };
    }
    return { wsUrl: process.env.WSBROKER_URL, tcp, external: true, proc: null, stderr: () => '' };
  }
  const bin = process.env.WSBROKER_BIN ? path.resolve(process.env.WSBROKER_BIN) : DEFAULT_BIN;
  const args = ['--listen', '127.0.0.1:0', '--tcp-listen', '127.0.0.1:0', ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let errBuf = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    if (DEBUG) process.stderr.write(d);
    errBuf = (errBuf + d).slice(-64 * 1024);
  });
  // Never leave a broker behind, even if this test process dies abruptly.
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      process.off('exit', killOnExit);
      resolve({ code, signal });
    });
  });
  const broker = { wsUrl: null, sockjsUrl: null, tcp: null, external: false, proc, exited, stderr: () => errBuf };
  const ready = new Promise((resolve, reject) => {
    let outBuf = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      outBuf += d;
      let nl;
      while ((nl = outBuf.indexOf('\n')) >= 0) {
        const line = outBuf.slice(0, nl).trim();
        outBuf = outBuf.slice(nl + 1);
        let m;
        if ((m = /^wsbroker listening websocket (ws:\/\/\S+)$/.exec(line))) broker.wsUrl = m[1];
        else if ((m = /^wsbroker listening sockjs (https?:\/\/\S+)$/.exec(line))) broker.sockjsUrl = m[1];
        else if ((m = /^wsbroker listening tcp (\S+):(\d+)$/.exec(line))) broker.tcp = { host: m[1], port: Number(m[2]) };
        if (broker.wsUrl && broker.tcp) resolve(broker);
      }
    });
    proc.on('error', (err) => reject(new Error(`cannot spawn ${bin}: ${err.message}`)));
    exited.then(({ code, signal }) =>
      reject(new Error(`broker exited during startup (code ${code}, signal ${signal}); stderr:\n${errBuf}`)));
  });
  try {
    return await withTimeout(ready, STARTUP_TIMEOUT_MS, `"wsbroker listening" lines from ${bin}`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** SIGTERM, then assert a graceful exit (code 0) within 5 s. No-op for an external broker. */
export async function stopBroker(broker) {
  if (!broker || broker.external || !broker.proc) return;
  const { proc } = broker;
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  let result;
  try {
    result = await withTimeout(broker.exited, SHUTDOWN_TIMEOUT_MS, 'broker exit after SIGTERM');
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  assert.deepEqual(result, { code: 0, signal: null },
    `broker must exit 0 on SIGTERM; stderr tail:\n${broker.stderr().slice(-4000)}`);
}

/**
 * Creates and activates a stompjs client; resolves to { client, connected, closed, errors }
 * once CONNECTED arrives. `connected` is the CONNECTED frame.
 */
export async function connect(broker, opts = {}) {
  const { connectHeaders = {}, timeoutMs = DEFAULT_TIMEOUT_MS, ...config } = opts;
  const errors = [];
  let closedResolve;
  const closed = new Promise((resolve) => { closedResolve = resolve; });
  let client;
  const connected = new Promise((resolve, reject) => {
    client = new Client({
      webSocketFactory: () =>
        new WebSocket(broker.wsUrl, (config.stompVersions || Versions.default).protocolVersions()),
      connectHeaders: { login: LOGIN, passcode: PASSCODE, ...connectHeaders },
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      connectionTimeout: timeoutMs,
      debug: DEBUG ? (s) => console.error(`[stomp] ${s}`) : () => {},
      onConnect: (frame) => resolve(frame),
      onStompError: (frame) => {
        errors.push(frame);
        reject(new Error(`STOMP ERROR: ${frame.headers.message} ${frame.body}`));
      },
      onWebSocketClose: (evt) => {
        closedResolve(evt);
        reject(new Error(`WebSocket closed before CONNECTED (code ${evt.code})`));
      },
      ...config,
    });
    client.activate();
  });
  try {
    const frame = await withTimeout(connected, timeoutMs, 'CONNECTED');
    return { client, connected: frame, closed, errors };
  } catch (err) {
    await client.deactivate({ force: true }).catch(() => {});
    throw err;
  }
}

/** Deactivates all given stompjs clients (bounded). */
export async function disconnectAll(...clients) {
  await Promise.all(clients.filter(Boolean).map((c) =>
    withTimeout(c.deactivate(), DEFAULT_TIMEOUT_MS, 'client deactivate').catch(() => c.deactivate({ force: true }))));
}

let receiptCounter = 0;
export function nextReceiptId(prefix = 'r') {
  receiptCounter += 1;
  return `${prefix}-${process.pid}-${receiptCounter}`;
}

/** Returns a promise resolved when the RECEIPT for `receiptId` arrives. Register before sending. */
export function receiptPromise(client, receiptId, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const p = new Promise((resolve) => client.watchForReceipt(receiptId, resolve));
  return withTimeout(p, timeoutMs, `RECEIPT ${receiptId}`);
}

/**
 * A FIFO of received messages with bounded waiting. `next()` and `waitCount()` share one read
 * cursor: `next()` returns the first message not yet returned by either of them.
 */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.cursor = 0;
  }

  push = (msg) => {
    this.items.push(msg);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  };

  /** Waits until at least `n` messages were received in total; resolves to the first `n`. */
  async waitCount(n, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'messages') {
    const p = (async () => {
      while (this.items.length < n) {
        await new Promise((resolve) => this.waiters.push(resolve));
      }
      this.cursor = Math.max(this.cursor, n);
      return this.items.slice(0, n);
    })();
    return withTimeout(p, timeoutMs, `${n} ${what} (got ${this.items.length})`);
  }

  /** Resolves to the next unread message. */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a message') {
    const items = await this.waitCount(this.cursor + 1, timeoutMs, what);
    return items[items.length - 1];
  }
}

/** SUBSCRIBE with a receipt; resolves to { sub, inbox } once the broker confirmed the subscription. */
export async function subscribe(client, destination, headers = {}, inbox = new Inbox()) {
  const receipt = nextReceiptId('sub');
  const got = receiptPromise(client, receipt);
  const sub = client.subscribe(destination, inbox.push, { ...headers, receipt });
  await got;
  return { sub, inbox };
}

/** SEND with a receipt; resolves once the broker confirmed it. */
export async function publish(client, params) {
  const receipt = nextReceiptId('send');
  const got = receiptPromise(client, receipt);
  client.publish({ ...params, headers: { ...(params.headers || {}), receipt } });
  await got;
}

export { Client, Versions, WebSocket };
