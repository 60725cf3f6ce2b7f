'use strict';
// Test harness around a real `wick serve`: builds the binary (unless WICK_BIN is set),
// starts it on a free loopback port with a temporary data directory, and stops it.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const BUILD_TIMEOUT_MS = 10 * 60 * 1000;
const START_TIMEOUT_MS = 30 * 1000;
const STOP_TIMEOUT_MS = 10 * 1000;
const COMMAND_TIMEOUT_MS = 30 * 1000;

let builtBinary = null;

/** Returns the path of the wick binary: WICK_BIN, or one built from the repo root (once per process). */
function wickBinary() {
	if (process.env.WICK_BIN) {
		return process.env.WICK_BIN;
	}
	if (builtBinary) {
		return builtBinary;
	}
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-compat-bin-'));
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	builtBinary = buildWick(dir);
	return builtBinary;
}

/** Builds ./cmd/wick into dir and returns the binary's path; throws with the compiler output on failure. */
function buildWick(dir) {
	const out = path.join(dir, 'wick');
	const res = spawnSync('go', ['build', '-o', out, './cmd/wick'], {
		cwd: REPO_ROOT,
		encoding: 'utf8',
		timeout: BUILD_TIMEOUT_MS,
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	if (res.error) {
		throw new Error(`compat: go build failed to run: ${res.error.message}`);
	}
	if (res.status !== 0) {
		throw new Error(`compat: go build ./cmd/wick failed (exit ${res.status}):\n${res.stdout}${res.stderr}`);
	}
	return out;
}

/** Returns a free TCP port on 127.0.0.1 (listen on :0, then close). */
function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running `wick serve` process with its own port and data directory. */
class WickServer {
	constructor({ bin, dataDir, port, child }) {
		this.bin = bin;
		this.dataDir = dataDir;
		this.port = port;
		this.url = `http://127.0.0.1:${port}`;
		this.child = child;
		this.stderr = '';
		this.stdout = '';
		this.exited = new Promise((resolve) => {
			child.on('exit', (code, signal) => resolve({ code, signal }));
		});
		child.stderr.on('data', (d) => { this.stderr += d; });
		child.stdout.on('data', (d) => { this.stdout += d; });
	}

	/** Returns the server's log output so far (for failure messages). */
	logs() {
		return (this.stdout + this.stderr).split('\n').slice(-60).join('\n');
	}

	/** Runs `wick user create EMAIL --password-stdin --data DIR` against this server's data directory. */
	createUser(email, password) {
		const res = spawnSync(this.bin, ['user', 'create', email, '--password-stdin', '--data', this.dataDir], {
			input: `${password}\n`,
			encoding: 'utf8',
			timeout: COMMAND_TIMEOUT_MS,
		});
		if (res.error || res.status !== 0) {
			throw new Error(`compat: wick user create ${email} failed (exit ${res.status}, ${res.error && res.error.message}):\n${res.stdout}${res.stderr}`);
		}
		return res;
	}

	/** Sends SIGTERM, waits for exit (SIGKILL after a timeout), removes the data directory; returns {code, signal}. */
	async stop() {
		if (this.child.exitCode === null && this.child.signalCode === null) {
			this.child.kill('SIGTERM');
		}
		const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
		const result = await this.exited;
		clearTimeout(timer);
		fs.rmSync(this.dataDir, { recursive: true, force: true });
		return result;
	}
}

/**
 * Starts `wick serve --data DIR --http 127.0.0.1:PORT [--signup] [extraArgs...]` and waits until
 * GET /v1/user answers.
 */
async function startWick({ signup = true, extraArgs = [] } = {}) {
	const bin = wickBinary();
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-compat-data-'));
	const port = await freePort();
	const args = ['serve', '--data', dataDir, '--http', `127.0.0.1:${port}`, '--device-tcp', '127.0.0.1:0'];
	if (signup) {
		args.push('--signup');
	}
	args.push(...extraArgs);
	const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	const server = new WickServer({ bin, dataDir, port, child });
	let exitInfo = null;
	server.exited.then((info) => { exitInfo = info; });

	const deadline = Date.now() + START_TIMEOUT_MS;
	for (;;) {
		if (exitInfo) {
			fs.rmSync(dataDir, { recursive: true, force: true });
			throw new Error(`compat: wick serve exited early (${JSON.stringify(exitInfo)}):\n${server.logs()}`);
		}
		try {
			const res = await fetch(`${server.url}/v1/user`, { signal: AbortSignal.timeout(2000) });
			await res.arrayBuffer();
			return server;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) {
			await server.stop();
			throw new Error(`compat: wick serve did not answer on ${server.url} within ${START_TIMEOUT_MS} ms:\n${server.logs()}`);
		}
		await sleep(100);
	}
}

module.exports = { REPO_ROOT, buildWick, wickBinary, freePort, startWick, WickServer, sleep };
