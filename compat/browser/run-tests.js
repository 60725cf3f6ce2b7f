'use strict';
// `npm run test:browser`: runs every compat/browser/test/*.test.js with node's test runner,
// one file at a time (each starts a browser and a wick serve). Skips with a message when
// Chromium or playwright-core is missing, except under CI, where that fails.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { unavailable } = require('./lib/browser');
const { buildWick } = require('../lib/wick');

function main() {
	let reason;
	try {
		reason = unavailable();
	} catch (err) {
		console.error(err.message);
		return 1;
	}
	if (reason) {
		console.log(`compat/browser: SKIPPED: ${reason}`);
		return 0;
	}
	const env = { ...process.env };
	let buildDir = null;
	if (!env.WICK_BIN) {
		buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-browser-bin-'));
		try {
			env.WICK_BIN = buildWick(buildDir);
		} catch (err) {
			console.error(err.message);
			fs.rmSync(buildDir, { recursive: true, force: true });
			return 1;
		}
	}
	const testDir = path.join(__dirname, 'test');
	const files = fs.readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(testDir, f));
	const args = ['--test', '--test-concurrency=1', ...process.argv.slice(2), ...files];
	const res = spawnSync(process.execPath, args, { cwd: __dirname, env, stdio: 'inherit' });
	if (buildDir) {
		fs.rmSync(buildDir, { recursive: true, force: true });
	}
	if (res.error) {
		console.error(`compat/browser: could not run node --test: ${res.error.message}`);
		return 1;
	}
	return res.status === null ? 1 : res.status;
}

process.exitCode = main();
