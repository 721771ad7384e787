'use strict';
// token_session.testing's Express app: express 4 or 5 with express-session 1.19.0 over one of
// stores.js's stores. argv[2] is JSON: {express: 4 | 5, store: {package, version, url,
// options}, session: express-session's options}. It listens on a free loopback port, prints
// {"port": N} on stdout and exits when stdin closes.
//
//   GET    /session          {"id": ..., "session": ...} (session: null when there is none)
//   POST   /session          a JSON object body: its keys set on the session; answers as GET
//   DELETE /session/:key     that key removed; answers as GET
//   POST   /session/regenerate   a new id, the data kept; answers as GET
//   DELETE /session          the session destroyed; {"id": null, "session": null}
const util = require('util');
const session = require('express-session');
const stores = require('./stores.js');

const config = JSON.parse(process.argv[2]);
// stdout carries the port line only: whatever the store or the app logs goes to stderr
const say = process.stdout.write.bind(process.stdout);
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => process.stderr.write(util.format(...args) + '\n');
}
const express = require('express' + config.express);

async function main() {
  const opened = await stores.open(config.store);
  const app = express();
  app.use(express.json());
  app.use(session({ ...config.session, store: opened.store }));

  const view = (req) => {
    const data = req.session ? JSON.parse(JSON.stringify(req.session)) : null;
    return { id: req.sessionID || null, session: data };
  };
  app.get('/session', (req, res) => res.json(view(req)));
  app.post('/session', (req, res) => {
    Object.assign(req.session, req.body || {});
    res.json(view(req));
  });
  app.delete('/session/:key', (req, res) => {
    delete req.session[req.params.key];
    res.json(view(req));
  });
  app.post('/session/regenerate', (req, res, next) => {
    const { cookie, ...data } = JSON.parse(JSON.stringify(req.session));
    req.session.regenerate((err) => {
      if (err) return next(err);
      Object.assign(req.session, data);
      res.json(view(req));
    });
  });
  app.delete('/session', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ id: null, session: null })));
  });

  const server = app.listen(0, '127.0.0.1', () => {
    say(JSON.stringify({ port: server.address().port }) + '\n');
  });
  process.stdin.resume();
  process.stdin.on('end', async () => {
    server.close();
    server.closeAllConnections();
    await Promise.resolve().then(opened.close).catch(() => {});
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(1);
});
