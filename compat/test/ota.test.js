'use strict';
// Firmware over the air (docs/ota.md) with Particle's own clients against a real `wick serve`
// and simulated devices (`wick sim`, which takes OTA updates): `particle cloud flash DEVICE app.bin`
// (the cloud path of `particle flash DEVICE app.bin`: both end in the same CloudCommand.flashDevice;
// the top-level `flash` command of the pinned CLI needs the optional `execa`, which is not installed),
// and particle-api-js's product firmware calls (upload, list, get, update, download, release),
// the release then rolling out to a product device that reports the new version.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { ParticleCLI, show } = require('../lib/cli');
const { startSim, waitForDevices, waitUntil } = require('../lib/sim');

const PROFILE = 'wick';
const ERIN = 'erin@example.com';
const PASSWORD = 'hunter2 but longer';
const PHOTON = 6; // the platform `wick sim` reports

let server;
let cli;
let token;
let product;
let api;
const sims = [];
let device; // erin's device
let productDevice; // a device of erin's product
let tmp;

const CRC_TABLE = (() => {
	const t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) {
			c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		}
		t[n] = c >>> 0;
	}
	return t;
})();

/** CRC-32 (IEEE) of buf. */
function crc32(buf) {
	let c = 0xffffffff;
	for (const b of buf) {
		c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
	}
	return (c ^ 0xffffffff) >>> 0;
}

/**
 * A Particle module binary (docs/ota.md, Binaries): prefix, code, optional product ID and
 * version, suffix with the SHA-256 and its size, CRC-32. A user part needing no system version.
 */
function moduleBinary({ platform = PHOTON, productId, productVersion, codeBytes = 3000 } = {}) {
	const product = productId !== undefined;
	const suffixSize = product ? 40 : 36;
	const size = 24 + codeBytes + suffixSize + 4;
	const b = Buffer.alloc(size);
	const start = 0x080a0000;
	b.writeUInt32LE(start, 0);
	b.writeUInt32LE(start + size - 4, 4); // where the CRC starts
	b.writeUInt16LE(1, 10); // module version
	b.writeUInt16LE(platform, 12);
	b[14] = 5; // user part
	b[15] = 1; // index
	let o = 24;
	for (let i = 0; i < codeBytes; i++) {
		b[o++] = (i * 31) & 0xff;
	}
	if (product) {
		b.writeUInt16LE(productId, o);
		b.writeUInt16LE(productVersion, o + 2);
		o += 4;
	}
	o += 2; // reserved
	crypto.createHash('sha256').update(b.subarray(0, o)).digest().copy(b, o);
	o += 32;
	b.writeUInt16LE(suffixSize, o);
	o += 2;
	b.writeUInt32BE(crc32(b.subarray(0, o)), o);
	return b;
}

/** Writes buf to a .bin file in the test's temporary directory. */
function binFile(name, buf) {
	const file = path.join(tmp, name);
	fs.writeFileSync(file, buf);
	return file;
}

before(async () => {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-ota-'));
	server = await startWick({ signup: false });
	server.createUser(ERIN, PASSWORD);
	token = (await rest.passwordToken(server.url, ERIN, PASSWORD)).access_token;
	product = await rest.createProduct(server.url, token, 'Compat OTA');
	api = new Particle({ baseUrl: server.url });
	const sim = startSim(server, { token, count: 1, idPrefix: 'e7' });
	sims.push(sim);
	const code = await rest.request(server.url, 'POST', `/v1/products/${product.id}/device_claims`, { token, json: {} });
	assert.equal(code.status, 200, rest.describe(code));
	const psim = startSim(server, { token, count: 1, idPrefix: 'e8', claimCode: code.body.claim_code });
	sims.push(psim);
	cli = new ParticleCLI();
	await cli.useServer(PROFILE, server.url);
	const login = await cli.run(['login', '--username', ERIN, '--password', PASSWORD]);
	assert.equal(login.code, 0, show(login));
	await waitForDevices(server, token, sim.ids, { owner: ERIN, sim });
	await waitForDevices(server, token, psim.ids, { product: product.id, sim: psim });
	device = sim.ids[0];
	productDevice = psim.ids[0];
});

after(async () => {
	await Promise.all(sims.map((s) => s.stop()));
	if (cli) {
		cli.cleanup();
	}
	if (server) {
		await server.stop();
	}
	if (tmp) {
		fs.rmSync(tmp, { recursive: true, force: true });
	}
});

describe('particle cloud flash', () => {
	it('flashes a simulated device with a binary', async () => {
		const res = await cli.run(['cloud', 'flash', device, binFile('app.bin', moduleBinary())]);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, /Flash success!/, show(res));
	});

	it('refuses a binary built for another platform, saying why', async () => {
		// The first update may still be finishing: retry while the device is busy.
		let res;
		await waitUntil(async () => {
			res = await cli.run(['cloud', 'flash', device, binFile('argon.bin', moduleBinary({ platform: 12 }))]);
			return !/in progress/.test(res.stdout + res.stderr);
		}, () => `a flash not refused as in progress: ${show(res)}`);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.stdout + res.stderr, /platform 12/, show(res));
	});

	it('refuses a binary with a bad CRC', async () => {
		const bin = moduleBinary();
		bin[100] ^= 0xff;
		const res = await cli.run(['cloud', 'flash', device, binFile('bad.bin', bin)]);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.stdout + res.stderr, /CRC/, show(res));
	});
});

describe('particle-api-js product firmware', () => {
	const v2 = () => moduleBinary({ productId: product.id, productVersion: 2 });

	it('uploads a version whose embedded product and version match', async () => {
		const res = await api.uploadProductFirmware({ product: product.id, file: v2(), version: 2, title: 'Two',
			description: 'second', auth: token });
		assert.equal(res.statusCode, 201);
		assert.equal(res.body.version, 2);
		assert.equal(res.body.title, 'Two');
		assert.equal(res.body.current, false);
	});

	it('refuses a binary of another version', async () => {
		await assert.rejects(api.uploadProductFirmware({ product: product.id, file: v2(), version: 3, title: 'Three', auth: token }),
			(err) => err.statusCode === 400 && /version 2/.test(err.body.error));
	});

	it('lists, gets, updates and downloads', async () => {
		const list = await api.listProductFirmware({ product: product.id, auth: token });
		assert.deepEqual(list.body.map((f) => f.version), [2]);
		const got = await api.getProductFirmware({ product: product.id, version: 2, auth: token });
		assert.equal(got.body.size, v2().length);
		const upd = await api.updateProductFirmware({ product: product.id, version: 2, title: 'Two (final)', auth: token });
		assert.equal(upd.body.title, 'Two (final)');
		const bin = await api.downloadProductFirmware({ product: product.id, version: 2, auth: token });
		assert.ok(Buffer.from(bin).equals(v2()), 'downloaded binary differs from the upload');
	});

	it('releases it, and the product device updates to version 2', async () => {
		const res = await api.releaseProductFirmware({ product: product.id, version: 2, product_default: true, auth: token });
		assert.equal(res.body.ok, true);
		assert.equal(res.body.product_default, true);
		let last;
		await waitUntil(async () => {
			last = await rest.request(server.url, 'GET', `/v1/products/${product.id}/devices/${productDevice}`, { token });
			return last.status === 200 && last.body.firmware_version === 2 && last.body.online;
		}, () => `product device to report version 2 (last: ${last && rest.describe(last)})\n${sims[1].logs()}`, 30000);
		assert.equal(last.body.targeted_firmware_release_version, 2);
	});
});
