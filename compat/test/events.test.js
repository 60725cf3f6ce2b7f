'use strict';
// particle-api-js 12 events against a real `wick serve` with simulated devices: publishEvent,
// getEventStream on every route it builds (mine, one device, /v1/events/:prefix, product,
// product device), and the EventStream's own reconnection after the server restarts (docs/particle-api.md#events).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { showErr, apiFailure } = require('../lib/assertions');
const { startSim, waitForDevices, restartWick, StreamRecorder } = require('../lib/sim');

const PASSWORD = 'correct horse battery staple';
const EMMA = 'emma@example.com';
const FRED = 'fred@example.com';
const SENSOR = 'sensorValueEvent';
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let server;
let particle;
let emma;
let fred;
let product;
let devA; // emma's publishing device
let devB; // emma's quiet device, stopped to see spark/status offline
let devP; // a product device, publishing
const sims = {};
const recorders = [];

/** Signs a user up and returns an access token. */
async function signupAndLogin(email) {
	const res = await rest.request(server.url, 'POST', '/v1/users', { json: { username: email, password: PASSWORD } });
	assert.equal(res.status, 200, `signup ${email}: ${rest.describe(res)}`);
	return (await rest.passwordToken(server.url, email, PASSWORD)).access_token;
}

/** A fresh access token for email (each publishing test uses its own). */
async function freshToken(email) {
	return (await rest.passwordToken(server.url, email, PASSWORD)).access_token;
}

/** Opens getEventStream(opts) and records it (closed in after()). */
async function open(opts) {
	const stream = await particle.getEventStream(opts);
	const rec = new StreamRecorder(stream);
	recorders.push(rec);
	return rec;
}

/** Awaits a getEventStream that must fail and returns the client's rejection. */
async function streamFailure(opts, what) {
	try {
		const stream = await particle.getEventStream(opts);
		stream.abort();
	} catch (err) {
		return err;
	}
	assert.fail(`${what}: the stream opened`);
}

/** Asserts the common shape of an event from a device or the API. */
function assertEvent(e, { name, coreid }) {
	assert.equal(e.name, name, JSON.stringify(e));
	assert.equal(e.coreid, coreid, JSON.stringify(e));
	assert.equal(e.ttl, 60, JSON.stringify(e));
	assert.match(e.published_at, ISO_RE, JSON.stringify(e));
}

before(async () => {
	server = await startWick({ signup: true });
	particle = new Particle({ baseUrl: server.url });
	emma = await signupAndLogin(EMMA);
	fred = await signupAndLogin(FRED);
	product = await rest.createProduct(server.url, emma, 'Compat Events');
	const code = (await particle.getClaimCode({ product: product.id, auth: emma })).body.claim_code;
	sims.a = startSim(server, { token: emma, count: 1, idPrefix: 'e1', publish: SENSOR, every: '300ms' });
	sims.b = startSim(server, { token: emma, count: 1, idPrefix: 'e2' });
	sims.p = startSim(server, { token: emma, count: 1, idPrefix: 'e3', claimCode: code, publish: SENSOR, every: '300ms' });
	await waitForDevices(server, emma, sims.a.ids, { owner: EMMA, sim: sims.a });
	await waitForDevices(server, emma, sims.b.ids, { owner: EMMA, sim: sims.b });
	await waitForDevices(server, emma, sims.p.ids, { product: product.id, sim: sims.p });
	[devA, devB, devP] = [sims.a.ids[0], sims.b.ids[0], sims.p.ids[0]];
});

after(async () => {
	for (const rec of recorders) {
		rec.close();
	}
	await Promise.all(Object.values(sims).map((s) => s.stop()));
	if (server) {
		await server.stop();
	}
});

describe('getEventStream: device events', () => {
	it('deviceId "mine" delivers the simulated devices\' published events', async () => {
		const rec = await open({ deviceId: 'mine', auth: emma });
		const e = await rec.waitEvent((ev) => ev.name === SENSOR && ev.coreid === devA, `${SENSOR} from ${devA}`);
		assertEvent(e, { name: SENSOR, coreid: devA });
		assert.match(e.data, /^\d{1,4}$/, JSON.stringify(e));
		assert.equal(e.public, undefined, 'user streams carry no product fields');
		rec.close();
	});

	it('one device with a name prefix delivers only that device\'s matching events', async () => {
		const rec = await open({ deviceId: devA, name: 'sensor', auth: emma });
		await rec.waitEvent((ev) => ev.coreid === devA, `event from ${devA}`);
		await rec.waitEvent(() => true, 'a second event', { from: 1 });
		for (const ev of rec.events) {
			assertEvent(ev, { name: SENSOR, coreid: devA });
		}
		rec.close();
	});

	it('name only opens /v1/events/:prefix and delivers the caller\'s events', async () => {
		const rec = await open({ name: 'sensorValue', auth: emma });
		const e = await rec.waitEvent((ev) => ev.coreid === devA, `${SENSOR} on /v1/events/sensorValue`);
		assertEvent(e, { name: SENSOR, coreid: devA });
		rec.close();
	});

	it('spark/status reports a device going offline', async () => {
		const rec = await open({ deviceId: 'mine', name: 'spark/status', auth: emma });
		await sims.b.stop();
		const e = await rec.waitEvent((ev) => ev.coreid === devB && ev.data === 'offline', `spark/status offline from ${devB}`);
		assertEvent(e, { name: 'spark/status', coreid: devB });
		assert.ok(rec.events.every((ev) => ev.name === 'spark/status'), JSON.stringify(rec.events));
		rec.close();
	});

	it('another user\'s stream sees none of these events', async () => {
		const rec = await open({ deviceId: 'mine', auth: fred });
		const mineRec = await open({ deviceId: 'mine', name: SENSOR, auth: emma });
		await mineRec.waitEvent((ev) => ev.coreid === devA, 'a control event on emma\'s stream');
		await mineRec.waitEvent((ev) => ev.coreid === devA, 'a second control event', { from: mineRec.events.length });
		assert.deepEqual(rec.events, []);
		rec.close();
		mineRec.close();
	});
});

describe('getEventStream: refusals', () => {
	it('no device and no name is GET /v1/events: 400 "event prefix filter is required"', async () => {
		const err = await streamFailure({ auth: emma }, 'bare /v1/events');
		assert.equal(err.statusCode, 400, JSON.stringify(err));
		assert.equal(err.body.error, 'event prefix filter is required', JSON.stringify(err));
	});

	it('an unknown token is 401 invalid_token, with the description in the client\'s message', async () => {
		const err = await streamFailure({ deviceId: 'mine', auth: '0123456789abcdef0123456789abcdef01234567' }, 'bad token');
		assert.equal(err.statusCode, 401, JSON.stringify(err));
		assert.equal(err.body.error, 'invalid_token', JSON.stringify(err));
		assert.match(err.errorDescription, /HTTP error 401 .* - The access token provided is invalid\./, JSON.stringify(err));
	});

	it('another user\'s device is 403', async () => {
		const err = await streamFailure({ deviceId: devA, auth: fred }, 'foreign device stream');
		assert.equal(err.statusCode, 403, JSON.stringify(err));
		assert.equal(err.body.error, 'Permission Denied', JSON.stringify(err));
	});
});

describe('publishEvent', () => {
	it('publishEvent answers ok and reaches the publisher\'s stream with coreid "api"', async () => {
		const pub = await freshToken(EMMA);
		const rec = await open({ deviceId: 'mine', name: 'compat/', auth: emma });
		const res = await particle.publishEvent({ name: 'compat/hello', data: 'world', isPrivate: true, auth: pub });
		assert.equal(res.statusCode, 200);
		assert.deepEqual(res.body, { ok: true });
		const e = await rec.waitEvent((ev) => ev.name === 'compat/hello', 'compat/hello');
		assertEvent(e, { name: 'compat/hello', coreid: 'api' });
		assert.equal(e.data, 'world');
		rec.close();
	});

	it('publishEvent without data or private flag delivers data null', async () => {
		const pub = await freshToken(EMMA);
		const rec = await open({ deviceId: 'mine', name: 'compat/nodata', auth: emma });
		await particle.publishEvent({ name: 'compat/nodata', auth: pub });
		const e = await rec.waitEvent((ev) => ev.name === 'compat/nodata', 'compat/nodata');
		assert.equal(e.data, null, JSON.stringify(e));
		rec.close();
	});

	it('a public event (isPrivate false) reaches other users on /v1/events/:prefix; a private one does not', async () => {
		const pub = await freshToken(EMMA);
		const rec = await open({ name: 'compat/public', auth: fred });
		await particle.publishEvent({ name: 'compat/public', data: 'secret', isPrivate: true, auth: pub });
		await particle.publishEvent({ name: 'compat/public', data: 'for all', isPrivate: false, auth: pub });
		const e = await rec.waitEvent((ev) => ev.name === 'compat/public', 'public compat/public on fred\'s stream');
		assert.equal(e.data, 'for all', `events of one publisher arrive in order, so the private one would come first: ${JSON.stringify(rec.events)}`);
		assert.equal(e.coreid, 'api');
		rec.close();
	});

	it('publishEvent has no per-token limit by default (a back end may publish for its users)', async () => {
		const pub = await freshToken(EMMA);
		for (let i = 0; i < 12; i++) {
			const res = await particle.publishEvent({ name: 'compat/burst', data: String(i), auth: pub });
			assert.equal(res.statusCode, 200, `publish ${i}`);
		}
	});

	it('with --publish-burst 4 the fifth publishEvent of a token is 429 rate_limited', async () => {
		const limited = await startWick({ signup: true, extraArgs: ['--publish-burst', '4'] });
		try {
			const res = await rest.request(limited.url, 'POST', '/v1/users', { json: { username: EMMA, password: PASSWORD } });
			assert.equal(res.status, 200, rest.describe(res));
			const pub = (await rest.passwordToken(limited.url, EMMA, PASSWORD)).access_token;
			const client = new Particle({ baseUrl: limited.url });
			for (let i = 0; i < 4; i++) {
				const ok = await client.publishEvent({ name: 'compat/burst', data: String(i), auth: pub });
				assert.equal(ok.statusCode, 200);
			}
			const err = await apiFailure(client.publishEvent({ name: 'compat/burst', data: '4', auth: pub }), 'fifth publish');
			assert.equal(err.statusCode, 429, showErr(err));
			assert.equal(err.body.error, 'rate_limited', showErr(err));
		} finally {
			await limited.stop();
		}
	});

	it('publishEvent refuses a reserved or missing name with a JSON error', async () => {
		const pub = await freshToken(EMMA);
		const reserved = await apiFailure(particle.publishEvent({ name: 'spark/fake', data: 'x', auth: pub }), 'reserved name');
		assert.equal(reserved.statusCode, 400, showErr(reserved));
		assert.equal(reserved.body.ok, false, showErr(reserved));
		const missing = await apiFailure(particle.publishEvent({ data: 'x', auth: pub }), 'missing name');
		assert.equal(missing.statusCode, 400, showErr(missing));
	});
});

describe('product streams', () => {
	it('getEventStream with product delivers product device events with product fields', async () => {
		const rec = await open({ product: product.id, auth: emma });
		const e = await rec.waitEvent((ev) => ev.coreid === devP && ev.name === SENSOR, `${SENSOR} from ${devP}`);
		assertEvent(e, { name: SENSOR, coreid: devP });
		assert.equal(e.productID, product.id, JSON.stringify(e));
		assert.equal(typeof e.public, 'boolean', JSON.stringify(e));
		assert.ok(!rec.events.some((ev) => ev.coreid === devA), 'a non-product device leaked into the product stream');
		rec.close();
	});

	it('getEventStream with product and deviceId delivers that device', async () => {
		const rec = await open({ product: product.slug, deviceId: devP, name: SENSOR, auth: emma });
		const e = await rec.waitEvent((ev) => ev.coreid === devP, `${SENSOR} from product device ${devP}`);
		assert.equal(e.productID, product.id, JSON.stringify(e));
		rec.close();
	});

	it('publishEvent with product reaches the product stream', async () => {
		const pub = await freshToken(EMMA);
		const rec = await open({ product: product.id, name: 'compat/', auth: emma });
		const res = await particle.publishEvent({ name: 'compat/product', data: 'to the fleet', product: product.id, auth: pub });
		assert.deepEqual(res.body, { ok: true });
		const e = await rec.waitEvent((ev) => ev.name === 'compat/product', 'compat/product on the product stream');
		assert.equal(e.data, 'to the fleet');
		assert.equal(e.coreid, 'api');
		assert.equal(e.productID, product.id, JSON.stringify(e));
		rec.close();
	});

	it('a user outside the team cannot open the product stream', async () => {
		const err = await streamFailure({ product: product.id, auth: fred }, 'foreign product stream');
		assert.equal(err.statusCode, 403, JSON.stringify(err));
	});
});

describe('EventStream reconnection', () => {
	it('after the server restarts, the stream reconnects by itself and delivers later events', async () => {
		const pub = await freshToken(EMMA);
		const rec = await open({ deviceId: 'mine', auth: emma });
		await rec.waitEvent((ev) => ev.coreid === devA, 'an event before the restart');

		server = await restartWick(server); // SIGTERM ends every stream; same data, same ports
		const restartedAt = Date.now();
		await rec.waitNotice('disconnect');
		await rec.waitNotice('reconnect-success', { timeoutMs: 20000 });
		const from = rec.events.length;

		// An API publish after the reconnection...
		await particle.publishEvent({ name: 'compat/after-restart', data: 'still here', auth: pub });
		const api = await rec.waitEvent((ev) => ev.name === 'compat/after-restart', 'compat/after-restart', { from });
		assert.equal(api.data, 'still here');
		// ...and the simulated device, which reconnected to the new server, publishing again.
		const dev = await rec.waitEvent((ev) => ev.coreid === devA && ev.name === SENSOR && Date.parse(ev.published_at) >= restartedAt - 1000,
			`${SENSOR} from ${devA} after the restart`, { from, timeoutMs: 20000 });
		assertEvent(dev, { name: SENSOR, coreid: devA });
		rec.close();
	});
});
