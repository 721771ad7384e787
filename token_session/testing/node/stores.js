'use strict';
// The Node session stores token_session.testing opens, by package and major version, over a
// backend URL and the store's own options. Each opener resolves to {store, close, raw}:
// raw(sid) is what the backend holds for the session, read beside the store (the Redis
// value, the Mongo document as extended JSON, the SQL row with every column as text).
const path = require('path');
const session = require('express-session');

const redisRaw = (read, store) => async (sid) => read(store.prefix + sid);

// The first connection fails at once (a clear error, not a wait); once connected, the
// client reconnects as node-redis does by default.
async function connected(createClient, options) {
  let ready = false;
  const reconnectStrategy = (retries, cause) => (ready ? Math.min(retries * 50, 500) : cause);
  const client = createClient({ ...options, socket: { reconnectStrategy } });
  client.on('error', () => {});
  await client.connect();
  ready = true;
  return client;
}

async function connectRedis(version, url, options) {
  if (version === '9') {
    const client = await connected(require('redis').createClient, { url });
    const { RedisStore } = require('connect-redis-9');
    const store = new RedisStore({ client, ...options });
    return { store, close: () => client.destroy(), raw: redisRaw((key) => client.get(key), store) };
  }
  const client = await connected(require('redis4').createClient, { url, legacyMode: version === '6' });
  const commands = version === '6' ? client.v4 : client;
  const RedisStore = version === '6'
    ? require('connect-redis-6')(session)
    : require('connect-redis-7').default;
  const store = new RedisStore({ client, ...options });
  return { store, close: () => client.disconnect(), raw: redisRaw((key) => commands.get(key), store) };
}

// connect-mongo 6's cryptoAdapter, which JSON cannot carry: {adapter: "webcrypto" |
// "kruptein", ...} is made by the package's own createWebCryptoAdapter /
// createKrupteinAdapter with the other keys as their options.
function cryptoAdapter({ adapter, ...options }) {
  const made = {
    webcrypto: 'createWebCryptoAdapter',
    kruptein: 'createKrupteinAdapter',
  }[adapter];
  if (!made) throw new Error('cryptoAdapter needs adapter: "webcrypto" or "kruptein"');
  return require('connect-mongo-6')[made](options);
}

// connect-mongo 4.6.0's kruptein ^3.0.0 resolves to 3.4.0 in this lock file, whose records
// 4.6.0 cannot read back (kruptein 3.4 parses the JSON it decrypts, connect-mongo parses it
// again); kruptein: "3.0.8" runs 4.6.0 over the 3.0.8 that connect-mongo 6.0.0 pins.
const KRUPTEIN_BESIDE = { '3.0.8': 'connect-mongo-6', '3.4.0': 'connect-mongo-4' };

async function connectMongo(version, url, { kruptein, ...options }) {
  if (kruptein !== undefined && (version !== '4' || !Object.hasOwn(KRUPTEIN_BESIDE, kruptein))) {
    throw new Error('kruptein: "3.0.8" or "3.4.0", with connect-mongo 4 (6.0.0 pins 3.0.8)');
  }
  let store;
  if (version === '6') {
    const { MongoStore } = require('connect-mongo-6');
    if (options.cryptoAdapter) options.cryptoAdapter = cryptoAdapter(options.cryptoAdapter);
    store = MongoStore.create({ mongoUrl: url, ...options });
  } else {
    const { MongoClient } = require('mongodb4');
    const MongoStore = require('connect-mongo-4');
    store = MongoStore.create({ clientPromise: MongoClient.connect(url), ...options });
    if (kruptein !== undefined && store.crypto) {
      const from = path.dirname(require.resolve(KRUPTEIN_BESIDE[kruptein] + '/package.json'));
      store.crypto = require(require.resolve('kruptein', { paths: [from] }))(store.options.crypto);
    }
  }
  const collection = await store.collectionP;
  const { EJSON } = require(version === '6' ? 'mongodb' : 'mongodb4').BSON;
  const raw = async (sid) => {
    const document = await collection.findOne({ _id: sid });
    return document == null ? null : EJSON.serialize(document, { relaxed: true });
  };
  return { store, close: () => store.close(), raw };
}

function mysqlOptions(url) {
  const parsed = new URL(url);
  const options = {
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username) || 'root',
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
  };
  if (!options.password) delete options.password;
  return options;
}

async function expressMysqlSession(version, url, options) {
  const MySQLStore = require('express-mysql-session-' + version)(session);
  const all = { ...mysqlOptions(url), ...options };
  const store = version === '3'
    ? new MySQLStore(all)
    : await new Promise((resolve, reject) => {
      const made = new MySQLStore(all, (err) => (err ? reject(err) : resolve(made)));
    });
  if (version === '3') await store.onReady();
  const query = (sql, params) => (version === '3'
    ? store.query(sql, params).then(([rows]) => rows)
    : new Promise((resolve, reject) => store.query(sql, params, (err, rows) => (err ? reject(err) : resolve(rows)))));
  const raw = async (sid) => {
    const { tableName, columnNames } = store.options.schema;
    const sql = 'SELECT * FROM ?? WHERE ?? = ?';
    const rows = await query(sql, [tableName, columnNames.session_id, sid]);
    return rows.length ? { ...rows[0] } : null;
  };
  const close = () => (version === '3' ? store.close() : new Promise((done) => store.close(() => done())));
  return { store, close, raw };
}

// A pg client whose every column comes back as the text PostgreSQL sends.
function pgRaw(url, table, sidColumn) {
  const pg = require('pg');
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => {}); // an idle connection the server ended: the next query reconnects
  const types = { getTypeParser: () => (text) => text };
  const raw = async (sid) => {
    const text = `SELECT * FROM ${table} WHERE ${sidColumn} = $1`;
    const { rows } = await pool.query({ text, values: [sid], types });
    return rows.length ? rows[0] : null;
  };
  return { raw, end: () => pool.end() };
}

async function connectPgSimple(version, url, options) {
  const PGStore = require('connect-pg-simple')(session);
  const store = new PGStore({ conString: url, pruneSessionInterval: false, ...options });
  const reader = pgRaw(url, store.quotedTable(), 'sid');
  return { store, raw: reader.raw, close: async () => { await reader.end(); await store.close(); } };
}

async function connectSessionKnex(version, url, options) {
  const knex = require('knex');
  const { ConnectSessionKnexStore } = require('connect-session-knex');
  const db = knex({ client: 'pg', connection: url });
  const store = new ConnectSessionKnexStore({ knex: db, cleanupInterval: 0, ...options });
  await store.ready;
  const { tableName, sidFieldName } = store.options;
  const reader = pgRaw(url, `"${tableName}"`, `"${sidFieldName}"`);
  return { store, raw: reader.raw, close: async () => { await reader.end(); await db.destroy(); } };
}

async function sessionMemoryStore(version, url, options) {
  const MemoryStore = require('session-memory-store')(session);
  const store = new MemoryStore(options);
  const raw = async (sid) => {
    const value = store.store.get(sid);
    return value === undefined ? null : value;
  };
  return { store, raw, close: () => store.store.close() };
}

module.exports = {
  'connect-redis': connectRedis,
  'connect-mongo': connectMongo,
  'express-mysql-session': expressMysqlSession,
  'connect-pg-simple': connectPgSimple,
  'connect-session-knex': connectSessionKnex,
  'session-memory-store': sessionMemoryStore,
};

// open({package, version, url, options}): the major version picks the pinned package
module.exports.open = function open(config) {
  const opener = module.exports[config.package];
  if (!opener) throw new Error('no Node store ' + config.package);
  return opener(String(config.version), config.url, config.options || {});
};
