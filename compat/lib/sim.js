'use strict';
// Simulated devices for the compat suite: `wick sim` subprocesses connected to a harness
// `wick serve`, a restart of that server on the same data directory and ports, and small
// waiting helpers for device state and event streams.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { WickServer, sleep } = require('./wick');
const rest = require('./rest');

const WAIT_TIMEOUT_MS = 15 * 1000;
const STOP_TIMEOUT_MS = 10 * 1000;
const RESTART_TIMEOUT_MS = 30 * 1000;

/** Returns the device gateway address ("127.0.0.1:PORT") the server logged at start. */
function deviceAddress(server) {
	const m = `${server.stdout}\n${server.stderr}`.match(/device_tcp=(\S+)/);
	if (!m) {
		throw new Error(`compat: wick serve did not log its device_tcp address:\n${server.logs()}`);
	}
	return m[1];
}

/** Returns the n-th simulated device ID for a hex prefix, as `wick sim` numbers them. */
function simDeviceId(prefix, n) {
	const counter = n.toString(16);
	return prefix.toLowerCase() + '0'.repeat(24 - prefix.length - counter.length) + counter;
}

/** A running `wick sim` process and the IDs of its devices. */
class Sim {
	constructor({ child, ids, args }) {
		this.child = child;
		this.ids = ids;
		this.args = args;
		this.stdout = '';
		this.stderr = '';
		child.stdout.on('data', (d) => { this.stdout += d; });
		child.stderr.on('data', (d) => { this.stderr += d; });
		this.exited = new Promise((resolve) => {
			child.on('exit', (code, signal) => resolve({ code, signal }));
		});
	}

	/** Describes the process for failure messages. */
	logs() {
		return `wick ${this.args.join(' ')}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
	}

	/** Sends SIGTERM (the devices say Goodbye), waits for exit (SIGKILL after a timeout); returns {code, signal}. */
	async stop() {
		if (this.child.exitCode === null && this.child.signalCode === null) {
			this.child.kill('SIGTERM');
		}
		const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
		const result = await this.exited;
		clearTimeout(timer);
		return result;
	}
}

/**
 * Starts `wick sim` against server's device gateway with count devices numbered from
 * idStart under idPrefix. With token, each key is provisioned through the API and, without
 * claimCode, each device is claimed to the token's owner; product puts the devices in that
 * product (the token's owner must be on its team). keysDir reuses (or keeps) device
 * keys; publish/every make each device publish. Returns at once: wait with waitForDevices.
 */
function startSim(server, { token, count = 1, idPrefix, idStart = 1, claimCode, product, publish, every, keysDir } = {}) {
	if (!idPrefix) {
		throw new Error('compat: startSim needs an idPrefix (each sim of a file needs its own IDs)');
	}
	const args = ['sim', '--server', deviceAddress(server), '--data', server.dataDir,
		'--count', String(count), '--id-prefix', idPrefix, '--id-start', String(idStart),
		'--progress', '0', '--connect-timeout', '10s'];
	if (token) {
		args.push('--api', server.url, '--token', token);
	}
	if (claimCode) {
		args.push('--claim-code', claimCode);
	}
	if (product) {
		args.push('--product', String(product));
	}
	if (publish) {
		args.push('--publish', publish, '--every', every || '500ms');
	}
	if (keysDir) {
		args.push('--keys-dir', keysDir);
	}
	const child = spawn(server.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	const ids = [];
	for (let i = 0; i < count; i++) {
		ids.push(simDeviceId(idPrefix, idStart + i));
	}
	return new Sim({ child, ids, args });
}

/**
 * Polls fn (async, returns a truthy value when done) every 100 ms until it is truthy or
 * timeoutMs passes; then throws with describe() in the message. Returns fn's value.
 */
async function waitUntil(fn, describe, timeoutMs = WAIT_TIMEOUT_MS) {
	const deadline = Date.now() + timeoutMs;
	let last;
	for (;;) {
		last = await fn();
		if (last) {
			return last;
		}
		if (Date.now() > deadline) {
			throw new Error(`compat: timed out after ${timeoutMs} ms waiting for ${typeof describe === 'function' ? describe() : describe}`);
		}
		await sleep(100);
	}
}

/**
 * Waits until every device ID is visible to token on GET /v1/devices/:id (or, with product,
 * /v1/products/:p/devices/:id), online, described (function led) and, with owner, owned by
 * that username. Returns the device objects; sim's logs go into the timeout message.
 */
async function waitForDevices(server, token, ids, { owner, product, sim } = {}) {
	const out = [];
	for (const id of ids) {
		const p = product ? `/v1/products/${product}/devices/${id}` : `/v1/devices/${id}`;
		let last = null;
		out.push(await waitUntil(async () => {
			last = await rest.request(server.url, 'GET', p, { token });
			const d = last.body;
			const ok = last.status === 200 && d && d.online === true && Array.isArray(d.functions) &&
				d.functions.includes('led') && (!owner || d.owner === owner);
			return ok ? d : null;
		}, () => `device ${id} on ${p} (last answer: ${last && rest.describe(last)})${sim ? `\n${sim.logs()}` : ''}`));
	}
	return out;
}

/** Waits until GET /v1/devices/:id (as token) reports the device offline. */
async function waitOffline(server, token, id) {
	let last = null;
	return waitUntil(async () => {
		last = await rest.request(server.url, 'GET', `/v1/devices/${id}`, { token });
		return last.status === 200 && last.body.online === false ? last.body : null;
	}, () => `device ${id} to go offline (last answer: ${last && rest.describe(last)})`);
}

/** Waits until GET /v1/user answers on server.url (any status). */
async function waitListening(url, timeoutMs) {
	return waitUntil(async () => {
		try {
			const res = await fetch(`${url}/v1/user`, { signal: AbortSignal.timeout(2000) });
			await res.arrayBuffer();
			return true;
		} catch {
			return false;
		}
	}, `wick serve to answer on ${url}`, timeoutMs);
}

/**
 * Stops server with SIGTERM (which ends its event streams and device sessions) and starts
 * `wick serve` again with the same arguments, data directory, HTTP port and device port.
 * Returns the new WickServer; the old object must not be used (its stop() would remove the
 * shared data directory).
 */
async function restartWick(server) {
	const device = deviceAddress(server);
	const args = server.child.spawnargs.slice(1);
	const i = args.indexOf('--device-tcp');
	if (i < 0) {
		throw new Error(`compat: restartWick needs a server started with --device-tcp: ${args.join(' ')}`);
	}
	args[i + 1] = device;
	server.child.kill('SIGTERM');
	const timer = setTimeout(() => server.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
	await server.exited;
	clearTimeout(timer);
	const child = spawn(server.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	const next = new WickServer({ bin: server.bin, dataDir: server.dataDir, port: server.port, child });
	let exitInfo = null;
	next.exited.then((info) => { exitInfo = info; });
	try {
		await waitUntil(async () => {
			if (exitInfo) {
				throw new Error(`compat: restarted wick serve exited (${JSON.stringify(exitInfo)}):\n${next.logs()}`);
			}
			return waitListening(next.url, 2500).then(() => true, () => false);
		}, () => `restarted wick serve on ${next.url}:\n${next.logs()}`, RESTART_TIMEOUT_MS);
	} catch (err) {
		child.kill('SIGKILL');
		throw err;
	}
	return next;
}

/**
 * Records the events of a particle-api-js EventStream (and its 'disconnect', 'reconnect',
 * 'reconnect-success', 'reconnect-error' notices) so tests can wait for them.
 */
class StreamRecorder {
	constructor(stream) {
		this.stream = stream;
		this.events = [];
		this.notices = [];
		this.waiters = new Set();
		stream.on('event', (e) => this.push(this.events, e));
		for (const name of ['disconnect', 'reconnect', 'reconnect-success', 'reconnect-error']) {
			stream.on(name, (arg) => this.push(this.notices, { name, arg, at: Date.now() }));
		}
	}

	push(list, item) {
		list.push(item);
		for (const w of this.waiters) {
			w();
		}
	}

	/** Waits for an item of list (events or notices) matching pred, seen from index from on. */
	waitIn(list, pred, what, { from = 0, timeoutMs = WAIT_TIMEOUT_MS } = {}) {
		return new Promise((resolve, reject) => {
			let timer = null;
			const check = () => {
				const hit = list.slice(from).find(pred);
				if (hit) {
					this.waiters.delete(check);
					clearTimeout(timer);
					resolve(hit);
				}
			};
			timer = setTimeout(() => {
				this.waiters.delete(check);
				reject(new Error(`compat: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-10))}; notices: ${this.notices.map((n) => n.name).join(', ')}`));
			}, timeoutMs);
			this.waiters.add(check);
			check();
		});
	}

	/** Waits for an event matching pred (from index opts.from). */
	waitEvent(pred, what, opts) {
		return this.waitIn(this.events, pred, what, opts);
	}

	/** Waits for a notice named name (from index opts.from). */
	waitNotice(name, opts) {
		return this.waitIn(this.notices, (n) => n.name === name, `'${name}' notice`, opts);
	}

	/**
	 * Ends the stream for good (no reconnect). EventStream.abort() leaves its 15 s idle
	 * timer running (harmless, but it keeps node alive), so that is cleared too.
	 */
	close() {
		this.stream.abort();
		this.stream.stopIdleTimeout();
	}
}

/**
 * Generates an RSA-1024 device key as a device's factory would and saves the private key
 * (PKCS#1 PEM) as keysDir/<id>.pem, where `wick sim --keys-dir` finds it. Returns
 * {privateKeyPath, publicKeyPem}.
 */
function makeDeviceKey(keysDir, id) {
	const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
		modulusLength: 1024,
		publicKeyEncoding: { type: 'spki', format: 'pem' },
		privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
	});
	const privateKeyPath = path.join(keysDir, `${id}.pem`);
	fs.writeFileSync(privateKeyPath, privateKey, { mode: 0o600 });
	return { privateKeyPath, publicKeyPem: publicKey };
}

/** Makes a temporary directory for device keys; removed at process exit. */
function tempKeysDir() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-compat-keys-'));
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	return dir;
}

module.exports = {
	deviceAddress, simDeviceId, startSim, Sim, waitUntil, waitForDevices, waitOffline,
	restartWick, StreamRecorder, tempKeysDir, makeDeviceKey,
};
