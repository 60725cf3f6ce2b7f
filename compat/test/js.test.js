'use strict';
// particle-api-js 12 against a real `wick serve`: accounts, MFA, OAuth clients,
// products, customers and token revocation (issue 2, "Proof").

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { freshTotp } = require('../lib/totp');
const { apiFailure, showErr, assertToken } = require('../lib/assertions');

const PASSWORD = 'correct horse battery staple';

let server;
let baseUrl;

/** A particle-api-js instance pointed at Wick (default client particle-api/particle-api unless given). */
function client(opts = {}) {
	return new Particle({ baseUrl, ...opts });
}

/** Signs a user up through the REST API and returns a fresh access token for them. */
async function signupAndLogin(email) {
	const res = await rest.request(baseUrl, 'POST', '/v1/users', { json: { username: email, password: PASSWORD } });
	assert.equal(res.status, 200, `signup ${email}: ${rest.describe(res)}`);
	return (await rest.passwordToken(baseUrl, email, PASSWORD)).access_token;
}

/** Asserts that token is refused by GET /v1/user with 401 invalid_token. */
async function assertRefused(token, what) {
	const err = await apiFailure(client().getUserInfo({ auth: token }), what);
	assert.equal(err.statusCode, 401, `${what}: ${showErr(err)}`);
	assert.equal(err.body.error, 'invalid_token', `${what}: ${showErr(err)}`);
}

/** Asserts that token is accepted by GET /v1/user for username. */
async function assertAccepted(token, username, what) {
	const res = await client().getUserInfo({ auth: token });
	assert.equal(res.statusCode, 200, what);
	assert.equal(res.body.username, username, `${what}: ${JSON.stringify(res.body)}`);
}

before(async () => {
	server = await startWick({ signup: true });
	baseUrl = server.url;
});

after(async () => {
	if (server) {
		await server.stop();
	}
});

describe('users: createUser, login, getUserInfo', () => {
	const email = 'ada@example.com';

	it('createUser signs a new user up', async () => {
		const res = await client().createUser({ username: email, password: PASSWORD });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
	});

	it('createUser refuses an existing username', async () => {
		const err = await apiFailure(client().createUser({ username: email, password: PASSWORD }), 'duplicate createUser');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.ok, false, showErr(err));
	});

	it('createUser lower-cases the e-mail address', async () => {
		const res = await client().createUser({ username: 'Mixed.Case@Example.COM', password: PASSWORD });
		assert.equal(res.statusCode, 200);
		const login = await client().login({ username: 'mixed.case@example.com', password: PASSWORD });
		const info = await client().getUserInfo({ auth: login.body.access_token });
		assert.equal(info.body.username, 'mixed.case@example.com');
	});

	it('login returns a 90-day bearer token', async () => {
		const res = await client().login({ username: email, password: PASSWORD });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.token_type, 'bearer', JSON.stringify(res.body));
		assertToken(res.body.access_token, 'access_token');
		assert.equal(res.body.expires_in, 7776000, JSON.stringify(res.body));
		if (res.body.refresh_token !== undefined) {
			assertToken(res.body.refresh_token, 'refresh_token');
		}
	});

	it('login with tokenDuration 0 returns a token that never expires and no refresh token', async () => {
		const res = await client().login({ username: email, password: PASSWORD, tokenDuration: 0 });
		assert.equal(res.statusCode, 200);
		assertToken(res.body.access_token, 'access_token');
		assert.equal(res.body.expires_in, 0, JSON.stringify(res.body));
		assert.equal(res.body.refresh_token, undefined, JSON.stringify(res.body));
		await assertAccepted(res.body.access_token, email, 'non-expiring token');
	});

	it('login with a wrong password fails with invalid_grant', async () => {
		const err = await apiFailure(client().login({ username: email, password: 'wrong password' }), 'bad login');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_grant', showErr(err));
		assert.equal(err.shortErrorDescription, 'User credentials are invalid', showErr(err));
	});

	it('getUserInfo returns the user object', async () => {
		const login = await client().login({ username: email, password: PASSWORD });
		const res = await client().getUserInfo({ auth: login.body.access_token });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.username, email);
		assert.deepEqual(res.body.mfa, { enabled: false }, JSON.stringify(res.body));
		assert.ok(Array.isArray(res.body.subscription_ids), JSON.stringify(res.body));
		assert.equal(typeof res.body.account_info, 'object', JSON.stringify(res.body));
	});

	it('getUserInfo without a token fails with invalid_request; with an unknown token with invalid_token', async () => {
		const none = await apiFailure(client().getUserInfo({}), 'getUserInfo without token');
		assert.equal(none.statusCode, 400, showErr(none));
		assert.equal(none.body.error, 'invalid_request', showErr(none));
		await assertRefused('0123456789abcdef0123456789abcdef01234567', 'unknown token');
	});
});

describe('MFA: enableMfa, confirmMfa, login -> mfa_required -> sendOtp', () => {
	const email = 'grace@example.com';
	const usedSteps = new Set();
	let token;
	let secret;
	let mfaToken;

	before(async () => {
		token = await signupAndLogin(email);
	});

	it('enableMfa returns a TOTP secret, an otpauth URL and an mfa_token', async () => {
		const res = await client().enableMfa({ auth: token });
		assert.equal(res.statusCode, 200);
		assert.match(res.body.secret, /^[A-Z2-7]+=*$/, JSON.stringify(res.body));
		assert.match(res.body.qr_url, /^otpauth:\/\/totp\//, JSON.stringify(res.body));
		assert.equal(typeof res.body.mfa_token, 'string', JSON.stringify(res.body));
		assert.ok(res.body.mfa_token.length > 0);
		secret = res.body.secret;
		mfaToken = res.body.mfa_token;
	});

	it('confirmMfa refuses a wrong code', async () => {
		const err = await apiFailure(client().confirmMfa({ mfaToken, otp: '000000', auth: token }), 'confirmMfa wrong otp');
		assert.equal(err.statusCode, 400, showErr(err));
		const info = await client().getUserInfo({ auth: token });
		assert.equal(info.body.mfa.enabled, false, 'a failed confirmation must not enable MFA');
	});

	it('confirmMfa with a real TOTP code enrols the user', async () => {
		const otp = await freshTotp(secret, usedSteps);
		const res = await client().confirmMfa({ mfaToken, otp, auth: token });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.enrolled, true, JSON.stringify(res.body));
		const info = await client().getUserInfo({ auth: token });
		assert.deepEqual(info.body.mfa, { enabled: true }, JSON.stringify(info.body));
	});

	it('login now answers 403 mfa_required with an mfa_token', async () => {
		const err = await apiFailure(client().login({ username: email, password: PASSWORD }), 'login with MFA');
		assert.equal(err.statusCode, 403, showErr(err));
		assert.equal(err.body.error, 'mfa_required', showErr(err));
		assert.equal(typeof err.body.mfa_token, 'string', showErr(err));
		assert.ok(err.body.mfa_token.length > 0, showErr(err));
	});

	it('sendOtp refuses a wrong code', async () => {
		const challenge = await apiFailure(client().login({ username: email, password: PASSWORD }), 'login with MFA');
		const err = await apiFailure(client().sendOtp({ mfaToken: challenge.body.mfa_token, otp: '000000' }), 'sendOtp wrong');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_grant', showErr(err));
	});

	it('sendOtp with a real TOTP code returns a working token', async () => {
		const challenge = await apiFailure(client().login({ username: email, password: PASSWORD, tokenDuration: 3600 }), 'login with MFA');
		const otp = await freshTotp(secret, usedSteps);
		const res = await client().sendOtp({ mfaToken: challenge.body.mfa_token, otp });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.token_type, 'bearer', JSON.stringify(res.body));
		assertToken(res.body.access_token, 'access_token');
		assert.equal(res.body.expires_in, 3600, `the OTP step keeps the lifetime asked for at login: ${JSON.stringify(res.body)}`);
		await assertAccepted(res.body.access_token, email, 'token from sendOtp');
	});
});

describe('user OAuth clients: create, list, update, loginAsClientOwner, delete', () => {
	const email = 'linus@example.com';
	let token;
	let created;

	before(async () => {
		token = await signupAndLogin(email);
	});

	it('createOAuthClient (installed) returns the client with its secret', async () => {
		const res = await client().createOAuthClient({ name: 'Compat Server', type: 'installed', auth: token });
		assert.ok(res.statusCode === 200 || res.statusCode === 201, `status ${res.statusCode}`);
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
		const c = res.body.client;
		assert.equal(c.name, 'Compat Server');
		assert.equal(c.type, 'installed');
		assert.equal(typeof c.id, 'string');
		assert.ok(c.id.length > 0);
		assertToken(c.secret, 'client secret');
		created = c;
	});

	it('createOAuthClient (web) requires a redirect_uri', async () => {
		const err = await apiFailure(client().createOAuthClient({ name: 'No Redirect', type: 'web', auth: token }), 'web client without redirect_uri');
		assert.equal(err.statusCode, 400, showErr(err));
		const res = await client().createOAuthClient({ name: 'Web App', type: 'web', redirect_uri: 'https://app.example.com/cb', auth: token });
		assert.equal(res.body.client.type, 'web');
		assert.equal(res.body.client.redirect_uri, 'https://app.example.com/cb');
	});

	it('listOAuthClients lists the clients without secrets', async () => {
		const res = await client().listOAuthClients({ auth: token });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
		const mine = res.body.clients.find((c) => c.id === created.id);
		assert.ok(mine, `client ${created.id} missing from ${JSON.stringify(res.body)}`);
		assert.equal(mine.name, 'Compat Server');
		assert.equal(res.body.clients.length, 2, JSON.stringify(res.body));
		for (const c of res.body.clients) {
			assert.equal(c.secret, undefined, `secret leaked in list: ${JSON.stringify(c)}`);
		}
	});

	it('updateOAuthClient renames the client and does not echo the secret', async () => {
		const res = await client().updateOAuthClient({ clientId: created.id, name: 'Compat Renamed', auth: token });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.client.id, created.id);
		assert.equal(res.body.client.name, 'Compat Renamed');
		assert.equal(res.body.client.secret, undefined, JSON.stringify(res.body));
		const list = await client().listOAuthClients({ auth: token });
		assert.equal(list.body.clients.find((c) => c.id === created.id).name, 'Compat Renamed');
	});

	it('loginAsClientOwner with the client credentials returns a token for the owner', async () => {
		const res = await client({ clientId: created.id, clientSecret: created.secret }).loginAsClientOwner();
		assert.equal(res.statusCode, 200);
		assertToken(res.body.access_token, 'access_token');
		await assertAccepted(res.body.access_token, email, 'client owner token');
	});

	it('loginAsClientOwner with a wrong secret fails with invalid_client', async () => {
		const err = await apiFailure(client({ clientId: created.id, clientSecret: 'f'.repeat(40) }).loginAsClientOwner(), 'wrong client secret');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_client', showErr(err));
	});

	it('another user cannot see or delete the client', async () => {
		const other = await signupAndLogin('mallory@example.com');
		const list = await client().listOAuthClients({ auth: other });
		assert.equal(list.body.clients.length, 0, JSON.stringify(list.body));
		const err = await apiFailure(client().deleteOAuthClient({ clientId: created.id, auth: other }), 'foreign deleteOAuthClient');
		assert.ok([403, 404].includes(err.statusCode), showErr(err));
	});

	it('deleteOAuthClient answers 204 and the client stops working', async () => {
		const res = await client().deleteOAuthClient({ clientId: created.id, auth: token });
		assert.equal(res.statusCode, 204);
		const list = await client().listOAuthClients({ auth: token });
		assert.equal(list.body.clients.find((c) => c.id === created.id), undefined, JSON.stringify(list.body));
		const err = await apiFailure(client({ clientId: created.id, clientSecret: created.secret }).loginAsClientOwner(), 'deleted client');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_client', showErr(err));
	});
});

describe('products, product OAuth clients and customers', () => {
	const owner = 'margaret@example.com';
	const customerEmail = 'customer.one@example.com';
	let token;
	let product;
	let otherProduct;
	let fullClient;
	let createOnlyClient;

	before(async () => {
		token = await signupAndLogin(owner);
		product = await rest.createProduct(baseUrl, token, 'Compat Widget');
		const otherToken = await signupAndLogin('katherine@example.com');
		otherProduct = await rest.createProduct(baseUrl, otherToken, 'Other Widget');
	});

	it('listProducts lists the user\'s products only', async () => {
		const res = await client().listProducts({ auth: token });
		assert.equal(res.statusCode, 200);
		const ids = res.body.products.map((p) => p.id);
		assert.deepEqual(ids, [product.id], JSON.stringify(res.body));
		assert.equal(res.body.products[0].name, 'Compat Widget');
	});

	it('getProduct by id and by slug', async () => {
		assert.equal(typeof product.id, 'number', JSON.stringify(product));
		const byId = await client().getProduct({ product: product.id, auth: token });
		assert.equal(byId.statusCode, 200);
		assert.equal(byId.body.product.id, product.id, JSON.stringify(byId.body));
		assert.equal(byId.body.product.name, 'Compat Widget');
		assert.equal(typeof byId.body.product.slug, 'string');
		const bySlug = await client().getProduct({ product: byId.body.product.slug, auth: token });
		assert.equal(bySlug.body.product.id, product.id, JSON.stringify(bySlug.body));
	});

	it('getProduct of another user\'s product is refused', async () => {
		const err = await apiFailure(client().getProduct({ product: otherProduct.id, auth: token }), 'foreign getProduct');
		assert.ok([403, 404].includes(err.statusCode), showErr(err));
	});

	it('createOAuthClient for a product returns the client with its secret', async () => {
		const res = await client().createOAuthClient({ product: product.id, name: 'Mobile App', type: 'installed', auth: token });
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
		assertToken(res.body.client.secret, 'product client secret');
		fullClient = res.body.client;
		const scoped = await client().createOAuthClient({ product: product.id, name: 'Signup Only', type: 'installed', scope: 'customers:create', auth: token });
		assertToken(scoped.body.client.secret, 'scoped client secret');
		assert.equal(scoped.body.client.scope, 'customers:create', JSON.stringify(scoped.body));
		createOnlyClient = scoped.body.client;
	});

	it('listOAuthClients for the product lists both clients without secrets; the user list stays separate', async () => {
		const res = await client().listOAuthClients({ product: product.id, auth: token });
		assert.equal(res.statusCode, 200);
		const ids = res.body.clients.map((c) => c.id).sort();
		assert.deepEqual(ids, [fullClient.id, createOnlyClient.id].sort(), JSON.stringify(res.body));
		for (const c of res.body.clients) {
			assert.equal(c.secret, undefined, `secret leaked in list: ${JSON.stringify(c)}`);
		}
		const userList = await client().listOAuthClients({ auth: token });
		assert.equal(userList.body.clients.length, 0, JSON.stringify(userList.body));
	});

	it('updateOAuthClient for a product renames the client', async () => {
		const res = await client().updateOAuthClient({ product: product.id, clientId: fullClient.id, name: 'Mobile App v2', auth: token });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.client.name, 'Mobile App v2', JSON.stringify(res.body));
		assert.equal(res.body.client.secret, undefined, JSON.stringify(res.body));
	});

	it('createCustomer with the product client returns a customer token (201)', async () => {
		const p = client({ clientId: fullClient.id, clientSecret: fullClient.secret });
		const res = await p.createCustomer({ email: customerEmail, password: PASSWORD, product: product.id });
		assert.equal(res.statusCode, 201);
		assert.equal(res.body.token_type, 'bearer', JSON.stringify(res.body));
		assertToken(res.body.access_token, 'customer access_token');
		assert.ok(res.body.expires_in > 0, JSON.stringify(res.body));
		const err = await apiFailure(client().getProduct({ product: product.id, auth: res.body.access_token }), 'customer token on getProduct');
		assert.equal(err.statusCode, 403, showErr(err));
	});

	it('createCustomer refuses an existing customer', async () => {
		const p = client({ clientId: fullClient.id, clientSecret: fullClient.secret });
		const err = await apiFailure(p.createCustomer({ email: customerEmail, password: PASSWORD, product: product.id }), 'duplicate customer');
		assert.equal(err.statusCode, 400, showErr(err));
	});

	it('createCustomer with a wrong client secret fails with invalid_client', async () => {
		const p = client({ clientId: fullClient.id, clientSecret: 'e'.repeat(40) });
		const err = await apiFailure(p.createCustomer({ email: 'nobody@example.com', password: PASSWORD, product: product.id }), 'wrong secret');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_client', showErr(err));
	});

	it('a customer logs in with the product client (password grant)', async () => {
		const res = await client({ clientId: fullClient.id, clientSecret: fullClient.secret }).login({ username: customerEmail, password: PASSWORD });
		assert.equal(res.statusCode, 200);
		assertToken(res.body.access_token, 'customer login token');
		const err = await apiFailure(client().listOAuthClients({ product: product.id, auth: res.body.access_token }), 'customer token on product clients');
		assert.equal(err.statusCode, 403, showErr(err));
	});

	it('a customers:create client creates customers but cannot mint client tokens', async () => {
		const p = client({ clientId: createOnlyClient.id, clientSecret: createOnlyClient.secret });
		const res = await p.createCustomer({ email: 'customer.two@example.com', password: PASSWORD, product: product.id });
		assert.equal(res.statusCode, 201);
		assertToken(res.body.access_token, 'customer access_token');
		const err = await apiFailure(p.loginAsClientOwner(), 'customers:create client credentials');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_scope', showErr(err));
	});

	it('loginAsClientOwner with a product client returns a product token limited to that product', async () => {
		const res = await client({ clientId: fullClient.id, clientSecret: fullClient.secret }).loginAsClientOwner();
		assert.equal(res.statusCode, 200);
		assertToken(res.body.access_token, 'product token');
		const own = await client().getProduct({ product: product.id, auth: res.body.access_token });
		assert.equal(own.body.product.id, product.id);
		const err = await apiFailure(client().getProduct({ product: otherProduct.id, auth: res.body.access_token }), 'product token on another product');
		assert.ok([403, 404].includes(err.statusCode), showErr(err));
	});

	it('deleteOAuthClient for a product answers 204 and the client stops working', async () => {
		const res = await client().deleteOAuthClient({ product: product.id, clientId: fullClient.id, auth: token });
		assert.equal(res.statusCode, 204);
		const list = await client().listOAuthClients({ product: product.id, auth: token });
		assert.deepEqual(list.body.clients.map((c) => c.id), [createOnlyClient.id], JSON.stringify(list.body));
		const p = client({ clientId: fullClient.id, clientSecret: fullClient.secret });
		const err = await apiFailure(p.createCustomer({ email: 'customer.three@example.com', password: PASSWORD, product: product.id }), 'deleted product client');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.error, 'invalid_client', showErr(err));
	});
});

describe('token revocation: deleteAccessToken, deleteCurrentAccessToken', () => {
	const email = 'barbara@example.com';

	before(async () => {
		await signupAndLogin(email);
	});

	it('deleteAccessToken (no credentials, as the clients send it) revokes only that token', async () => {
		const victim = (await client().login({ username: email, password: PASSWORD })).body.access_token;
		const keeper = (await client().login({ username: email, password: PASSWORD })).body.access_token;
		await assertAccepted(victim, email, 'token before revoke');
		const res = await client().deleteAccessToken({ token: victim });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
		await assertRefused(victim, 'revoked token');
		await assertAccepted(keeper, email, 'sibling token');
	});

	it('deleteAccessToken of an unknown token fails with 404', async () => {
		const err = await apiFailure(client().deleteAccessToken({ token: 'abcdef0123456789abcdef0123456789abcdef01' }), 'unknown token');
		assert.equal(err.statusCode, 404, showErr(err));
	});

	it('deleteCurrentAccessToken revokes the calling token only', async () => {
		const current = (await client().login({ username: email, password: PASSWORD })).body.access_token;
		const keeper = (await client().login({ username: email, password: PASSWORD })).body.access_token;
		const res = await client().deleteCurrentAccessToken({ auth: current });
		assert.equal(res.statusCode, 200);
		assert.equal(res.body.ok, true, JSON.stringify(res.body));
		await assertRefused(current, 'revoked current token');
		await assertAccepted(keeper, email, 'sibling token');
	});
});

describe('server process', () => {
	it('wick serve exits 0 on SIGTERM', async () => {
		const result = await server.stop();
		server = null;
		assert.deepEqual(result, { code: 0, signal: null });
	});
});
