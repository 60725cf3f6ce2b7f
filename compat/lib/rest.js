'use strict';
// Plain fetch() helpers for set-up calls and for checking what the clients did,
// independent of both Particle clients.

const REQUEST_TIMEOUT_MS = 15 * 1000;

/**
 * Sends one request to baseUrl+path and returns {status, headers, body, text}.
 * opts: token (Bearer), json (object body), form (object body, urlencoded), basic ([user, pass]).
 */
async function request(baseUrl, method, path, { token, json, form, basic } = {}) {
	const headers = {};
	let body;
	if (token) {
		headers.Authorization = `Bearer ${token}`;
	}
	if (basic) {
		headers.Authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}`;
	}
	if (json !== undefined) {
		headers['Content-Type'] = 'application/json';
		body = JSON.stringify(json);
	} else if (form !== undefined) {
		headers['Content-Type'] = 'application/x-www-form-urlencoded';
		body = new URLSearchParams(form).toString();
	}
	const res = await fetch(baseUrl + path, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
	const text = await res.text();
	let parsed = null;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		parsed = undefined;
	}
	return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Describes a response for assertion messages. */
function describe(res) {
	return `HTTP ${res.status} ${res.text}`;
}

/** Logs a user in with the password grant (client particle/particle) and returns the token response body. */
async function passwordToken(baseUrl, username, password, extra = {}) {
	const res = await request(baseUrl, 'POST', '/oauth/token', {
		form: { grant_type: 'password', username, password, client_id: 'particle', client_secret: 'particle', ...extra },
	});
	if (res.status !== 200 || !res.body || !res.body.access_token) {
		throw new Error(`compat: password login for ${username} failed: ${describe(res)}`);
	}
	return res.body;
}

/** Creates a product for the token's user via POST /v1/user/products and returns the product object. */
async function createProduct(baseUrl, token, name) {
	const res = await request(baseUrl, 'POST', '/v1/user/products', {
		token,
		json: { product: { name, description: 'compat suite', platform_id: 6 } },
	});
	if (res.status < 200 || res.status > 201 || !res.body || !res.body.product) {
		throw new Error(`compat: POST /v1/user/products failed: ${describe(res)}`);
	}
	return res.body.product;
}

/** Enrols the user in MFA (GET then POST /v1/user/mfa-enable) and returns the base32 secret. */
async function enrolMfa(baseUrl, token, otpFor) {
	const start = await request(baseUrl, 'GET', '/v1/user/mfa-enable', { token });
	if (start.status !== 200 || !start.body || !start.body.secret || !start.body.mfa_token) {
		throw new Error(`compat: GET /v1/user/mfa-enable failed: ${describe(start)}`);
	}
	const otp = await otpFor(start.body.secret);
	const confirm = await request(baseUrl, 'POST', '/v1/user/mfa-enable', {
		token,
		json: { mfa_token: start.body.mfa_token, otp },
	});
	if (confirm.status !== 200) {
		throw new Error(`compat: POST /v1/user/mfa-enable failed: ${describe(confirm)}`);
	}
	return start.body.secret;
}

module.exports = { request, describe, passwordToken, createProduct, enrolMfa };
