'use strict';
// particle-cli 3 (the `particle` command) against a real `wick serve`, pointed at it
// with `particle config`: login (password and OTP), whoami, token create/revoke, logout.

const { describe, it, before, after, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { freshTotp } = require('../lib/totp');
const { ParticleCLI, particleVersion, show } = require('../lib/cli');
const { TOKEN_RE } = require('../lib/assertions');

const PROFILE = 'wick';
const PLAIN_USER = 'carol@example.com';
const MFA_USER = 'dave@example.com';
const PASSWORD = 'hunter2 but longer';

let server;
let mfaSecret;
const usedSteps = new Set();
let cli;
// A HOME configured once with `particle config`; each test starts from a copy of its ~/.particle.
let configured;

/** Asserts that the server accepts token on GET /v1/user as username. */
async function assertAccepted(token, username, what) {
	const res = await rest.request(server.url, 'GET', '/v1/user', { token });
	assert.equal(res.status, 200, `${what}: ${rest.describe(res)}`);
	assert.equal(res.body.username, username, `${what}: ${rest.describe(res)}`);
}

/** Asserts that the server refuses token on GET /v1/user with 401 invalid_token. */
async function assertRefused(token, what) {
	const res = await rest.request(server.url, 'GET', '/v1/user', { token });
	assert.equal(res.status, 401, `${what}: ${rest.describe(res)}`);
	assert.equal(res.body && res.body.error, 'invalid_token', `${what}: ${rest.describe(res)}`);
}

/** Runs `particle login --username U --password P` in the current HOME and asserts success. */
async function cliLogin(username, password) {
	const res = await cli.run(['login', '--username', username, '--password', password]);
	assert.equal(res.code, 0, show(res));
	assert.match(res.stdout, /Successfully completed login!/, show(res));
	return res;
}

/** Parses the output of `particle token create`: {token, expiresAt (ms or null)}. */
function parseTokenCreate(res) {
	const tokenLine = res.stdout.split('\n').map((l) => l.trim()).filter((l) => TOKEN_RE.test(l));
	assert.equal(tokenLine.length, 1, `expected one token line in:\n${show(res)}`);
	const m = res.stdout.match(/New access token expires on (.+)\n/);
	if (m) {
		const at = Date.parse(m[1]);
		assert.ok(!Number.isNaN(at), `unparseable expiry date ${JSON.stringify(m[1])}`);
		return { token: tokenLine[0], expiresAt: at };
	}
	assert.match(res.stdout, /New access token never expires/, show(res));
	return { token: tokenLine[0], expiresAt: null };
}

before(async () => {
	server = await startWick({ signup: false });
	// Accounts are created with the admin command while the server is running.
	server.createUser(PLAIN_USER, PASSWORD);
	server.createUser(MFA_USER, PASSWORD);
	const token = (await rest.passwordToken(server.url, MFA_USER, PASSWORD)).access_token;
	mfaSecret = await rest.enrolMfa(server.url, token, (secret) => freshTotp(secret, usedSteps));
	configured = new ParticleCLI();
	await configured.useServer(PROFILE, server.url);
});

after(async () => {
	if (configured) {
		configured.cleanup();
	}
	if (server) {
		await server.stop();
	}
});

beforeEach(() => {
	cli = new ParticleCLI({ template: configured });
});

afterEach(() => {
	cli.cleanup();
});

describe('particle config', () => {
	it('particle --version runs the installed CLI', async () => {
		const res = await cli.run(['--version']);
		assert.equal(res.code, 0, show(res));
		assert.equal(res.stdout.trim(), particleVersion());
	});

	it('points a profile at Wick and switches to it', async () => {
		cli.cleanup();
		cli = new ParticleCLI(); // configure from scratch here
		await cli.useServer(PROFILE, server.url);
		assert.deepEqual(cli.activeProfile(), { name: PROFILE });
		assert.equal(cli.profileConfig(PROFILE).apiUrl, server.url);
		const res = await cli.run(['config']);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, new RegExp(`Current profile: ${PROFILE}`), show(res));
		assert.ok(res.stdout.includes(`Using API: ${server.url}`), show(res));
	});
});

describe('particle login / whoami', () => {
	it('login --username --password saves a working token', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const saved = cli.profileConfig(PROFILE);
		assert.match(String(saved.access_token), TOKEN_RE, JSON.stringify(saved));
		assert.equal(saved.username, PLAIN_USER);
		await assertAccepted(saved.access_token, PLAIN_USER, 'token saved by particle login');
	});

	it('login with a wrong password fails and saves nothing', async () => {
		const res = await cli.run(['login', '--username', PLAIN_USER, '--password', 'not the password']);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.output, /User credentials are invalid/, show(res));
		assert.equal(cli.profileConfig(PROFILE).access_token, undefined, JSON.stringify(cli.profileConfig(PROFILE)));
	});

	it('whoami prints the logged-in username', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const res = await cli.run(['whoami']);
		assert.equal(res.code, 0, show(res));
		assert.ok(res.stdout.includes(`> ${PLAIN_USER}\n`), show(res));
	});

	it('login --token takes the username from GET /v1/user, and whoami prints it', async () => {
		const token = (await rest.passwordToken(server.url, PLAIN_USER, PASSWORD)).access_token;
		const login = await cli.run(['login', '--token', token]);
		assert.equal(login.code, 0, show(login));
		assert.equal(cli.profileConfig(PROFILE).username, PLAIN_USER, JSON.stringify(cli.profileConfig(PROFILE)));
		const res = await cli.run(['whoami']);
		assert.equal(res.code, 0, show(res));
		assert.ok(res.stdout.includes(`> ${PLAIN_USER}`), show(res));
	});

	it('whoami with a revoked token tells the user to log in again', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const saved = cli.profileConfig(PROFILE).access_token;
		const del = await rest.request(server.url, 'DELETE', '/v1/access_tokens/current', { token: saved });
		assert.equal(del.status, 200, rest.describe(del));
		const res = await cli.run(['whoami']);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.stdout, /it appears your access token may have expired/, show(res));
	});

	it('login --otp with a wrong code fails and saves nothing', async () => {
		const res = await cli.run(['login', '--username', MFA_USER, '--password', PASSWORD, '--otp', '000000']);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.stdout, /This login code didn't work/, show(res));
		assert.equal(cli.profileConfig(PROFILE).access_token, undefined, JSON.stringify(cli.profileConfig(PROFILE)));
	});

	it('login --otp with a real TOTP code logs an MFA user in', async () => {
		// A CLI start can take seconds on a busy machine: leave the code most of its step.
		const otp = await freshTotp(mfaSecret, usedSteps, { minMsLeft: 15000 });
		const res = await cli.run(['login', '--username', MFA_USER, '--password', PASSWORD, '--otp', otp]);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, /Successfully completed login!/, show(res));
		const saved = cli.profileConfig(PROFILE);
		assert.equal(saved.username, MFA_USER);
		await assertAccepted(saved.access_token, MFA_USER, 'token saved by particle login --otp');
		const who = await cli.run(['whoami']);
		assert.ok(who.stdout.includes(`> ${MFA_USER}`), show(who));
	});
});

describe('particle token create / revoke', () => {
	it('token create --expires-in N prints a token that works and expires in N seconds', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const before = Date.now();
		// The CLI asks for the password of the saved username on stdin.
		const res = await cli.run(['token', 'create', '--expires-in', '3600'], { input: `${PASSWORD}\n` });
		assert.equal(res.code, 0, show(res));
		const { token, expiresAt } = parseTokenCreate(res);
		assert.ok(expiresAt !== null, show(res));
		assert.ok(Math.abs(expiresAt - (before + 3600 * 1000)) < 60 * 1000, `expiry ${new Date(expiresAt).toISOString()} not ~1h from now:\n${show(res)}`);
		assert.notEqual(token, cli.profileConfig(PROFILE).access_token, 'token create must mint a new token');
		await assertAccepted(token, PLAIN_USER, 'token from token create --expires-in');
		const cur = await rest.request(server.url, 'GET', '/v1/access_tokens/current', { token });
		assert.equal(cur.status, 200, rest.describe(cur));
		const serverExpiry = Date.parse(cur.body.expires_at);
		assert.ok(Math.abs(serverExpiry - (before + 3600 * 1000)) < 60 * 1000, `server expires_at: ${rest.describe(cur)}`);
	});

	it('token create --never-expires prints a token that works and never expires', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const res = await cli.run(['token', 'create', '--never-expires'], { input: `${PASSWORD}\n` });
		assert.equal(res.code, 0, show(res));
		const { token, expiresAt } = parseTokenCreate(res);
		assert.equal(expiresAt, null, show(res));
		await assertAccepted(token, PLAIN_USER, 'token from token create --never-expires');
		const cur = await rest.request(server.url, 'GET', '/v1/access_tokens/current', { token });
		assert.equal(cur.status, 200, rest.describe(cur));
		assert.equal(cur.body.expires_at, null, rest.describe(cur));
	});

	it('token create with a wrong password fails', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const res = await cli.run(['token', 'create', '--expires-in', '60'], { input: 'wrong password\n' });
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.output, /Error while creating a new access token/, show(res));
	});

	it('token revoke <token> revokes it on the server', async () => {
		const token = (await rest.passwordToken(server.url, PLAIN_USER, PASSWORD)).access_token;
		const keeper = (await rest.passwordToken(server.url, PLAIN_USER, PASSWORD)).access_token;
		await assertAccepted(token, PLAIN_USER, 'token before revoke');
		// Not logged in: the CLI sends DELETE /v1/access_tokens/<token> without credentials.
		const res = await cli.run(['token', 'revoke', token]);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, /Successfully revoked all provided tokens/, show(res));
		await assertRefused(token, 'revoked token');
		await assertAccepted(keeper, PLAIN_USER, 'other token of the same user');
	});

	it('token revoke of an unknown token reports the failure', async () => {
		const res = await cli.run(['token', 'revoke', '0123456789abcdef0123456789abcdef01234567']);
		assert.match(res.output, /Failed to revoke the following access tokens/, show(res));
	});
});

describe('particle logout', () => {
	it('logout revokes the saved token on the server and forgets it', async () => {
		await cliLogin(PLAIN_USER, PASSWORD);
		const saved = cli.profileConfig(PROFILE).access_token;
		await assertAccepted(saved, PLAIN_USER, 'token before logout');
		// particle-cli 3.43.1 `logout` never prompts: it always revokes the token.
		const res = await cli.run(['logout']);
		assert.equal(res.code, 0, show(res));
		assert.ok(res.stdout.includes(`You have been logged out from ${PLAIN_USER}`), show(res));
		const after = cli.profileConfig(PROFILE);
		assert.equal(after.access_token, null, JSON.stringify(after));
		assert.equal(after.username, null, JSON.stringify(after));
		await assertRefused(saved, 'token after logout');
	});
});
