// The chat demo (examples/web/chat) in headless Chromium, served by `wsbroker --static`: two
// pages join room 5, one sends, the other shows the message. Once over a plain WebSocket and
// once over SockJS restricted to the xhr-streaming transport. Screenshots of the receiving page
// go to $SCREENSHOT_DIR/browser-*.png for inspection. A third run leaves SockJS its default
// transports, which must pick its WebSocket transport under /sockjs; a fourth kills (SIGKILL) and restarts a broker
// with a data dir under a connected page, which must reconnect, rejoin its room and lose nothing. A fifth checks the room's
// history and presence: a reloaded page gets the backlog, and the members list and the
// join/leave lines follow the other page.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DEBUG, SCREENSHOT_DIR, checkDemoBuilt, launchBrowser, startBroker, stopBroker,
} from '../lib/harness.js';

// Every wait is bounded; generous because the browser shares two cores with the build.
const STEP_TIMEOUT_MS = 15_000;
const ROOM = 5;
// Upper bound of one test (two pages, a few steps each) and of the setup (Chromium's start).
const TEST_TIMEOUT_MS = 120_000;
const SETUP_TIMEOUT_MS = 90_000;

let broker;
let browser;

/** One chat page in its own browser context (own storage), with its errors and traffic recorded. */
async function openChat(url, nick) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const chat = { nick, context, page, errors: [], webSockets: [], requests: [] };
  page.on('pageerror', (err) => chat.errors.push(`${nick}: ${err.message}`));
  page.on('console', (msg) => {
    if (DEBUG) console.error(`[${nick} console.${msg.type()}] ${msg.text()}`);
    if (msg.type() === 'error') chat.errors.push(`${nick} console: ${msg.text()}`);
  });
  page.on('websocket', (ws) => chat.webSockets.push(ws.url()));
  page.on('request', (req) => chat.requests.push(req.url()));

  await page.goto(url);
  await page.getByTestId('nickname').fill(nick);
  await page.getByTestId('connect').click();
  await page.locator('[data-testid="status"][data-state="connected"]').waitFor();
  return chat;
}

/** Clicks a room and waits until the broker confirmed the subscription (the page's receipt). */
async function joinRoom(chat, room) {
  await chat.page.getByTestId(`room-${room}`).click();
  await chat.page.locator(`[data-testid="room-title"][data-room="${room}"][data-joined="true"]`).waitFor();
}

async function closeAll(...chats) {
  await Promise.all(chats.filter(Boolean).map((c) => c.context.close().catch(() => {})));
}

/**
 * alice and bob open the page with `query`, join room 5; alice sends a message containing
 * markup; bob must show it as text. Returns both pages for transport-specific checks.
 */
async function chatInRoom5(query, screenshotName) {
  const url = `${broker.httpOrigin}/${query}`;
  let alice;
  let bob;
  try {
    alice = await openChat(url, 'alice');
    bob = await openChat(url, 'bob');
    await joinRoom(alice, ROOM);
    await joinRoom(bob, ROOM);
    // alice was subscribed before bob announced himself, so the announcement reaches her.
    await alice.page.getByTestId('system-message').filter({ hasText: 'bob joined the room' }).waitFor();

    const tag = randomBytes(4).toString('hex');
    const text = `hello room ${ROOM} <b id="injected-${tag}">not bold</b> & bye`;
    await alice.page.getByTestId('message-input').fill(text);
    await alice.page.getByTestId('send').click();

    const received = bob.page.getByTestId('chat-message').filter({ hasText: text });
    await received.waitFor();
    assert.equal(await received.getAttribute('data-nick'), 'alice');
    assert.equal(await received.locator('.text').textContent(), text);
    // User text is rendered as text: the markup did not become an element.
    assert.equal(await bob.page.locator(`#injected-${tag}`).count(), 0);
    // The sender sees its own message too (it is subscribed to the room it sends to).
    await alice.page.getByTestId('chat-message').filter({ hasText: text }).waitFor();

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await bob.page.screenshot({ path: path.join(SCREENSHOT_DIR, screenshotName) });

    assert.deepEqual([...alice.errors, ...bob.errors], [], 'no page errors');
    return { alice, bob };
  } catch (err) {
    await closeAll(alice, bob);
    throw err;
  }
}

describe('chat demo in headless Chromium', () => {
  before(async () => {
    checkDemoBuilt();
    broker = await startBroker();
    browser = await launchBrowser();
  }, { timeout: SETUP_TIMEOUT_MS });

  after(async () => {
    // Both always run; the broker's exit status is checked after the browser is gone.
    await browser?.close().catch(() => {});
    const exit = await stopBroker(broker);
    if (exit) {
      assert.deepEqual(exit, { code: 0, signal: null },
        `broker must exit 0 on SIGTERM; stderr tail:\n${broker.stderr().slice(-4000)}`);
    }
  }, { timeout: SETUP_TIMEOUT_MS });

  test('WebSocket: a message sent in room 5 reaches the other page', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { alice, bob } = await chatInRoom5('?via=websocket', 'browser-websocket.png');
    try {
      for (const chat of [alice, bob]) {
        const status = chat.page.getByTestId('status');
        assert.equal(await status.getAttribute('data-transport'), 'websocket');
        // The page derived the endpoint from its own origin and negotiated a STOMP subprotocol.
        assert.deepEqual(chat.webSockets, [broker.wsUrl]);
        assert.match(await status.textContent(), /WebSocket \(v1[012]\.stomp\)/);
      }
    } finally {
      await closeAll(alice, bob);
    }
  });

  test('SockJS forced to xhr-streaming: a message sent in room 5 reaches the other page', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { alice, bob } = await chatInRoom5('?via=sockjs&transports=xhr-streaming',
      'browser-sockjs-xhr-streaming.png');
    try {
      for (const chat of [alice, bob]) {
        assert.equal(await chat.page.getByTestId('status').getAttribute('data-transport'), 'xhr-streaming');
        assert.deepEqual(chat.webSockets, [], 'no WebSocket is opened when SockJS is limited to xhr-streaming');
        const sockjsBase = `${broker.httpOrigin}/sockjs/`;
        assert.ok(chat.requests.includes(`${sockjsBase}info`) || chat.requests.some((u) => u.startsWith(`${sockjsBase}info?`)),
          `SockJS info request missing; requests: ${chat.requests.join(' ')}`);
        assert.ok(chat.requests.some((u) => u.startsWith(sockjsBase) && /\/[^/]+\/[^/]+\/xhr_streaming(\?|$)/.test(u)),
          `no xhr_streaming request; requests: ${chat.requests.join(' ')}`);
      }
    } finally {
      await closeAll(alice, bob);
    }
  });

  test('after kill -9 and a restart the page rejoins its room and no message is lost', { timeout: TEST_TIMEOUT_MS }, async () => {
    // A broker of its own with a data dir, killed and restarted on the same port; the shared
    // one keeps serving the others.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'wsb-chat-store-'));
    const extra = ['--data-dir', dataDir];
    let own = await startBroker({ extra });
    const listen = own.httpOrigin.replace(/^http:\/\//, '');
    let carol;
    let dave;
    try {
      carol = await openChat(`${own.httpOrigin}/?via=websocket&room=${ROOM}`, 'carol');
      const joined = carol.page.locator(`[data-testid="room-title"][data-room="${ROOM}"][data-joined="true"]`);
      await joined.waitFor();
      // A message the broker delivered (so committed) just before it dies.
      const lastWords = `before the crash ${randomBytes(4).toString('hex')}`;
      await carol.page.getByTestId('message-input').fill(lastWords);
      await carol.page.getByTestId('send').click();
      await carol.page.getByTestId('chat-message').filter({ hasText: lastWords }).waitFor();

      own.proc.kill('SIGKILL');
      assert.deepEqual(await own.exited, { code: null, signal: 'SIGKILL' });
      await carol.page.locator('[data-testid="status"][data-state="reconnecting"]').waitFor();
      assert.equal(await joined.count(), 0, 'the room is not shown as joined while disconnected');

      own = await startBroker({ listen, extra });
      await carol.page.locator('[data-testid="status"][data-state="connected"]').waitFor();
      await joined.waitFor();
      await carol.page.getByTestId('system-message').filter({ hasText: `Rejoined room ${ROOM}` }).waitFor();

      // The new subscription works: a message sent now comes back to the page.
      const text = `still here ${randomBytes(4).toString('hex')}`;
      await carol.page.getByTestId('message-input').fill(text);
      await carol.page.getByTestId('send').click();
      await carol.page.getByTestId('chat-message').filter({ hasText: text }).waitFor();
      // The resume after the restart (same epoch: recovered) repeated nothing...
      assert.equal(await carol.page.getByTestId('chat-message').filter({ hasText: lastWords }).count(), 1);
      // ...and a page that joins now gets both messages from the restarted broker's history.
      dave = await openChat(`${own.httpOrigin}/?via=websocket&room=${ROOM}`, 'dave');
      for (const line of [lastWords, text]) {
        await dave.page.getByTestId('chat-message').filter({ hasText: line }).waitFor();
      }
      // Chromium logs each refused reconnect attempt (if one came before the restart); any
      // other error counts.
      const errors = carol.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
      assert.deepEqual(errors, []);
      await closeAll(carol, dave);
      assert.deepEqual(await stopBroker(own), { code: 0, signal: null });
      own = null;
    } finally {
      await closeAll(carol, dave);
      if (own) await stopBroker(own).catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('history and presence: a reloaded page gets the backlog, members follow joins and leaves', { timeout: TEST_TIMEOUT_MS }, async () => {
    const room = 7;
    const url = `${broker.httpOrigin}/?via=websocket`;
    let alice;
    let bob;
    try {
      alice = await openChat(url, 'alice');
      await joinRoom(alice, room);
      bob = await openChat(url, 'bob');
      await joinRoom(bob, room);
      const members = (chat) => chat.page.getByTestId('member');
      await alice.page.locator('[data-testid="member-count"]', { hasText: /^2$/ }).waitFor();
      assert.deepEqual(await members(alice).allTextContents(), ['alice', 'bob']);
      assert.deepEqual(await members(bob).allTextContents(), ['alice', 'bob'], 'the snapshot bob got');
      await alice.page.getByTestId('system-message').filter({ hasText: 'bob joined the room' }).waitFor();

      const text = `before the reload ${randomBytes(4).toString('hex')}`;
      await alice.page.getByTestId('message-input').fill(text);
      await alice.page.getByTestId('send').click();
      await bob.page.getByTestId('chat-message').filter({ hasText: text }).waitFor();

      // bob reloads: his tab leaves (presence), and once back in the room shows the backlog.
      await bob.page.reload();
      await alice.page.getByTestId('system-message').filter({ hasText: 'bob left the room' }).waitFor();
      await alice.page.locator('[data-testid="member-count"]', { hasText: /^1$/ }).waitFor();
      await bob.page.getByTestId('connect').click();
      await bob.page.locator('[data-testid="status"][data-state="connected"]').waitFor();
      await joinRoom(bob, room);
      const backlog = bob.page.getByTestId('chat-message').filter({ hasText: text });
      await backlog.waitFor();
      assert.equal(await backlog.count(), 1, 'the backlog shows the message once');
      assert.equal(await backlog.getAttribute('data-nick'), 'alice');
      await alice.page.locator('[data-testid="member-count"]', { hasText: /^2$/ }).waitFor();

      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      await alice.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'browser-presence.png') });
      await bob.page.screenshot({ path: path.join(SCREENSHOT_DIR, 'browser-backlog.png') });
      assert.deepEqual([...alice.errors, ...bob.errors], [], 'no page errors');
    } finally {
      await closeAll(alice, bob);
    }
  });

  test('SockJS with its default transports: WebSocket under /sockjs carries the chat', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { alice, bob } = await chatInRoom5('?via=sockjs', 'browser-sockjs-default.png');
    try {
      const wsOrigin = broker.wsUrl.replace(/\/ws$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const sockjsWs = new RegExp(`^${wsOrigin}/sockjs/[^/]+/[^/]+/websocket$`);
      for (const chat of [alice, bob]) {
        assert.equal(await chat.page.getByTestId('status').getAttribute('data-transport'), 'websocket');
        assert.equal(chat.webSockets.length, 1, `one WebSocket expected: ${chat.webSockets.join(' ')}`);
        assert.match(chat.webSockets[0], sockjsWs);
      }
    } finally {
      await closeAll(alice, bob);
    }
  });
});
