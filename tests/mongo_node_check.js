// The real Node MongoDB driver (and connect-mongo on top of it) against the test server.
//
//   node tests/mongo_node_check.js URL NODE_MODULES DBNAME
//
// NODE_MODULES is the folder holding the `mongodb` and `connect-mongo` to use
// (fixtures/node/node_modules: driver 7.9.0 + connect-mongo 6.0.0; fixtures/node/legacy/
// node_modules: 4.17.2 + 4.6.0). Prints one JSON object: the versions and, per check, its
// name and either ok or the error. tests/test_mongo_server.py runs it and asserts.
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");

const [url, modules, dbName] = process.argv.slice(2);
if (!url || !modules || !dbName) {
  process.stderr.write("usage: node mongo_node_check.js URL NODE_MODULES DBNAME\n");
  process.exit(2);
}
const mongodb = require(path.join(modules, "mongodb"));
const driverVersion = require(path.join(modules, "mongodb", "package.json")).version;
const connectMongoModule = require(path.join(modules, "connect-mongo"));
const MongoStore =
  connectMongoModule.MongoStore || connectMongoModule.default || connectMongoModule;
const connectMongoVersion = require(path.join(modules, "connect-mongo", "package.json")).version;
const { BSON, Double, Long, MongoClient } = mongodb;
const legacy = driverVersion.startsWith("4.");

const HOUR = 3600 * 1000;
const alive = () => ({
  $or: [{ expires: { $exists: false } }, { expires: { $gt: new Date() } }],
});
const ms = (date) => (date instanceof Date ? date.getTime() : `not a Date: ${date}`);

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
  } catch (error) {
    results.push({ name, ok: false, error: String((error && error.stack) || error) });
  }
}

// connect-mongo's callback API as promises.
const call = (store, method, ...args) =>
  new Promise((resolve, reject) =>
    store[method](...args, (error, value) => (error ? reject(error) : resolve(value))),
  );

async function driverChecks(client) {
  const db = client.db(dbName);

  await check("createIndex {expires: 1} with expireAfterSeconds 0, twice", async () => {
    const coll = db.collection("sessions");
    const options = { background: true, expireAfterSeconds: 0 };
    if (legacy) options.writeConcern = { w: 1 };
    await coll.createIndex({ expires: 1 }, options);
    await coll.createIndex({ expires: 1 }, options);
    const indexes = await coll.listIndexes().toArray();
    assert.ok(
      indexes.some((index) => index.expireAfterSeconds === 0),
      JSON.stringify(indexes),
    );
  });

  await check("set: updateOne upsert with $set, $setOnInsert, $currentDate", async () => {
    const coll = db.collection("sessions");
    const expires = new Date(Date.now() + HOUR);
    const created = new Date(Date.now() - 1000);
    const update = (session) => ({
      $set: { _id: "sid-1", session, expires, lastModified: created },
      $setOnInsert: { createdAt: created },
      $currentDate: { updatedAt: true },
    });
    const options = { upsert: true, writeConcern: { w: 1 } };
    const first = await coll.updateOne({ _id: "sid-1" }, update('{"n":1}'), options);
    assert.equal(first.upsertedCount, 1);
    assert.equal(first.matchedCount, 0);
    const second = await coll.updateOne({ _id: "sid-1" }, update('{"n":2}'), options);
    assert.equal(second.upsertedCount, 0);
    assert.equal(second.matchedCount, 1);
    const doc = await coll.findOne({ _id: "sid-1" });
    assert.deepEqual(Object.keys(doc), [
      "_id",
      "createdAt",
      "expires",
      "lastModified",
      "session",
      "updatedAt",
    ]);
    assert.equal(doc.session, '{"n":2}');
    assert.equal(ms(doc.expires), expires.getTime());
    assert.equal(ms(doc.createdAt), created.getTime());
    assert.ok(doc.updatedAt instanceof Date);
  });

  await check("get: findOne {_id, $or} returns that document only", async () => {
    const coll = db.collection("get_check");
    const future = new Date(Date.now() + HOUR);
    await coll.insertMany([
      { _id: "a", session: "A", expires: future },
      { _id: "b", session: "B", expires: future },
      { _id: "expired", session: "X", expires: new Date(Date.now() - 1000) },
      { _id: "no-expires", session: "N" },
    ]);
    assert.equal((await coll.findOne({ _id: "a", ...alive() })).session, "A");
    assert.equal(await coll.findOne({ _id: "missing", ...alive() }), null);
    assert.equal(await coll.findOne({ _id: "expired", ...alive() }), null);
    assert.equal((await coll.findOne({ _id: "no-expires", ...alive() })).session, "N");
    // Reads hide nothing themselves: the expired document is still there.
    assert.equal(await coll.countDocuments({}), 4);
  });

  await check("touch: $set {expires, lastModified} without _id keeps Dates", async () => {
    const coll = db.collection("sessions");
    const expires = new Date(Date.now() + 2 * HOUR);
    const now = new Date();
    const touched = await coll.updateOne(
      { _id: "sid-1" },
      { $set: { lastModified: now, expires }, $currentDate: { updatedAt: true } },
      { writeConcern: { w: 1 } },
    );
    assert.equal(touched.matchedCount, 1);
    const doc = await coll.findOne({ _id: "sid-1", ...alive() });
    assert.equal(ms(doc.expires), expires.getTime());
    assert.equal(ms(doc.lastModified), now.getTime());
    const missing = await coll.updateOne({ _id: "nope" }, { $set: { expires } });
    assert.equal(missing.matchedCount, 0);
  });

  await check("all: find {$or} across getMore batches; length: counts", async () => {
    const coll = db.collection("all_check");
    const future = new Date(Date.now() + HOUR);
    const docs = [];
    for (let i = 0; i < 150; i += 1) docs.push({ _id: `s${i}`, session: `${i}`, expires: future });
    docs.push({ _id: "old", session: "old", expires: new Date(Date.now() - HOUR) });
    await coll.insertMany(docs);
    const found = await coll.find(alive()).toArray();
    assert.equal(found.length, 150);
    assert.equal(await coll.countDocuments(), 151);
    assert.equal(await coll.estimatedDocumentCount(), 151);
  });

  await check("destroy: deleteOne; clear: deleteMany {} and drop", async () => {
    const coll = db.collection("all_check");
    assert.equal((await coll.deleteOne({ _id: "s0" }, { writeConcern: { w: 1 } })).deletedCount, 1);
    assert.equal((await coll.deleteOne({ _id: "s0" })).deletedCount, 0);
    assert.equal((await coll.deleteMany({})).deletedCount, 150);
    await db.collection("drop_check").insertOne({ _id: 1 });
    assert.equal(await db.collection("drop_check").drop(), true);
    const names = (await db.listCollections().toArray()).map((c) => c.name);
    assert.ok(!names.includes("drop_check"), JSON.stringify(names));
  });

  await check("interval removal: deleteMany {expires: {$lt: now}} with w:0", async () => {
    // One connection, so the acknowledged count below runs after the w:0 delete.
    const single = new MongoClient(url, { maxPoolSize: 1, serverSelectionTimeoutMS: 5000 });
    try {
      const coll = single.db(dbName).collection("w0_check");
      await coll.insertMany([
        { _id: "old", expires: new Date(Date.now() - HOUR) },
        { _id: "new", expires: new Date(Date.now() + HOUR) },
      ]);
      const writeConcern = legacy ? { w: 0, j: false } : { w: 0 };
      await coll.deleteMany({ expires: { $lt: new Date() } }, { writeConcern });
      await coll.insertOne({ _id: "w0" }, { writeConcern });
      const ids = (await coll.find({}).sort({ _id: 1 }).toArray()).map((d) => d._id);
      assert.deepEqual(ids, ["new", "w0"]);
    } finally {
      await single.close();
    }
  });

  await check("BSON types round-trip byte for byte", async () => {
    const coll = db.collection("types_check");
    const doc = {
      _id: "t",
      date: new Date(1700000000123),
      oldDate: new Date(-1000),
      int32: 7,
      double: new Double(7),
      bigNumber: 2 ** 40,
      fraction: 0.1,
      negZero: -0,
      nan: NaN,
      long: Long.fromNumber(7),
      bigLong: Long.fromString("9007199254740993"),
      string: "x ü 😀",
      isoLike: "2026-01-01T00:00:00.000Z",
      bool: true,
      nil: null,
      nested: { id: 0, list: [1, "a", { d: new Date(5) }], empty: {} },
      array: [],
    };
    await coll.insertOne(doc);
    const expected = BSON.serialize(doc);
    const raw = await coll.findOne({ _id: "t" }, { raw: true });
    assert.equal(Buffer.from(raw).toString("hex"), Buffer.from(expected).toString("hex"));
    const touchedDate = new Date(1800000000456);
    await coll.updateOne({ _id: "t" }, { $set: { date: touchedDate, long: Long.fromNumber(8) } });
    doc.date = touchedDate;
    doc.long = Long.fromNumber(8);
    const after = await coll.findOne({ _id: "t" }, { raw: true });
    assert.equal(
      Buffer.from(after).toString("hex"),
      Buffer.from(BSON.serialize(doc)).toString("hex"),
    );
  });

  await check("$type date", async () => {
    const coll = db.collection("type_check");
    await coll.insertMany([
      { _id: "date", v: new Date() },
      { _id: "string", v: new Date().toISOString() },
      { _id: "number", v: 1 },
    ]);
    const ids = (await coll.find({ v: { $type: "date" } }).toArray()).map((d) => d._id);
    assert.deepEqual(ids, ["date"]);
  });
}

async function connectMongoChecks(client) {
  for (const stringify of [true, false]) {
    await check(`connect-mongo ${connectMongoVersion} stringify=${stringify}`, async () => {
      const collectionName = `cm_${stringify ? "json" : "doc"}`;
      const store = MongoStore.create({ client, dbName, collectionName, stringify });
      const expires = new Date(Date.now() + HOUR);
      const session = (user) => ({
        cookie: { originalMaxAge: HOUR, expires, secure: false, httpOnly: true, path: "/" },
        user,
      });
      await call(store, "set", "sid-a", session("alice"));
      await call(store, "set", "sid-b", session("bob"));
      const got = await call(store, "get", "sid-a");
      assert.equal(got.user, "alice");
      assert.equal(await call(store, "get", "sid-missing"), null);

      const later = new Date(Date.now() + 2 * HOUR);
      await call(store, "touch", "sid-a", { ...session("alice"), cookie: { expires: later } });
      const raw = await client.db(dbName).collection(collectionName).findOne({ _id: "sid-a" });
      assert.equal(ms(raw.expires), later.getTime());
      if (stringify) assert.equal(typeof raw.session, "string");
      else assert.equal(raw.session.user, "alice");

      assert.equal((await call(store, "all")).length, 2);
      assert.equal(await call(store, "length"), 2);
      await call(store, "destroy", "sid-b");
      assert.equal(await call(store, "get", "sid-b"), null);
      await call(store, "clear");
      assert.equal(await call(store, "length"), 0);
    });
  }
}

async function main() {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    await client.db(dbName).dropDatabase();
    await driverChecks(client);
    await connectMongoChecks(client);
    await client.db(dbName).dropDatabase();
  } finally {
    await client.close();
  }
  process.stdout.write(
    `${JSON.stringify({ driver: driverVersion, connectMongo: connectMongoVersion, results })}\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${(error && error.stack) || error}\n`);
  process.exit(1);
});
