'use strict';
// Particle module binaries for tests that upload firmware (docs/ota.md, Binaries): a 24-byte
// prefix at offset 0, the code, the product ID and version, the suffix (reserved half-word,
// SHA-256 of everything before it, suffix size) and the big-endian CRC-32 of all of it.

const crypto = require('node:crypto');

const CRC = new Uint32Array(256).map((_, n) => {
	let c = n;
	for (let k = 0; k < 8; k++) {
		c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	}
	return c >>> 0;
});

/** CRC-32 (IEEE) of bytes. */
function crc32(bytes) {
	let c = 0xffffffff;
	for (const b of bytes) {
		c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
	}
	return (c ^ 0xffffffff) >>> 0;
}

/**
 * Returns a user-part binary for platform whose product data names productId and version,
 * with codeBytes bytes of filler code. Module function 5 (user part), index 1, no dependencies.
 */
function userPart({ platform, productId, version, codeBytes = 2048 }) {
	const suffixSize = 40; // product ID and version (4), reserved (2), SHA-256 (32), size (2)
	const size = 24 + codeBytes + suffixSize + 4;
	const b = Buffer.alloc(size);
	const start = 0x080a0000;
	b.writeUInt32LE(start, 0);
	b.writeUInt32LE(start + size - 4, 4); // the CRC's address: the end of the checked bytes
	b.writeUInt16LE(1, 10); // module version
	b.writeUInt16LE(platform, 12);
	b[14] = 5; // module function: user part
	b[15] = 1; // index
	let o = 24;
	crypto.randomFillSync(b, o, codeBytes);
	o += codeBytes;
	b.writeUInt16LE(productId, o);
	b.writeUInt16LE(version, o + 2);
	o += 4 + 2; // product data, reserved half-word
	crypto.createHash('sha256').update(b.subarray(0, o)).digest().copy(b, o);
	o += 32;
	b.writeUInt16LE(suffixSize, o);
	o += 2;
	b.writeUInt32BE(crc32(b.subarray(0, o)), o);
	return b;
}

module.exports = { crc32, userPart };
