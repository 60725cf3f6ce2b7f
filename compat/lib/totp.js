'use strict';
// TOTP (RFC 6238) codes computed from a base32 secret, so the suite can answer
// MFA challenges the way an authenticator app would.

const crypto = require('node:crypto');

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored). */
function base32Decode(text) {
	const clean = String(text).toUpperCase().replace(/[\s=]/g, '');
	let bits = 0;
	let value = 0;
	const out = [];
	for (const ch of clean) {
		const idx = BASE32_ALPHABET.indexOf(ch);
		if (idx < 0) {
			throw new Error(`totp: invalid base32 character ${JSON.stringify(ch)}`);
		}
		value = (value << 5) | idx;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out.push((value >>> bits) & 0xff);
		}
	}
	return Buffer.from(out);
}

/** Returns the HOTP code (RFC 4226, HMAC-SHA1) for a key and counter. */
function hotp(key, counter, digits = 6) {
	const msg = Buffer.alloc(8);
	msg.writeBigUInt64BE(BigInt(counter));
	const mac = crypto.createHmac('sha1', key).update(msg).digest();
	const offset = mac[mac.length - 1] & 0x0f;
	const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
	return String(bin % 10 ** digits).padStart(digits, '0');
}

/** Returns the time step number for a time in milliseconds (30 s steps). */
function timeStep(nowMs = Date.now(), stepSeconds = 30) {
	return Math.floor(nowMs / 1000 / stepSeconds);
}

/** Returns the 6-digit TOTP code for a base32 secret at a time in milliseconds. */
function totp(secretBase32, nowMs = Date.now(), { digits = 6, stepSeconds = 30 } = {}) {
	return hotp(base32Decode(secretBase32), timeStep(nowMs, stepSeconds), digits);
}

/**
 * Returns a TOTP code from a time step not listed in usedSteps, waiting for the next
 * step when needed (servers may refuse a code that was already accepted once). It also
 * avoids the last opts.minMsLeft (default 5 s) of a step so the code is still current
 * when it reaches the server. The chosen step is added to usedSteps.
 * opts.now and opts.sleep can be injected for tests.
 */
async function freshTotp(secretBase32, usedSteps = new Set(), opts = {}) {
	const now = opts.now || Date.now;
	const sleep = opts.sleep || ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
	const minMsLeft = opts.minMsLeft === undefined ? 1500 : opts.minMsLeft;
	for (;;) {
		const t = now();
		const step = timeStep(t);
		const msLeft = (step + 1) * 30000 - t;
		if (!usedSteps.has(step) && msLeft > minMsLeft) {
			usedSteps.add(step);
			return totp(secretBase32, t);
		}
		await sleep(msLeft + 50);
	}
}

module.exports = { base32Decode, hotp, totp, timeStep, freshTotp };
