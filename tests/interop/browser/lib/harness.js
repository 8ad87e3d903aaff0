// Spawns the wsbroker binary serving the chat demo, and launches Debian's Chromium through
// playwright-core, for the browser tests.
//
// Environment:
//   WSBROKER_BIN     broker binary (default: <repo>/target/release/wsbroker)
//   CHROMIUM_BIN     browser executable (default: /usr/bin/chromium)
//   WEB_CHAT_DIR     folder served with --static (default: <repo>/examples/web/chat/public)
//   SCREENSHOT_DIR   where screenshots go (default: $CARGO_TARGET_DIR or <repo>/target)
//   WSBROKER_DEBUG   if set, print broker stderr and the pages' console output

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../../../..');

export const BROKER_BIN = process.env.WSBROKER_BIN
  ? path.resolve(process.env.WSBROKER_BIN)
  : path.join(REPO_ROOT, 'target/release/wsbroker');
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const WEB_CHAT_DIR = process.env.WEB_CHAT_DIR
  ? path.resolve(process.env.WEB_CHAT_DIR)
  : path.join(REPO_ROOT, 'examples/web/chat/public');
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR
  ? path.resolve(process.env.SCREENSHOT_DIR)
  : path.resolve(process.env.CARGO_TARGET_DIR || path.join(REPO_ROOT, 'target'));

export const DEBUG = Boolean(process.env.WSBROKER_DEBUG);

const STARTUP_TIMEOUT_MS = 10_000;
const SHUTDOWN_TIMEOUT_MS = 5_000;
const BROWSER_LAUNCH_TIMEOUT_MS = 60_000;

/** Rejects after `ms` with a descriptive error unless `promise` settles first. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Throws a clear error when the demo's vendor bundles were not built. */
export function checkDemoBuilt(dir = WEB_CHAT_DIR) {
  for (const file of ['index.html', 'vendor/stomp.umd.min.js', 'vendor/sockjs.min.js', 'vendor/stomp-resume.js']) {
    if (!existsSync(path.join(dir, file))) {
      throw new Error(`${path.join(dir, file)} is missing: run \`npm ci && npm run build\` in examples/web/chat`);
    }
  }
}

/** The rooms keep a history, as the demo's README runs the broker. */
export const CHAT_HISTORY = '/topic/chat/**=200,1h';

/**
 * Spawns `wsbroker --listen LISTEN --static DIR --history CHAT_HISTORY [extra...]` (LISTEN
 * defaults to 127.0.0.1:0, a free port). Resolves to { wsUrl, httpOrigin, proc, exited,
 * stderr() } once it printed its listening line.
 */
export async function startBroker({ staticDir = WEB_CHAT_DIR, listen = '127.0.0.1:0', extra = [] } = {}) {
  const args = ['--listen', listen, '--static', staticDir, '--history', CHAT_HISTORY, ...extra];
  const proc = spawn(BROKER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let errBuf = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    if (DEBUG) process.stderr.write(d);
    errBuf = (errBuf + d).slice(-64 * 1024);
  });
  // Never leave a broker behind, even if the test process dies abruptly.
  const killOnExit = () => proc.kill('SIGKILL');
  process.on('exit', killOnExit);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      process.off('exit', killOnExit);
      resolve({ code, signal });
    });
  });
  const broker = { wsUrl: null, httpOrigin: null, proc, exited, stderr: () => errBuf };
  const ready = new Promise((resolve, reject) => {
    let outBuf = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      outBuf += d;
      let nl;
      while ((nl = outBuf.indexOf('\n')) >= 0) {
        const line = outBuf.slice(0, nl).trim();
        outBuf = outBuf.slice(nl + 1);
        const m = /^wsbroker listening websocket (ws:\/\/([^/\s]+)\/\S*)$/.exec(line);
        if (m) {
          broker.wsUrl = m[1];
          // --static serves the folder on the same port as the WebSocket endpoint.
          broker.httpOrigin = `http://${m[2]}`;
          resolve(broker);
        }
      }
    });
    proc.on('error', (err) => reject(new Error(`cannot spawn ${BROKER_BIN}: ${err.message}`)));
    exited.then(({ code, signal }) =>
      reject(new Error(`broker exited during startup (code ${code}, signal ${signal}); stderr:\n${errBuf}`)));
  });
  try {
    return await withTimeout(ready, STARTUP_TIMEOUT_MS, `"wsbroker listening websocket" from ${BROKER_BIN}`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** SIGTERM, then wait (bounded) for the exit; resolves to { code, signal }. SIGKILL if it hangs. */
export async function stopBroker(broker) {
  if (!broker) return null;
  const { proc } = broker;
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  try {
    return await withTimeout(broker.exited, SHUTDOWN_TIMEOUT_MS, 'broker exit after SIGTERM');
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** Launches headless Chromium (Debian's package, not a Playwright download). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM_BIN)) {
    throw new Error(`${CHROMIUM_BIN} not found: install Debian's chromium (scripts/browser-tests.sh does)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    // --headless is added by playwright-core for headless: true.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: BROWSER_LAUNCH_TIMEOUT_MS,
  });
}
