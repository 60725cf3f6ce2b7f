'use strict';
// `npm test`: builds wick once (unless WICK_BIN is set), then runs every test/*.test.js
// with node's test runner against that binary.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { buildWick } = require('./lib/wick');

function main() {
	const env = { ...process.env };
	let buildDir = null;
	if (!env.WICK_BIN) {
		buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-compat-bin-'));
		const started = Date.now();
		console.log('compat: building ./cmd/wick ...');
		try {
			env.WICK_BIN = buildWick(buildDir);
		} catch (err) {
			console.error(err.message);
			fs.rmSync(buildDir, { recursive: true, force: true });
			return 1;
		}
		console.log(`compat: built ${env.WICK_BIN} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
	}
	const testDir = path.join(__dirname, 'test');
	const files = fs.readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join('test', f));
	// Each file starts its own server, so two files may run side by side.
	const args = ['--test', '--test-concurrency=2', ...process.argv.slice(2), ...files];
	const res = spawnSync(process.execPath, args, { cwd: __dirname, env, stdio: 'inherit' });
	if (buildDir) {
		fs.rmSync(buildDir, { recursive: true, force: true });
	}
	if (res.error) {
		console.error(`compat: could not run node --test: ${res.error.message}`);
		return 1;
	}
	return res.status === null ? 1 : res.status;
}

process.exitCode = main();
