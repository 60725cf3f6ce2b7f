'use strict';
// particle-api-js 12 device methods against a real `wick serve` with simulated devices
// (`wick sim`): listing, claiming, renaming, signalling, functions, variables, claim codes,
// removal, and the product variants (docs/particle-api.md#claiming, #devices).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { apiFailure, showErr } = require('../lib/assertions');
const { startSim, waitForDevices, waitOffline, simDeviceId, tempKeysDir, makeDeviceKey } = require('../lib/sim');

const PASSWORD = 'correct horse battery staple';
const ADA = 'ada@example.com';
const BOB = 'bob@example.com';
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let server;
let particle;
let ada; // access tokens
let bob;
let product;
const sims = [];
let mine; // ada's two devices, claimed by the simulator
let claimedBySim = false;

/** Signs a user up and returns an access token. */
async function signupAndLogin(email) {
	const res = await rest.request(server.url, 'POST', '/v1/users', { json: { username: email, password: PASSWORD } });
	assert.equal(res.status, 200, `signup ${email}: ${rest.describe(res)}`);
	return (await rest.passwordToken(server.url, email, PASSWORD)).access_token;
}

/** Asserts the 403 "Permission Denied" answer for a device the caller cannot see (docs/particle-api.md#device-id-or-name). */
function assertUnknownDevice(err, what) {
	assert.equal(err.statusCode, 403, `${what}: ${showErr(err)}`);
	assert.equal(err.body.error, 'Permission Denied', `${what}: ${showErr(err)}`);
	assert.match(String(err.body.info), /I didn't recognize that device name or ID/, `${what}: ${showErr(err)}`);
}

/** Starts a sim (remembered for clean-up) and waits until its devices are online for token. */
async function simOnline(opts, waitToken, waitOpts = {}) {
	const sim = startSim(server, opts);
	sims.push(sim);
	const devices = await waitForDevices(server, waitToken, sim.ids, { ...waitOpts, sim });
	return { sim, devices };
}

before(async () => {
	server = await startWick({ signup: true });
	particle = new Particle({ baseUrl: server.url });
	ada = await signupAndLogin(ADA);
	bob = await signupAndLogin(BOB);
	product = await rest.createProduct(server.url, ada, 'Compat Devices');
	const { devices } = await simOnline({ token: ada, count: 2, idPrefix: 'a1' }, ada, { owner: ADA });
	mine = devices.map((d) => d.id);
	claimedBySim = true;
});

after(async () => {
	await Promise.all(sims.map((s) => s.stop()));
	if (server) {
		await server.stop();
	}
});

describe('listDevices / getDevice', () => {
	it('listDevices lists the simulated devices with their functions and variables', async () => {
		assert.ok(claimedBySim);
		const res = await particle.listDevices({ auth: ada });
		assert.equal(res.statusCode, 200);
		assert.ok(Array.isArray(res.body), JSON.stringify(res.body));
		const ids = res.body.map((d) => d.id).sort();
		assert.deepEqual(ids, [...mine].sort());
		for (const d of res.body) {
			assert.equal(d.online, true, JSON.stringify(d));
			assert.equal(d.connected, true, JSON.stringify(d));
			assert.equal(d.platform_id, 6, JSON.stringify(d));
			assert.equal(d.product_id, 6, 'product_id equals platform_id outside a product');
			// Claiming named it: two words, as Particle does (docs/api.md#device-names).
			assert.match(String(d.name), /^[a-z]+_[a-z]+(_[0-9]{4})?$/, JSON.stringify(d));
			assert.equal(d.last_app, null, JSON.stringify(d));
			assert.deepEqual(d.functions, ['led']);
			assert.deepEqual(d.variables, { temp: 'double', count: 'int32', label: 'string', on: 'bool' });
			assert.match(d.last_heard, ISO_RE);
			assert.match(d.last_handshake_at, ISO_RE);
			assert.equal(d.last_ip_address, '127.0.0.1');
		}
	});

	it('listDevices of another user does not show them', async () => {
		const res = await particle.listDevices({ auth: bob });
		assert.equal(res.statusCode, 200);
		assert.deepEqual(res.body, []);
	});

	it('getDevice returns the device object with its owner', async () => {
		const res = await particle.getDevice({ deviceId: mine[0], auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.id, mine[0]);
		assert.equal(res.body.owner, ADA);
		assert.equal(res.body.online, true);
		assert.equal(res.body.status, 'normal');
		assert.deepEqual(res.body.functions, ['led']);
		assert.equal(res.body.variables.temp, 'double');
	});

	it('getDevice of another user\'s device or an unknown ID is 403 Permission Denied', async () => {
		assertUnknownDevice(await apiFailure(particle.getDevice({ deviceId: mine[0], auth: bob }), 'foreign getDevice'), 'foreign getDevice');
		assertUnknownDevice(await apiFailure(particle.getDevice({ deviceId: 'ffffffffffffffffffffffff', auth: ada }), 'unknown getDevice'), 'unknown getDevice');
	});
});

describe('renameDevice / signalDevice', () => {
	it('renameDevice names the device; the name then works as its ID', async () => {
		const res = await particle.renameDevice({ deviceId: mine[0], name: 'compat_lamp', auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.id, mine[0]);
		assert.equal(res.body.name, 'compat_lamp');
		assert.match(res.body.updated_at, ISO_RE);
		const byName = await particle.getDevice({ deviceId: 'compat_lamp', auth: ada });
		assert.equal(byName.body.id, mine[0]);
		const list = await particle.listDevices({ auth: ada });
		assert.equal(list.body.find((d) => d.id === mine[0]).name, 'compat_lamp');
	});

	it('renameDevice refuses a name another device of the owner has', async () => {
		const err = await apiFailure(particle.renameDevice({ deviceId: mine[1], name: 'compat_lamp', auth: ada }), 'duplicate name');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.ok, false, showErr(err));
		assert.match(err.body.error, /already named compat_lamp/, showErr(err));
	});

	it('signalDevice turns the rainbow on and off on an online device', async () => {
		const on = await particle.signalDevice({ deviceId: mine[0], signal: true, auth: ada });
		assert.equal(on.statusCode, 200);
		assert.deepEqual(on.body, { id: mine[0], connected: true, signaling: true });
		const off = await particle.signalDevice({ deviceId: 'compat_lamp', signal: false, auth: ada });
		assert.deepEqual(off.body, { id: mine[0], connected: true, signaling: false });
	});
});

describe('callFunction / getVariable', () => {
	it('callFunction runs the device function and returns its value', async () => {
		const on = await particle.callFunction({ deviceId: mine[1], name: 'led', argument: 'on', auth: ada });
		assert.equal(on.statusCode, 200);
		assert.equal(on.body.id, mine[1]);
		assert.equal(on.body.connected, true);
		assert.equal(on.body.return_value, 1);
		const bad = await particle.callFunction({ deviceId: mine[1], name: 'led', argument: 'purple', auth: ada });
		assert.equal(bad.body.return_value, -1);
		// No argument: JS sends {} and the device gets "".
		const none = await particle.callFunction({ deviceId: mine[1], name: 'led', auth: ada });
		assert.equal(none.body.return_value, -1);
	});

	it('getVariable reads typed values the function changed', async () => {
		const on = await particle.getVariable({ deviceId: mine[1], name: 'on', auth: ada });
		assert.equal(on.statusCode, 200);
		assert.equal(on.body.name, 'on');
		assert.equal(on.body.result, true);
		assert.equal(on.body.coreInfo.deviceID, mine[1]);
		assert.equal(on.body.coreInfo.connected, true);
		const count = await particle.getVariable({ deviceId: mine[1], name: 'count', auth: ada });
		assert.equal(count.body.result, 3);
		const label = await particle.getVariable({ deviceId: mine[1], name: 'label', auth: ada });
		assert.equal(label.body.result, 'sim-2');
		const temp = await particle.getVariable({ deviceId: mine[1], name: 'temp', auth: ada });
		assert.equal(typeof temp.body.result, 'number', JSON.stringify(temp.body));
		assert.ok(temp.body.result > 10 && temp.body.result < 30, JSON.stringify(temp.body));
	});

	it('callFunction and getVariable take the device name', async () => {
		const off = await particle.callFunction({ deviceId: 'compat_lamp', name: 'led', argument: 'off', auth: ada });
		assert.equal(off.body.return_value, 0);
		assert.equal(off.body.id, mine[0]);
		assert.equal(off.body.name, 'compat_lamp');
		const v = await particle.getVariable({ deviceId: 'compat_lamp', name: 'count', auth: ada });
		assert.equal(v.body.result, 1);
		assert.equal(v.body.coreInfo.name, 'compat_lamp');
	});

	it('unknown function → 404 "Function x not found"; unknown variable → 404 "Unknown Variable: x"', async () => {
		const fn = await apiFailure(particle.callFunction({ deviceId: mine[0], name: 'nope', argument: '', auth: ada }), 'unknown function');
		assert.equal(fn.statusCode, 404, showErr(fn));
		assert.equal(fn.body.error, 'Function nope not found', showErr(fn));
		const v = await apiFailure(particle.getVariable({ deviceId: mine[0], name: 'nope', auth: ada }), 'unknown variable');
		assert.equal(v.statusCode, 404, showErr(v));
		assert.equal(v.body.error, 'Unknown Variable: nope', showErr(v));
	});

	it('another user can neither call nor read the device', async () => {
		assertUnknownDevice(await apiFailure(particle.callFunction({ deviceId: mine[0], name: 'led', argument: 'on', auth: bob }), 'foreign call'), 'foreign call');
		assertUnknownDevice(await apiFailure(particle.getVariable({ deviceId: mine[0], name: 'on', auth: bob }), 'foreign variable'), 'foreign variable');
	});
});

describe('claimDevice / removeDevice', () => {
	it('claimDevice of a device that is already yours answers 200', async () => {
		const res = await particle.claimDevice({ deviceId: mine[0], auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true);
		assert.equal(res.body.id, mine[0]);
	});

	it('claimDevice of someone else\'s device is 403 with the sentence particle-cli looks for', async () => {
		const err = await apiFailure(particle.claimDevice({ deviceId: mine[0], auth: bob }), 'foreign claim');
		assert.equal(err.statusCode, 403, showErr(err));
		assert.equal(err.body.ok, false, showErr(err));
		assert.ok(Array.isArray(err.body.errors), showErr(err));
		assert.ok(err.body.errors[0].includes('That belongs to someone else.'), showErr(err));
	});

	it('claimDevice with requestTransfer answers a transfer_id and keeps the owner', async () => {
		const res = await particle.claimDevice({ deviceId: mine[0], requestTransfer: true, auth: bob });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true);
		assert.match(String(res.body.transfer_id), /^\S+$/);
		const d = await particle.getDevice({ deviceId: mine[0], auth: ada });
		assert.equal(d.body.owner, ADA);
	});

	it('claimDevice of an unknown device is 404 "device not found"', async () => {
		const err = await apiFailure(particle.claimDevice({ deviceId: 'ffffffffffffffffffffffff', auth: bob }), 'unknown claim');
		assert.equal(err.statusCode, 404, showErr(err));
		assert.equal(err.body.error, 'device not found', showErr(err));
	});

	it('removeDevice releases it; another user claims it and controls it at once', async () => {
		const rm = await particle.removeDevice({ deviceId: mine[1], auth: ada });
		assert.equal(rm.statusCode, 200);
		assert.equal(rm.body.ok, true);
		const list = await particle.listDevices({ auth: ada });
		assert.deepEqual(list.body.map((d) => d.id), [mine[0]]);
		assertUnknownDevice(await apiFailure(particle.getDevice({ deviceId: mine[1], auth: ada }), 'released device'), 'released device');

		const claim = await particle.claimDevice({ deviceId: mine[1], auth: bob });
		assert.equal(claim.statusCode, 200);
		assert.equal(claim.body.id, mine[1]);
		assert.equal(claim.body.connected, true);
		const d = await particle.getDevice({ deviceId: mine[1], auth: bob });
		assert.equal(d.body.owner, BOB);
		const call = await particle.callFunction({ deviceId: mine[1], name: 'led', argument: 'on', auth: bob });
		assert.equal(call.body.return_value, 1);
	});

	it('removeDevice of another user\'s device is refused', async () => {
		assertUnknownDevice(await apiFailure(particle.removeDevice({ deviceId: mine[0], auth: bob }), 'foreign remove'), 'foreign remove');
	});
});

describe('getClaimCode', () => {
	it('getClaimCode returns a 63-character code and the caller\'s device IDs', async () => {
		const res = await particle.getClaimCode({ auth: ada });
		assert.equal(res.statusCode, 200);
		assert.match(res.body.claim_code, /^[A-Za-z0-9+/]{63}$/);
		assert.deepEqual(res.body.device_ids, [mine[0]]);
	});

	it('getClaimCode with an ICCID returns the ICCID as the code', async () => {
		const iccid = '89014103211118510720';
		const res = await particle.getClaimCode({ iccid, auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.claim_code, iccid);
	});

	it('a device reporting the code is claimed to the code\'s creator; offline afterwards', async () => {
		// A factory-keyed device: its key is registered (which gives it to the keying user,
		// who releases it), then it connects with bob's claim code.
		const id = simDeviceId('b2', 1);
		const keysDir = tempKeysDir();
		const { publicKeyPem } = makeDeviceKey(keysDir, id);
		const prov = await rest.request(server.url, 'POST', `/v1/provisioning/${id}`, { token: ada, json: { publicKey: publicKeyPem, algorithm: 'rsa' } });
		assert.equal(prov.status, 200, rest.describe(prov));
		const rel = await particle.removeDevice({ deviceId: id, auth: ada });
		assert.equal(rel.body.ok, true);
		const code = (await particle.getClaimCode({ auth: bob })).body.claim_code;
		const { sim } = await simOnline({ count: 1, idPrefix: 'b2', claimCode: code, keysDir }, bob, { owner: BOB });
		assert.deepEqual(sim.ids, [id]);
		const bobs = await particle.listDevices({ auth: bob });
		assert.ok(bobs.body.some((d) => d.id === id), JSON.stringify(bobs.body));
		const adas = await particle.listDevices({ auth: ada });
		assert.ok(!adas.body.some((d) => d.id === id), JSON.stringify(adas.body));
		const call = await particle.callFunction({ deviceId: id, name: 'led', argument: 'on', auth: bob });
		assert.equal(call.body.return_value, 1);

		await sim.stop();
		const gone = await waitOffline(server, bob, id);
		assert.equal(gone.connected, false);
		const err = await apiFailure(particle.callFunction({ deviceId: id, name: 'led', argument: 'on', auth: bob }), 'offline call');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'Device is offline', showErr(err));
		const verr = await apiFailure(particle.getVariable({ deviceId: id, name: 'on', auth: bob }), 'offline variable');
		assert.equal(verr.statusCode, 400, showErr(verr));
	});
});

describe('product variants', () => {
	let pid; // the product device
	let simP;

	before(async () => {
		const code = await particle.getClaimCode({ product: product.id, auth: ada });
		assert.equal(code.statusCode, 200);
		assert.match(code.body.claim_code, /^[A-Za-z0-9+/]{63}$/);
		const started = await simOnline({ token: ada, count: 1, idPrefix: 'c3', claimCode: code.body.claim_code }, ada,
			{ product: product.slug });
		simP = started.sim;
		pid = simP.ids[0];
		assert.equal(pid, simDeviceId('c3', 1));
	});

	it('getClaimCode with product puts the device in the product, owned by the code\'s creator', async () => {
		const d = await particle.getDevice({ deviceId: pid, auth: ada });
		assert.equal(d.body.owner, ADA);
		assert.equal(d.body.product_id, product.id);
		assert.equal(d.body.platform_id, 6);
	});

	it('listDevices with product lists it with the product envelope', async () => {
		const res = await particle.listDevices({ product: product.slug, auth: ada });
		assert.equal(res.statusCode, 200);
		assert.deepEqual(res.body.devices.map((d) => d.id), [pid]);
		assert.equal(res.body.devices[0].product_id, product.id);
		assert.equal(res.body.devices[0].online, true);
		assert.deepEqual(res.body.customers, []);
		assert.equal(res.body.meta.total_pages, 1);
		const byId = await particle.listDevices({ product: product.id, deviceId: pid.slice(0, 6), perPage: 5, auth: ada });
		assert.deepEqual(byId.body.devices.map((d) => d.id), [pid]);
		const none = await particle.listDevices({ product: product.id, deviceName: 'no-such-name', auth: ada });
		assert.deepEqual(none.body.devices, []);
	});

	it('getDevice with product returns the product device object', async () => {
		const res = await particle.getDevice({ deviceId: pid, product: product.slug, auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.id, pid);
		assert.equal(res.body.product_id, product.id);
		assert.equal(res.body.development, false);
		assert.equal(res.body.quarantined, false);
		assert.deepEqual(res.body.functions, ['led']);
	});

	it('callFunction and getVariable with product reach the device', async () => {
		const call = await particle.callFunction({ deviceId: pid, name: 'led', argument: 'on', product: product.id, auth: ada });
		assert.equal(call.statusCode, 200);
		assert.equal(call.body.return_value, 1);
		const v = await particle.getVariable({ deviceId: pid, name: 'on', product: product.id, auth: ada });
		assert.equal(v.body.result, true);
		assert.equal(v.body.coreInfo.deviceID, pid);
		assert.equal(v.body.coreInfo.product_id, product.id);
		const err = await apiFailure(particle.callFunction({ deviceId: pid, name: 'nope', product: product.id, auth: ada }), 'product unknown fn');
		assert.equal(err.statusCode, 404, showErr(err));
	});

	it('renameDevice and signalDevice with product', async () => {
		const ren = await particle.renameDevice({ deviceId: pid, name: 'compat_product_dev', product: product.id, auth: ada });
		assert.equal(ren.statusCode, 200);
		assert.equal(ren.body.name, 'compat_product_dev');
		const sig = await particle.signalDevice({ deviceId: pid, signal: true, product: product.id, auth: ada });
		assert.equal(sig.body.signaling, true);
		const d = await particle.getDevice({ deviceId: pid, product: product.id, auth: ada });
		assert.equal(d.body.name, 'compat_product_dev');
	});

	it('publishEvent with product answers ok', async () => {
		const res = await particle.publishEvent({ name: 'compat/product', data: 'p', product: product.id, auth: ada });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true);
	});

	it('a user outside the team is refused on every product route', async () => {
		const list = await apiFailure(particle.listDevices({ product: product.id, auth: bob }), 'foreign product list');
		assert.equal(list.statusCode, 403, showErr(list));
		const call = await apiFailure(particle.callFunction({ deviceId: pid, name: 'led', argument: 'on', product: product.id, auth: bob }), 'foreign product call');
		assert.equal(call.statusCode, 403, showErr(call));
		const code = await apiFailure(particle.getClaimCode({ product: product.id, auth: bob }), 'foreign product claim code');
		assert.equal(code.statusCode, 403, showErr(code));
		const pub = await apiFailure(particle.publishEvent({ name: 'x', product: product.id, auth: bob }), 'foreign product publish');
		assert.equal(pub.statusCode, 403, showErr(pub));
	});

	it('removeDevice with product takes the device out of the product (204)', async () => {
		const res = await particle.removeDevice({ deviceId: pid, product: product.id, auth: ada });
		assert.equal(res.statusCode, 204);
		const list = await particle.listDevices({ product: product.id, auth: ada });
		assert.deepEqual(list.body.devices, []);
		const gone = await apiFailure(particle.getDevice({ deviceId: pid, product: product.id, auth: ada }), 'removed product device');
		assert.equal(gone.statusCode, 404, showErr(gone));
		// A user who owns the device keeps it; it is a plain Photon again.
		const d = await particle.getDevice({ deviceId: pid, auth: ada });
		assert.equal(d.body.owner, ADA);
		assert.equal(d.body.product_id, 6);
		const call = await particle.callFunction({ deviceId: pid, name: 'led', argument: 'off', auth: ada });
		assert.equal(call.body.return_value, 0);
	});
});
