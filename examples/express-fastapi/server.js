'use strict';
// The Express half: logs people in. Sessions live in Redis under connect-redis's "sess:" keys.
const express = require('express');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');

const client = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379/0' });
client.connect().catch((err) => {
  console.error(err);
  process.exit(1);
});

const app = express();
app.use(
  session({
    store: new RedisStore({ client }),
    secret: process.env.SESSION_SECRET || 'change me',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 24 * 3600 * 1000, sameSite: 'lax' },
  }),
);

const view = (req) => ({ app: 'express', user: req.session.user || null, cart: req.session.cart || [] });

app.post('/login', (req, res, next) => {
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = req.query.user || 'ada';
    res.json(view(req));
  });
});
app.get('/me', (req, res) => res.json(view(req)));
app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => (err ? next(err) : res.json({ app: 'express', user: null })));
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`Express on http://127.0.0.1:${port}`));
