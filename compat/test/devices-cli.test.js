'use strict';
// particle-cli 3 device and event commands against a real `wick serve` with simulated
// devices (`wick sim`): list, call, get, device rename/add/remove, nyan, function list,
// variable list, publish, subscribe and keys send (docs/particle-api.md#which-client-calls-what).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { ParticleCLI, show, stripAnsi } = require('../lib/cli');
const {
	startSim, waitForDevices, waitOffline, waitUntil, simDeviceId, tempKeysDir, makeDeviceKey, StreamRecorder,
} = require('../lib/sim');

const PROFILE = 'wick';
const CAROL = 'carol@example.com';
const DAVE = 'dave@example.com';
const PASSWORD = 'hunter2 but longer';
const SENSOR = 'sensorValueEvent';

let server;
let carol; // ParticleCLI logged in as CAROL
let dave; // ParticleCLI logged in as DAVE
let carolToken;
let daveToken;
let product;
const sims = [];
let ids; // carol's two simulated devices
let productDevice; // carol's device in the product
const children = new Set(); // running `particle subscribe` processes

/** A CLI with its own HOME, pointed at the server and logged in as username. */
async function loggedInCLI(username) {
	const cli = new ParticleCLI();
	await cli.useServer(PROFILE, server.url);
	const res = await cli.run(['login', '--username', username, '--password', PASSWORD]);
	assert.equal(res.code, 0, show(res));
	return cli;
}

/** Runs `particle ...args` as cli and asserts exit status 0. */
async function ok(cli, args, opts) {
	const res = await cli.run(args, opts);
	assert.equal(res.code, 0, `particle ${args.join(' ')}: ${show(res)}`);
	return res;
}

/** Runs `particle ...args` as cli and asserts a non-zero exit status. */
async function fails(cli, args, opts) {
	const res = await cli.run(args, opts);
	assert.notEqual(res.code, 0, `particle ${args.join(' ')} should fail: ${show(res)}`);
	return res;
}

/** Wick's generated device names: two words, as Particle's (docs/api.md#device-names). */
const GENERATED_NAME = /^[a-z]+_[a-z]+(_[0-9]{4})?$/;

/** The name of device id as token's owner sees it; claimed devices always have one. */
async function nameOf(token, id) {
	const res = await rest.request(server.url, 'GET', `/v1/devices/${id}`, { token });
	assert.equal(res.status, 200, rest.describe(res));
	assert.match(String(res.body.name), GENERATED_NAME, rest.describe(res));
	return res.body.name;
}

/** The last non-empty line of the CLI's stdout. */
function lastLine(res) {
	const lines = res.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
	return lines[lines.length - 1];
}

/** The JSON event lines `particle subscribe` printed. */
function eventLines(text) {
	return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

/**
 * Starts `particle subscribe ...args` as cli and waits until it prints that it is
 * subscribed and the stream is open (the CLI writes an empty line after connecting).
 * Returns {child, output()}; kill the child to end it.
 */
async function startSubscribe(cli, args) {
	const child = cli.spawn(['subscribe', ...args]);
	children.add(child);
	child.stdin.end();
	let raw = '';
	child.stdout.on('data', (d) => { raw += d; });
	child.stderr.on('data', (d) => { raw += d; });
	const exited = new Promise((resolve) => child.on('exit', resolve));
	const output = () => stripAnsi(raw);
	const stop = async () => {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill('SIGTERM');
		}
		await exited;
		children.delete(child);
	};
	try {
		await waitUntil(() => /Subscribing to[^\n]*\n\s*\n/.test(output()) || child.exitCode !== null,
			() => `particle subscribe ${args.join(' ')} to connect; output:\n${output()}`);
		assert.equal(child.exitCode, null, `particle subscribe exited early:\n${output()}`);
	} catch (err) {
		await stop();
		throw err;
	}
	return { child, output, stop };
}

before(async () => {
	server = await startWick({ signup: false });
	server.createUser(CAROL, PASSWORD);
	server.createUser(DAVE, PASSWORD);
	carolToken = (await rest.passwordToken(server.url, CAROL, PASSWORD)).access_token;
	daveToken = (await rest.passwordToken(server.url, DAVE, PASSWORD)).access_token;
	product = await rest.createProduct(server.url, carolToken, 'Compat CLI');
	const sim = startSim(server, { token: carolToken, count: 2, idPrefix: 'f1', publish: SENSOR, every: '300ms' });
	sims.push(sim);
	const code = await rest.request(server.url, 'POST', `/v1/products/${product.id}/device_claims`, { token: carolToken, json: {} });
	assert.equal(code.status, 200, rest.describe(code));
	const psim = startSim(server, { token: carolToken, count: 1, idPrefix: 'f5', claimCode: code.body.claim_code, publish: SENSOR, every: '300ms' });
	sims.push(psim);
	[carol, dave] = await Promise.all([loggedInCLI(CAROL), loggedInCLI(DAVE)]);
	await waitForDevices(server, carolToken, sim.ids, { owner: CAROL, sim });
	await waitForDevices(server, carolToken, psim.ids, { product: product.id, sim: psim });
	ids = sim.ids;
	productDevice = psim.ids[0];
});

after(async () => {
	for (const child of children) {
		child.kill('SIGKILL');
	}
	await Promise.all(sims.map((s) => s.stop()));
	for (const cli of [carol, dave]) {
		if (cli) {
			cli.cleanup();
		}
	}
	if (server) {
		await server.stop();
	}
});

// Read-only: these tests run side by side.
describe('particle list / function list / variable list', { concurrency: true }, () => {
	it('list shows every online device with its variables and functions', async () => {
		const res = await ok(carol, ['list']);
		// Claimed devices are named (no "<no name>"), the name first as particle-cli prints it.
		for (const id of ids) {
			assert.ok(res.stdout.includes(`${await nameOf(carolToken, id)} [${id}] (Photon) is online`), show(res));
		}
		// A product device: the CLI names the platform from product_id, which is the product's.
		assert.ok(res.stdout.includes(`${await nameOf(carolToken, productDevice)} [${productDevice}] (Product ${product.id}) is online`), show(res));
		assert.ok(!res.stdout.includes('<no name>'), show(res));
		for (const line of ['  Variables:', '    temp (double)', '    count (int32)', '    label (string)', '    on (bool)',
			'  Functions:', '    int led (String args) ']) {
			assert.equal(res.stdout.split('\n').filter((l) => l === line).length, 3, `${JSON.stringify(line)} three times in:\n${show(res)}`);
		}
	});

	it('list <device ID> shows only that device', async () => {
		const res = await ok(carol, ['list', ids[1]]);
		assert.ok(res.stdout.includes(`[${ids[1]}]`), show(res));
		assert.ok(!res.stdout.includes(`[${ids[0]}]`), show(res));
	});

	it('list of a user without devices says so', async () => {
		const res = await ok(dave, ['list']);
		assert.match(res.stdout, /No devices found\./, show(res));
	});

	it('function list shows only the functions', async () => {
		const res = await ok(carol, ['function', 'list']);
		assert.equal(res.stdout.split('\n').filter((l) => l === '    int led (String args) ').length, 3, show(res));
		assert.ok(!res.stdout.includes('temp (double)'), show(res));
	});

	it('variable list shows only the variables', async () => {
		const res = await ok(carol, ['variable', 'list']);
		assert.equal(res.stdout.split('\n').filter((l) => l === '    temp (double)').length, 3, show(res));
		assert.ok(!res.stdout.includes('int led'), show(res));
	});
});

describe('particle call / get', () => {
	it('call runs the function and prints its return value', async () => {
		assert.equal(lastLine(await ok(carol, ['call', ids[0], 'led', 'on'])), '1');
		assert.equal(lastLine(await ok(carol, ['call', ids[0], 'led', 'blink'])), '-1');
	});

	it('get prints typed variable values', async () => {
		const [on, count, label, temp] = await Promise.all(['on', 'count', 'label', 'temp'].map((v) => ok(carol, ['get', ids[0], v])));
		assert.equal(lastLine(on), 'true');
		assert.equal(lastLine(count), '2');
		assert.equal(lastLine(label), 'sim-1');
		assert.match(lastLine(temp), /^\d+(\.\d)?$/);
	});

	it('call of an unknown function reports it as not found', async () => {
		const res = await fails(carol, ['call', ids[0], 'nope']);
		assert.match(res.output, /Function call failed: Function `nope` not found/, show(res));
	});

	it('get of an unknown variable prints the server\'s error', async () => {
		const res = await fails(carol, ['get', ids[0], 'nope']);
		assert.match(res.stdout, /Error: Unknown Variable: nope/, show(res));
	});

	it('another user\'s device is refused with 403', async () => {
		// particle-api-js 11 puts no body text in a 403 message; the CLI prints the status.
		const res = await fails(dave, ['call', ids[0], 'led', 'on']);
		assert.match(res.output, new RegExp(`Error calling function: \`led\`: HTTP error 403 from ${server.url}/v1/devices/${ids[0]}/led`), show(res));
	});
});

describe('particle device rename / nyan', () => {
	it('device rename names the device; call and get then take the name', async () => {
		const res = await ok(carol, ['device', 'rename', ids[1], 'cli_lamp']);
		assert.match(res.stdout, new RegExp(`Successfully renamed device ${ids[1]} to: cli_lamp`), show(res));
		const d = await rest.request(server.url, 'GET', `/v1/devices/${ids[1]}`, { token: carolToken });
		assert.equal(d.body.name, 'cli_lamp', rest.describe(d));
		assert.equal(lastLine(await ok(carol, ['call', 'cli_lamp', 'led', 'on'])), '1');
		const [get, list] = await Promise.all([ok(carol, ['get', 'cli_lamp', 'on']), ok(carol, ['list', 'cli_lamp'])]);
		assert.equal(lastLine(get), 'true');
		assert.ok(list.stdout.includes(`cli_lamp [${ids[1]}] (Photon) is online`), show(list));
	});

	it('device rename of an unknown device prints the server\'s "Permission Denied"', async () => {
		// cloud.js maps err.info "I didn't recognize that device name or ID" to "Device not
		// found", but particle-api-js 11 errors never carry .info (only .body.info), so with
		// Particle's own 403 body the CLI prints body.error.
		const res = await fails(carol, ['device', 'rename', 'no_such_device', 'x']);
		assert.match(res.output, /Failed to rename no_such_device: Permission Denied/, show(res));
	});

	it('nyan signals a device by ID or name, on and off', async () => {
		await Promise.all([ok(carol, ['nyan', ids[0]]), ok(carol, ['nyan', 'cli_lamp', 'on'])]);
		await ok(carol, ['nyan', ids[0], 'off']);
	});

	it('nyan of an unknown device fails', async () => {
		const res = await fails(carol, ['nyan', 'no_such_device']);
		assert.match(res.output, /Signaling failed/, show(res));
	});
});

describe('particle publish / subscribe', () => {
	it('publish sends a private event that reaches the user\'s stream as coreid "api"', async () => {
		const stream = new StreamRecorder(await new Particle({ baseUrl: server.url }).getEventStream({ deviceId: 'mine', name: 'compat/', auth: carolToken }));
		try {
			const res = await ok(carol, ['publish', 'compat/cli', 'hello from the cli']);
			assert.match(res.stdout, /Published private event: compat\/cli/, show(res));
			const e = await stream.waitEvent((ev) => ev.name === 'compat/cli', 'compat/cli');
			assert.equal(e.data, 'hello from the cli');
			assert.equal(e.coreid, 'api');
		} finally {
			stream.close();
		}
	});

	it('publish --product sends to the product stream', async () => {
		const stream = new StreamRecorder(await new Particle({ baseUrl: server.url }).getEventStream({ product: product.id, name: 'compat/', auth: carolToken }));
		try {
			const res = await ok(carol, ['publish', 'compat/cli-product', 'fleet', '--product', String(product.id)]);
			assert.match(res.stdout, new RegExp(`Published private event: compat/cli-product to product: ${product.id}`), show(res));
			const e = await stream.waitEvent((ev) => ev.name === 'compat/cli-product', 'compat/cli-product');
			assert.equal(e.data, 'fleet');
			assert.equal(e.productID, product.id, JSON.stringify(e));
		} finally {
			stream.close();
		}
	});

	it('subscribe NAME --max 2 prints two device events and exits', async () => {
		const res = await ok(carol, ['subscribe', SENSOR, '--max', '2']);
		assert.match(res.stdout, new RegExp(`Subscribing to "${SENSOR}" from my devices`), show(res));
		assert.match(res.stdout, /2 event\(s\) received\. Exiting\.\.\./, show(res));
		const events = eventLines(res.stdout);
		assert.equal(events.length, 2, show(res));
		for (const e of events) {
			assert.equal(e.name, SENSOR, show(res));
			assert.ok([...ids, productDevice].includes(e.coreid), show(res));
			assert.match(e.data, /^\d+$/, show(res));
		}
	});

	it('subscribe --device streams one device until killed', async () => {
		const sub = await startSubscribe(carol, ['--device', 'cli_lamp']);
		try {
			await waitUntil(() => eventLines(sub.output()).length >= 2, () => `two events from cli_lamp; output:\n${sub.output()}`);
		} finally {
			await sub.stop();
		}
		assert.match(sub.output(), /Subscribing to all events from device cli_lamp's stream/);
		for (const e of eventLines(sub.output())) {
			assert.equal(e.coreid, ids[1], sub.output());
		}
	});

	it('subscribe --all NAME opens /v1/events/NAME and shows the user\'s published events', async () => {
		const sub = await startSubscribe(carol, ['compat/all', '--all']);
		try {
			// Published after the stream is open, so it must arrive.
			const res = await rest.request(server.url, 'POST', '/v1/devices/events', { token: carolToken, json: { name: 'compat/all', data: 'firehose' } });
			assert.equal(res.status, 200, rest.describe(res));
			await waitUntil(() => eventLines(sub.output()).some((e) => e.name === 'compat/all'), () => `compat/all; output:\n${sub.output()}`);
		} finally {
			await sub.stop();
		}
		assert.match(sub.output(), /Subscribing to "compat\/all" from the firehose/);
		const e = eventLines(sub.output()).find((ev) => ev.name === 'compat/all');
		assert.equal(e.data, 'firehose');
	});
});

describe('particle call / get / nyan / subscribe --product', { concurrency: true }, () => {
	it('call --product and get --product reach the product device', async () => {
		assert.equal(lastLine(await ok(carol, ['call', productDevice, 'led', 'on', '--product', String(product.id)])), '1');
		assert.equal(lastLine(await ok(carol, ['get', productDevice, 'on', '--product', product.slug])), 'true');
	});

	it('nyan --product signals the product device', async () => {
		await ok(carol, ['nyan', productDevice, '--product', String(product.id)]);
	});

	it('subscribe --product --max 1 prints a product event with its product fields', async () => {
		const res = await ok(carol, ['subscribe', SENSOR, '--product', String(product.id), '--max', '1']);
		assert.match(res.stdout, new RegExp(`Subscribing to "${SENSOR}" from product ${product.id}'s stream`), show(res));
		const [e] = eventLines(res.stdout);
		assert.equal(e.coreid, productDevice, show(res));
		assert.equal(e.productID, product.id, show(res));
	});

	it('a user outside the team is refused', async () => {
		const res = await fails(dave, ['call', productDevice, 'led', 'on', '--product', String(product.id)]);
		assert.match(res.output, /HTTP error 403/, show(res));
	});
});

describe('particle keys send / device add / device remove', () => {
	const id = simDeviceId('f9', 1);
	let keysDir;
	let keyPath;
	let keySim;

	before(() => {
		keysDir = tempKeysDir();
		keyPath = makeDeviceKey(keysDir, id).privateKeyPath;
	});

	it('keys send registers the device key (the device can then connect)', async () => {
		const res = await ok(carol, ['keys', 'send', id, keyPath]);
		assert.match(res.stdout, new RegExp(`attempting to add a new public key for device ${id}`), show(res));
		assert.match(res.stdout, /submitting public key succeeded!/, show(res));
		// No --api: the simulator only has the key file; the handshake proves the server has the key.
		keySim = startSim(server, { count: 1, idPrefix: 'f9', keysDir });
		sims.push(keySim);
		await waitForDevices(server, carolToken, [id], { owner: CAROL, sim: keySim });
	});

	it('device remove --yes releases the device', async () => {
		const res = await ok(carol, ['device', 'remove', id, '--yes']);
		assert.match(res.stdout, new RegExp(`releasing device ${id}`), show(res));
		assert.match(res.stdout, /Okay!/, show(res));
		const d = await rest.request(server.url, 'GET', `/v1/devices/${id}`, { token: carolToken });
		assert.equal(d.status, 403, rest.describe(d));
	});

	it('device add claims a free device; it shows in list online', async () => {
		const res = await ok(dave, ['device', 'add', id]);
		assert.match(res.stdout, new RegExp(`Successfully claimed device ${id}`), show(res));
		const list = await ok(dave, ['list']);
		// It kept the name it got when carol's `keys send` claimed it.
		assert.ok(list.stdout.includes(`${await nameOf(daveToken, id)} [${id}] (Photon) is online`), show(list));
		assert.equal(lastLine(await ok(dave, ['call', id, 'led', 'on'])), '1');
	});

	it('device add of someone else\'s device offers a transfer; declining fails', async () => {
		const res = await fails(carol, ['device', 'add', id], { input: 'n\n' });
		assert.match(res.output, /That device belongs to someone else\. Would you like to request a transfer\?/, show(res));
		assert.match(res.output, /You cannot claim a device owned by someone else/, show(res));
	});

	it('device add of someone else\'s device with the transfer accepted requests it', async () => {
		const res = await ok(carol, ['device', 'add', id], { input: 'y\n' });
		assert.match(res.stdout, /Transfer requested\./, show(res));
		const d = await rest.request(server.url, 'GET', `/v1/devices/${id}`, { token: daveToken });
		assert.equal(d.body.owner, DAVE, rest.describe(d));
	});

	it('device add of an unknown device says "device not found"', async () => {
		const res = await fails(dave, ['device', 'add', 'ffffffffffffffffffffffff']);
		assert.match(res.output, /Failed to claim device: device not found/, show(res));
	});

	it('an offline device is listed as offline and its function call fails', async () => {
		await keySim.stop();
		await waitOffline(server, daveToken, id);
		const list = await ok(dave, ['list']);
		assert.ok(list.stdout.includes(`${await nameOf(daveToken, id)} [${id}] (Photon) is offline`), show(list));
		const res = await fails(dave, ['call', id, 'led', 'on']);
		assert.match(res.output, /Error calling function: `led`: Device is offline/, show(res));
	});

	it('device remove asks for confirmation on stdin', async () => {
		const res = await ok(dave, ['device', 'remove', id], { input: 'y\n' });
		assert.match(res.stdout, /Okay!/, show(res));
		const d = await rest.request(server.url, 'GET', `/v1/devices/${id}`, { token: daveToken });
		assert.equal(d.status, 403, rest.describe(d));
	});
});
