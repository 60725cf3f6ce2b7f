'use strict';
// Runs the installed `particle` command (particle-cli) with an isolated HOME, no
// proxies, no colours, update checks disabled and a hard timeout.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CLI_TIMEOUT_MS = 30 * 1000;

/** Path of particle-cli's entry script, resolved from its package.json "bin". */
function particleEntry() {
	const pkgPath = require.resolve('particle-cli/package.json');
	const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
	const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.particle;
	return path.join(path.dirname(pkgPath), bin);
}

/** Installed particle-cli version (from its package.json). */
function particleVersion() {
	return require('particle-cli/package.json').version;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** Removes terminal escape sequences and spinner carriage returns from CLI output. */
function stripAnsi(text) {
	return text.replace(ANSI, '').replace(/\r/g, '\n');
}

/** A `particle` user with its own HOME directory (its own ~/.particle profiles). */
class ParticleCLI {
	/** Creates a fresh HOME; with template, starts from a copy of that CLI's ~/.particle. */
	constructor({ template } = {}) {
		this.home = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-compat-home-'));
		if (template) {
			fs.cpSync(path.join(template.home, '.particle'), path.join(this.home, '.particle'), { recursive: true });
		}
	}

	/** The environment every `particle` run gets: this HOME, no proxies, no colours, no update checks. */
	env() {
		return {
			PATH: process.env.PATH,
			HOME: this.home,
			USERPROFILE: this.home,
			TMPDIR: os.tmpdir(),
			PARTICLE_DISABLE_UPDATE: 'true',
			NO_UPDATE_NOTIFIER: '1',
			NO_COLOR: '1',
			FORCE_COLOR: '0',
			CI: 'true',
			NO_PROXY: '127.0.0.1,localhost',
			no_proxy: '127.0.0.1,localhost',
			LANG: 'C.UTF-8',
			TZ: 'UTC',
		};
	}

	/** Starts `particle ...args` and returns the child process (stdio piped), for commands that run until killed. */
	spawn(args) {
		return spawn(process.execPath, [particleEntry(), ...args], {
			env: this.env(),
			cwd: this.home,
			stdio: ['pipe', 'pipe', 'pipe'],
		});
	}

	/** Runs `particle ...args`; input (string) is written to stdin, which is then closed. Resolves {code, signal, stdout, stderr, output}. */
	run(args, { input = '', timeoutMs = CLI_TIMEOUT_MS } = {}) {
		return new Promise((resolve, reject) => {
			const child = this.spawn(args);
			let stdout = '';
			let stderr = '';
			let timedOut = false;
			child.stdout.on('data', (d) => { stdout += d; });
			child.stderr.on('data', (d) => { stderr += d; });
			const timer = setTimeout(() => {
				timedOut = true;
				child.kill('SIGKILL');
			}, timeoutMs);
			child.on('error', (err) => {
				clearTimeout(timer);
				reject(err);
			});
			child.on('close', (code, signal) => {
				clearTimeout(timer);
				const out = stripAnsi(stdout);
				const err = stripAnsi(stderr);
				if (timedOut) {
					reject(new Error(`compat: \`particle ${args.join(' ')}\` did not finish within ${timeoutMs} ms (waiting on stdin or the network?)\nstdout:\n${out}\nstderr:\n${err}`));
					return;
				}
				resolve({ code, signal, stdout: out, stderr: err, output: `${out}\n${err}` });
			});
			child.stdin.on('error', () => {}); // the CLI may exit before reading its input
			child.stdin.end(input);
		});
	}

	/** Reads ~/.particle/<profile>.config.json (null when absent). */
	profileConfig(profile) {
		const file = path.join(this.home, '.particle', `${profile}.config.json`);
		return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
	}

	/** Reads ~/.particle/profile.json (null when absent). */
	activeProfile() {
		const file = path.join(this.home, '.particle', 'profile.json');
		return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
	}

	/** Points profile at apiUrl with `particle config <profile> apiUrl URL` then `particle config <profile>`. */
	async useServer(profile, apiUrl) {
		for (const args of [['config', profile, 'apiUrl', apiUrl], ['config', profile]]) {
			const res = await this.run(args);
			if (res.code !== 0) {
				throw new Error(`compat: particle ${args.join(' ')} failed (${res.code}):\n${res.output}`);
			}
		}
	}

	/** Removes the HOME directory. */
	cleanup() {
		fs.rmSync(this.home, { recursive: true, force: true });
	}
}

/** Formats a CLI result for assertion messages. */
function show(res) {
	return `exit ${res.code}${res.signal ? ` (${res.signal})` : ''}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`;
}

module.exports = { ParticleCLI, particleEntry, particleVersion, stripAnsi, show, CLI_TIMEOUT_MS };
