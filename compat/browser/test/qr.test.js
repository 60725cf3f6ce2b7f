'use strict';
// The console's QR encoder (internal/console/assets/js/qr.js), decoded by an independent
// decoder (jsQR) for texts of every length from 1 to 700 bytes (versions 1 to 22), UTF-8
// included. Pure Node: no browser needed, but it lives beside the console's other tests.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const jsQR = require('jsqr');

const QR = pathToFileURL(path.join(__dirname, '..', '..', '..', 'internal', 'console', 'assets', 'js', 'qr.js')).href;

/** Renders a module matrix as RGBA pixels with a 4-module quiet zone. */
function render(m, scale = 2) {
	const n = m.length + 8;
	const w = n * scale;
	const px = new Uint8ClampedArray(w * w * 4).fill(255);
	m.forEach((row, y) => row.forEach((dark, x) => {
		if (!dark) return;
		for (let dy = 0; dy < scale; dy++) {
			for (let dx = 0; dx < scale; dx++) {
				const p = (((y + 4) * scale + dy) * w + (x + 4) * scale + dx) * 4;
				px[p] = 0;
				px[p + 1] = 0;
				px[p + 2] = 0;
			}
		}
	}));
	return { px, w };
}

describe('console QR encoder', () => {
	it('encodes what a decoder reads back, at every size', async () => {
		const { encodeQR } = await import(QR);
		const texts = ['otpauth://totp/Wick:ada%40example.com?algorithm=SHA1&digits=6&issuer=Wick&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'é€😀 unicode'];
		for (let n = 1; n <= 700; n += 19) {
			texts.push(Array.from({ length: n }, (_, i) => String.fromCharCode(33 + ((i * 7 + n) % 90))).join(''));
		}
		const sizes = new Set();
		for (const t of texts) {
			const m = encodeQR(t);
			sizes.add(m.length);
			assert.equal((m.length - 17) % 4, 0, `size ${m.length}`);
			const { px, w } = render(m);
			const got = jsQR(px, w, w);
			assert.ok(got, `no QR code found for a ${t.length}-character text (${m.length} modules)`);
			assert.equal(got.data, t);
		}
		assert.ok(sizes.size >= 12, `only ${sizes.size} versions exercised`);
	});

	it('refuses text beyond version 40', async () => {
		const { encodeQR } = await import(QR);
		assert.throws(() => encodeQR('x'.repeat(3000)), /too long/);
	});
});
