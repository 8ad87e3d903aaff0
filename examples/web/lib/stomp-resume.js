// Gap-free resume for @stomp/stompjs subscriptions on a wsbroker destination with a history.
//
// wsbroker stamps every MESSAGE of such a destination with `x-offset` (1, 2, 3 ... per
// destination) and `x-epoch`. A client that remembers the last pair it processed and
// resubscribes with `x-since` / `x-epoch` gets every message it missed, then live ones, and
// `x-recovered` (on the RECEIPT and on the first MESSAGE) tells whether that was all of them.
// This helper does the bookkeeping:
//
//   const resume = new WsbrokerResume({ storage: sessionStorage });   // storage optional
//   client.onConnect = () => {
//     resume.subscribe(client, '/topic/chat/room/5', onMessage, {
//       firstTime: { 'x-last': '50' },            // no position yet: ask for a backlog
//       headers: { receipt: 'join-1' },           // sent on every (re)subscribe
//       onReceipt: (receipt) => { ... },          // that RECEIPT (stompjs keeps one watcher
//                                                 // per receipt id: give yours here)
//       onResume: (recovered) => { ... },         // after a resume: true = nothing missed
//     });
//   };
//
// `onMessage(frame)` sees every MESSAGE once (replayed ones first, in order). A message at or
// below the remembered offset of the same epoch is dropped, so an overlap can never show a
// message twice. With `storage` (sessionStorage, localStorage or anything with getItem /
// setItem) positions survive a page reload. Works in a page (window.WsbrokerResume) and in
// Node (module.exports).
(function (root, factory) {
  const api = factory();
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.WsbrokerResume = api;
})(typeof self !== 'undefined' ? self : this, () => {
  'use strict';

  const STORAGE_PREFIX = 'wsbroker-resume:';

  class WsbrokerResume {
    constructor({ storage = null } = {}) {
      this.storage = storage;
      this.positions = new Map(); // destination -> { offset, epoch }
    }

    /** The remembered position of `destination`, or null. */
    position(destination) {
      if (!this.positions.has(destination) && this.storage) {
        try {
          const saved = JSON.parse(this.storage.getItem(STORAGE_PREFIX + destination) || 'null');
          if (saved && Number.isSafeInteger(saved.offset) && typeof saved.epoch === 'string') {
            this.positions.set(destination, saved);
          }
        } catch {
          // unreadable storage: start without a position
        }
      }
      return this.positions.get(destination) || null;
    }

    /** Forgets `destination`'s position (the next subscribe is a fresh one). */
    forget(destination) {
      this.positions.delete(destination);
      if (this.storage) {
        try {
          this.storage.removeItem(STORAGE_PREFIX + destination);
        } catch {
          // nothing stored
        }
      }
    }

    /** SUBSCRIBE headers: `x-since`/`x-epoch` when a position is known, else `firstTime`. */
    headers(destination, { headers = {}, firstTime = {} } = {}) {
      const at = this.position(destination);
      if (!at) return { ...firstTime, ...headers };
      return { ...headers, 'x-since': String(at.offset), 'x-epoch': at.epoch };
    }

    /**
     * Records a MESSAGE's position; returns false for a message already processed (same epoch,
     * offset not above the remembered one), which the caller should skip.
     */
    track(destination, frame) {
      const offset = Number(frame.headers['x-offset']);
      const epoch = frame.headers['x-epoch'];
      if (!Number.isSafeInteger(offset) || typeof epoch !== 'string') return true; // no history
      const at = this.position(destination);
      if (at && at.epoch === epoch && offset <= at.offset) return false;
      const next = { offset, epoch };
      this.positions.set(destination, next);
      if (this.storage) {
        try {
          this.storage.setItem(STORAGE_PREFIX + destination, JSON.stringify(next));
        } catch {
          // storage full or disabled: the position lives in memory only
        }
      }
      return true;
    }

    /**
     * Subscribes through `client` (a connected StompJs.Client) with the resume headers, and
     * delivers each new MESSAGE to `onMessage`. Returns the stompjs subscription.
     */
    subscribe(client, destination, onMessage, { headers = {}, firstTime = {}, onResume = null, onReceipt = null } = {}) {
      const resuming = this.position(destination) !== null;
      const subscribeHeaders = this.headers(destination, { headers, firstTime });
      let reported = false;
      const report = (value) => {
        if (reported || !onResume || value === undefined) return;
        reported = true;
        onResume(value === 'true');
      };
      // One watcher for both: stompjs replaces a receipt's watcher with the next one set.
      if (subscribeHeaders.receipt && (resuming || onReceipt)) {
        client.watchForReceipt(subscribeHeaders.receipt, (receipt) => {
          if (resuming) report(receipt.headers['x-recovered']);
          if (onReceipt) onReceipt(receipt);
        });
      }
      return client.subscribe(destination, (frame) => {
        if (resuming) report(frame.headers['x-recovered']);
        if (this.track(destination, frame)) onMessage(frame);
      }, subscribeHeaders);
    }
  }

  return WsbrokerResume;
});
