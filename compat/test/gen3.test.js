'use strict';
// Gen 3 devices (DTLS over UDP) through Particle's own clients: `wick sim --udp` devices
// provisioned with P-256 keys, then listed, called, read and streamed with particle-api-js 12
// and the particle CLI, exactly as Gen 2 devices are (docs/operations.md, "Gen 3 devices in
// wick sim").

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { showErr } = require('../lib/assertions');
const { ParticleCLI, show } = require('../lib/cli');
const { Sim, simDeviceId, waitForDevices, waitOffline, tempKeysDir } = require('../lib/sim');

const PASSWORD = 'correct horse battery staple';
const ERIN = 'erin@example.com';
const SENSOR = 'compat-gen3-sensor';
const COUNT = 3;

let server;
let particle;
let token;
let cli;
let sim;

/** The UDP address the server logged at start ("device_udp=127.0.0.1:PORT"). */
function udpAddress() {
	const m = `${server.stdout}\n${server.stderr}`.match(/device_udp=(\S+)/);
	if (!m || m[1] === 'disabled') {
		throw new Error(`compat: wick serve did not log a device_udp address:\n${server.logs()}`);
	}
	return m[1];
}

/** Starts `wick sim --udp` with COUNT devices provisioned to token, publishing SENSOR. */
function startGen3Sim() {
	const args = ['sim', '--udp', '--server', udpAddress(), '--data', server.dataDir,
		'--api', server.url, '--token', token, '--count', String(COUNT), '--id-prefix', 'e3',
		'--progress', '0', '--connect-timeout', '10s', '--publish', SENSOR, '--every', '300ms',
		'--keys-dir', tempKeysDir()];
	const child = spawn(server.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	const ids = [];
	for (let i = 1; i <= COUNT; i++) {
		ids.push(simDeviceId('e3', i));
	}
	return new Sim({ child, ids, args });
}

before(async () => {
	server = await startWick({ signup: false });
	server.createUser(ERIN, PASSWORD);
	token = (await rest.passwordToken(server.url, ERIN, PASSWORD)).access_token;
	particle = new Particle({ baseUrl: server.url });
	sim = startGen3Sim();
	cli = new ParticleCLI();
	await cli.useServer('wick', server.url);
	const login = await cli.run(['login', '--username', ERIN, '--password', PASSWORD]);
	assert.equal(login.code, 0, show(login));
	await waitForDevices(server, token, sim.ids, { owner: ERIN, sim });
});

after(async () => {
	if (sim) {
		await sim.stop();
	}
	if (cli) {
		cli.cleanup();
	}
	if (server) {
		await server.stop();
	}
});

describe('Gen 3 devices with particle-api-js', () => {
	it('lists them online with their functions and variables', async () => {
		const res = await particle.listDevices({ auth: token });
		const mine = res.body.filter((d) => sim.ids.includes(d.id));
		assert.equal(mine.length, COUNT, JSON.stringify(res.body));
		for (const d of mine) {
			assert.equal(d.online, true, JSON.stringify(d));
			assert.ok(d.functions.includes('led'), JSON.stringify(d));
		}
		const one = await particle.getDevice({ deviceId: sim.ids[0], auth: token });
		assert.deepEqual(Object.keys(one.body.variables).sort(), ['count', 'label', 'on', 'temp'], JSON.stringify(one.body));
	});

	it('calls a function and reads variables over DTLS', async () => {
		const id = sim.ids[1];
		try {
			const on = await particle.callFunction({ deviceId: id, name: 'led', argument: 'on', auth: token });
			assert.equal(on.body.return_value, 1, JSON.stringify(on.body));
			const bad = await particle.callFunction({ deviceId: id, name: 'led', argument: 'blink', auth: token });
			assert.equal(bad.body.return_value, -1, JSON.stringify(bad.body));
			const v = await particle.getVariable({ deviceId: id, name: 'on', auth: token });
			assert.equal(v.body.result, true, JSON.stringify(v.body));
			const count = await particle.getVariable({ deviceId: id, name: 'count', auth: token });
			assert.equal(count.body.result, 2, JSON.stringify(count.body));
			const label = await particle.getVariable({ deviceId: id, name: 'label', auth: token });
			assert.equal(label.body.result, 'sim-2', JSON.stringify(label.body));
		} catch (err) {
			assert.fail(showErr(err));
		}
	});

	it('streams the events the devices publish', async () => {
		const stream = await particle.getEventStream({ name: SENSOR, auth: token });
		try {
			const from = await new Promise((resolve, reject) => {
				const seen = new Set();
				const timer = setTimeout(() => reject(new Error(`events from ${[...seen]} only`)), 15000);
				stream.on('event', (e) => {
					seen.add(e.coreid);
					if (seen.size === COUNT) {
						clearTimeout(timer);
						resolve(seen);
					}
				});
			});
			for (const id of sim.ids) {
				assert.ok(from.has(id), `no event from ${id}`);
			}
		} finally {
			stream.abort();
		}
	});
});

describe('Gen 3 devices with the particle CLI', () => {
	it('calls, gets and lists', async () => {
		const id = sim.ids[2];
		const call = await cli.run(['call', id, 'led', 'on']);
		assert.equal(call.code, 0, show(call));
		assert.equal(call.stdout.trim().split('\n').pop().trim(), '1', show(call));
		const get = await cli.run(['get', id, 'label']);
		assert.equal(get.code, 0, show(get));
		assert.match(get.stdout, /sim-3/, show(get));
		const list = await cli.run(['list']);
		assert.equal(list.code, 0, show(list));
		assert.match(list.output, /is online/, show(list));
	});
});

describe('Gen 3 presence', () => {
	it('goes offline when the simulator stops (Goodbye)', async () => {
		const result = await sim.stop();
		assert.equal(result.code, 0, sim.logs());
		for (const id of sim.ids) {
			await waitOffline(server, token, id);
		}
		sim = null;
	});
});
