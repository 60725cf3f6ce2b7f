'use strict';
// Assertion helpers shared by the compat tests.

const assert = require('node:assert/strict');

const TOKEN_RE = /^[0-9a-f]{40}$/;

/**
 * Awaits a particle-api-js call that must fail and returns its error after checking that
 * the server answered with an HTTP status and a JSON body (the client parses every error body).
 */
async function apiFailure(promise, what) {
	let result;
	try {
		result = await promise;
	} catch (err) {
		assert.ok(err.statusCode, `${what}: expected an HTTP error, got a network/client error: ${err.message}`);
		assert.ok(!(err.body instanceof Error), `${what}: HTTP ${err.statusCode} error body is not valid JSON (${err.body && err.body.message})`);
		return err;
	}
	assert.fail(`${what}: expected the call to fail, it resolved with ${result && result.statusCode} ${JSON.stringify(result && result.body)}`);
}

/** Describes a particle-api-js error for assertion messages. */
function showErr(err) {
	return `HTTP ${err.statusCode} ${JSON.stringify(err.body)}`;
}

/** Asserts that a value is a Wick/Particle access or refresh token (40 lower-case hex). */
function assertToken(value, what) {
	assert.match(String(value), TOKEN_RE, `${what}: expected 40 lower-case hex characters, got ${JSON.stringify(value)}`);
}

module.exports = { apiFailure, showErr, assertToken, TOKEN_RE };
