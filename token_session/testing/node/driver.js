'use strict';
// token_session.testing's store driver: one JSON request per stdin line, one JSON answer per
// stdout line ({"ok": true, "out": ...} or {"ok": false, "error": "..."}), in order.
//
// A session arrives as JSON text. One with a `cookie` object reaches the store as
// express-session hands it over (a Session whose cookie is a Cookie, so JSON.stringify goes
// through Cookie#toJSON); one without, as the parsed object (what token-session hands over).
const readline = require('readline');
const util = require('util');

// stdout carries the answers only: whatever a store logs goes to stderr
const answer = process.stdout.write.bind(process.stdout);
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => process.stderr.write(util.format(...args) + '\n');
}
const session = require('express-session');
const stores = require('./stores.js');

const opened = new Map();
let nextHandle = 1;

function asSession(json, sid) {
  const data = JSON.parse(json);
  if (data === null || typeof data !== 'object' || typeof data.cookie !== 'object' || data.cookie === null) {
    return data;
  }
  return session.Store.prototype.createSession.call({}, { sessionID: sid }, data);
}

function call(target, method, ...args) {
  return new Promise((resolve, reject) => {
    const maybe = target[method](...args, (err, data) => (err ? reject(err) : resolve(data)));
    if (maybe && typeof maybe.then === 'function') maybe.catch(reject);
  });
}

function handle(req) {
  const found = opened.get(req.handle);
  if (!found) throw new Error('no open store ' + req.handle);
  return found;
}

const text = (value) => (value == null ? null : JSON.stringify(value));

const ops = {
  async open(req) {
    const store = await stores.open(req);
    const id = nextHandle++;
    opened.set(id, store);
    return id;
  },
  async close(req) {
    const found = handle(req);
    opened.delete(req.handle);
    await found.close();
    return null;
  },
  get: async (req) => text(await call(handle(req).store, 'get', req.sid)),
  set: (req) => call(handle(req).store, 'set', req.sid, asSession(req.session, req.sid)),
  touch: (req) => call(handle(req).store, 'touch', req.sid, asSession(req.session, req.sid)),
  destroy: (req) => call(handle(req).store, 'destroy', req.sid),
  all: async (req) => text(await call(handle(req).store, 'all')),
  length: (req) => call(handle(req).store, 'length'),
  clear: (req) => call(handle(req).store, 'clear'),
  raw: async (req) => text(await handle(req).raw(req.sid)),
};

let queue = Promise.resolve();
const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  queue = queue.then(async () => {
    let reply;
    try {
      const req = JSON.parse(line);
      if (!Object.hasOwn(ops, req.op)) throw new Error('unknown op ' + req.op);
      const out = await ops[req.op](req);
      reply = { ok: true, out: out === undefined ? null : out };
    } catch (err) {
      reply = { ok: false, error: String((err && err.message) || err) };
    }
    answer(JSON.stringify(reply) + '\n');
  });
});
input.on('close', async () => {
  await queue;
  for (const found of opened.values()) await Promise.resolve().then(found.close).catch(() => {});
  process.exit(0);
});
