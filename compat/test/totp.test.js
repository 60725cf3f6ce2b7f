'use strict';
// The suite's own TOTP helper, checked against the RFC 4226 and RFC 6238 test vectors
// (a wrong helper would make every MFA test meaningless).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');

const { base32Decode, hotp, totp, freshTotp, timeStep } = require('../lib/totp');

// base32 of the ASCII key "12345678901234567890" used by both RFCs.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('totp helper', () => {
	it('decodes base32 (padding, case and spaces ignored)', () => {
		const cases = [
			['', ''],
			['MY======', 'f'],
			['MZXW6===', 'foo'],
			['mzxw 6ytb oi', 'foobar'],
			[RFC_SECRET, '12345678901234567890'],
		];
		for (const [input, want] of cases) {
			assert.equal(base32Decode(input).toString('latin1'), want, input);
		}
		assert.throws(() => base32Decode('A1'), /invalid base32/);
	});

	it('matches the RFC 4226 HOTP vectors', () => {
		const want = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
		want.forEach((code, counter) => {
			assert.equal(hotp(Buffer.from('12345678901234567890'), counter), code, `counter ${counter}`);
		});
	});

	it('matches the RFC 6238 SHA-1 TOTP vectors', () => {
		const cases = [
			[59, '94287082'],
			[1111111109, '07081804'],
			[1111111111, '14050471'],
			[1234567890, '89005924'],
			[2000000000, '69279037'],
			[20000000000, '65353130'],
		];
		for (const [seconds, code] of cases) {
			assert.equal(totp(RFC_SECRET, seconds * 1000, { digits: 8 }), code, `T=${seconds}`);
			assert.equal(totp(RFC_SECRET, seconds * 1000), code.slice(2), `T=${seconds} (6 digits)`);
		}
	});

	it('freshTotp skips used steps and the last moments of a step', async () => {
		const key = base32Decode(RFC_SECRET);
		let t = 1111111109 * 1000; // 29 s into step 37037036, 1 s before it ends
		const slept = [];
		const clock = { now: () => t, sleep: async (ms) => { slept.push(ms); t += ms; } };
		const used = new Set();
		// 1 s before the step ends: wait for the next step.
		const first = await freshTotp(RFC_SECRET, used, clock);
		assert.deepEqual(slept, [1050]);
		assert.equal(first, hotp(key, 37037037));
		// Same step again: already used, so wait for the following one.
		const second = await freshTotp(RFC_SECRET, used, clock);
		assert.equal(second, hotp(key, 37037038));
		assert.deepEqual([...used], [37037037, 37037038]);
		assert.equal(timeStep(t), 37037038);
		// With a 15 s margin, 20 s before the end of a step is fine, 10 s is not.
		t = 37037040 * 30000 + 10000;
		assert.equal(await freshTotp(RFC_SECRET, used, { ...clock, minMsLeft: 15000 }), hotp(key, 37037040));
		t = 37037041 * 30000 + 20000;
		slept.length = 0;
		assert.equal(await freshTotp(RFC_SECRET, used, { ...clock, minMsLeft: 15000 }), hotp(key, 37037042));
		assert.deepEqual(slept, [10050]);
	});
});
