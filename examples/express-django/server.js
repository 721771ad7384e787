'use strict';
// The Express half: passport logs people in (passport.user = the username, which Django's
// settings name as the field to load). Sessions live in Redis under connect-redis's "sess:".
const express = require('express');
const session = require('express-session');
const passport = require('passport');
const { RedisStore } = require('connect-redis');
const { createClient } = require('redis');

// the users the Django database has too (see README.md)
const USERS = ['ada', 'grace'];

passport.serializeUser((user, done) => done(null, user.username));
passport.deserializeUser((username, done) =>
  done(null, USERS.includes(username) ? { username } : false),
);

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
app.use(passport.session());

const view = (req) => ({
  app: 'express',
  user: req.user ? req.user.username : null,
  cart: req.session.cart || [],
});

// a demo login: no password
app.post('/login', (req, res, next) => {
  const username = req.query.user || 'ada';
  if (!USERS.includes(username)) return res.status(403).json({ error: 'unknown user' });
  req.login({ username }, (err) => (err ? next(err) : res.json(view(req))));
});
app.get('/me', (req, res) => res.json(view(req)));
app.post('/cart', (req, res) => {
  req.session.cart = [...(req.session.cart || []), req.query.item];
  res.json(view(req));
});
app.post('/logout', (req, res, next) => {
  req.logout((err) => (err ? next(err) : res.json(view(req))));
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`Express on http://127.0.0.1:${port}`));
