'use strict';
// Webhooks and integrations (issue 5, "Proof") against a real `wick serve`: particle-cli
// `webhook create | GET | list | delete <id> | delete all`, and particle-api-js createWebhook,
// listWebhooks, deleteWebhook, createIntegration, editIntegration, listIntegrations and
// deleteIntegration, for a user and for a product. No event is published, so no request leaves
// the machine (the hooks point at example.com).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const Particle = require('particle-api-js');

const { startWick } = require('../lib/wick');
const rest = require('../lib/rest');
const { ParticleCLI, show } = require('../lib/cli');
const { apiFailure, showErr } = require('../lib/assertions');

const PROFILE = 'wick';
const CLI_USER = 'hooks-cli@example.com';
const JS_USER = 'hooks-js@example.com';
const OTHER_USER = 'hooks-other@example.com';
const PASSWORD = 'webhooks are fun';
const DEVICE_ID = '0123456789abcdef01234567';
const HOOK_ID_RE = /^[0-9a-f]{24}$/;

let server;

before(async () => {
	server = await startWick({ signup: false });
	for (const user of [CLI_USER, JS_USER, OTHER_USER]) {
		server.createUser(user, PASSWORD);
	}
});

after(async () => {
	if (server) {
		await server.stop();
	}
});

/** GET path with token; asserts 200 and returns the body. */
async function restGet(path, token) {
	const res = await rest.request(server.url, 'GET', path, { token });
	assert.equal(res.status, 200, `GET ${path}: ${rest.describe(res)}`);
	return res.body;
}

describe('particle webhook', () => {
	let cli;
	let token;

	before(async () => {
		cli = new ParticleCLI();
		await cli.useServer(PROFILE, server.url);
		const res = await cli.run(['login', '--username', CLI_USER, '--password', PASSWORD]);
		assert.equal(res.code, 0, show(res));
		token = cli.profileConfig(PROFILE).access_token;
	});

	after(() => {
		if (cli) {
			cli.cleanup();
		}
	});

	/** Runs `particle webhook ...args`, asserts success and returns the ID it reports created. */
	async function createHook(args) {
		const res = await cli.run(['webhook', ...args]);
		assert.equal(res.code, 0, show(res));
		const m = res.stdout.match(/Successfully created webhook with ID ([0-9a-f]+)/);
		assert.ok(m, `no webhook ID in:\n${show(res)}`);
		assert.match(m[1], HOOK_ID_RE);
		return m[1];
	}

	it('webhook create <event> <url> makes a POST hook', async () => {
		const id = await createHook(['create', 'temp', 'https://example.com/hooks/temp']);
		const hook = await restGet(`/v1/webhooks/${id}`, token);
		assert.equal(hook.event, 'temp');
		assert.equal(hook.url, 'https://example.com/hooks/temp');
		assert.equal(hook.requestType, 'POST');
		assert.equal(hook.deviceID, null);
		assert.equal(hook.rejectUnauthorized, true);
	});

	it('webhook create <event> <url> <device> filters by device', async () => {
		const id = await createHook(['create', 'humidity', 'https://example.com/hooks/h', DEVICE_ID]);
		const hook = await restGet(`/v1/webhooks/${id}`, token);
		assert.equal(hook.deviceID, DEVICE_ID);
	});

	it('webhook GET makes a GET hook', async () => {
		const id = await createHook(['GET', 'pressure', 'https://example.com/hooks/p']);
		assert.equal((await restGet(`/v1/webhooks/${id}`, token)).requestType, 'GET');
	});

	it('webhook create <file.json> sends the template', async () => {
		const file = path.join(cli.home, 'hook.json');
		fs.writeFileSync(file, JSON.stringify({
			event: 'env/',
			url: 'https://example.com/hooks/{{PARTICLE_DEVICE_ID}}',
			requestType: 'PUT',
			json: { value: '{{PARTICLE_EVENT_VALUE}}', at: '{{PARTICLE_PUBLISHED_AT}}' },
			headers: { 'X-Source': 'wick-compat' },
			responseTopic: '{{PARTICLE_DEVICE_ID}}/env-reply',
			noDefaults: true,
		}));
		const id = await createHook(['create', file]);
		const hook = await restGet(`/v1/webhooks/${id}`, token);
		assert.equal(hook.event, 'env/');
		assert.equal(hook.requestType, 'PUT');
		assert.deepEqual(hook.json, { value: '{{PARTICLE_EVENT_VALUE}}', at: '{{PARTICLE_PUBLISHED_AT}}' });
		assert.deepEqual(hook.headers, { 'X-Source': 'wick-compat' });
		assert.equal(hook.responseTopic, '{{PARTICLE_DEVICE_ID}}/env-reply');
		assert.equal(hook.noDefaults, true);
	});

	it('webhook create reports a refused URL', async () => {
		const res = await cli.run(['webhook', 'create', 'temp', 'ftp://example.com/x']);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.output, /url is not allowed/, show(res));
	});

	it('webhook list shows every hook', async () => {
		const res = await cli.run(['webhook', 'list']);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, /Found 4 hooks registered/, show(res));
		for (const event of ['temp', 'humidity', 'pressure', 'env/']) {
			assert.ok(res.stdout.includes(`is watching for "${event}"`), `${event} missing:\n${show(res)}`);
		}
		assert.ok(res.stdout.includes(`for device ${DEVICE_ID}`), show(res));
		assert.match(res.stdout, /and sending to: https:\/\/example\.com\/hooks\/temp/, show(res));
		assert.match(res.stdout, /created at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/, show(res));
	});

	it('webhook delete <id> removes one hook', async () => {
		const [first] = await restGet('/v1/webhooks', token);
		const res = await cli.run(['webhook', 'delete', first.id]);
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, /Successfully deleted webhook!/, show(res));
		const gone = await rest.request(server.url, 'GET', `/v1/webhooks/${first.id}`, { token });
		assert.equal(gone.status, 404, rest.describe(gone));
		assert.deepEqual(gone.body, { ok: false, error: 'Webhook not found' });
		assert.equal((await restGet('/v1/webhooks', token)).length, 3);
	});

	it('webhook delete all removes every remaining hook', async () => {
		const before = await restGet('/v1/webhooks', token);
		assert.ok(before.length > 1, `need several hooks, have ${before.length}`);
		const res = await cli.run(['webhook', 'delete', 'all'], { input: 'y\n' });
		assert.equal(res.code, 0, show(res));
		assert.match(res.stdout, new RegExp(`Found ${before.length} hooks registered`), show(res));
		for (const hook of before) {
			assert.ok(res.stdout.includes(`deleting ${hook.id}`), `${hook.id} not deleted:\n${show(res)}`);
		}
		assert.deepEqual(await restGet('/v1/webhooks', token), []);
	});

	it('webhook delete of an unknown hook fails', async () => {
		const res = await cli.run(['webhook', 'delete', 'ffffffffffffffffffffffff']);
		assert.notEqual(res.code, 0, show(res));
		assert.match(res.output, /Webhook not found/, show(res));
	});
});

describe('particle-api-js webhooks and integrations', () => {
	let particle;
	let token;
	let otherToken;
	let product;

	before(async () => {
		particle = new Particle({ baseUrl: server.url });
		token = (await rest.passwordToken(server.url, JS_USER, PASSWORD)).access_token;
		otherToken = (await rest.passwordToken(server.url, OTHER_USER, PASSWORD)).access_token;
		product = await rest.createProduct(server.url, token, 'Hooked Widget');
	});

	for (const scope of ['user', 'product']) {
		const opts = () => (scope === 'product' ? { product: product.slug } : {});
		const base = () => (scope === 'product' ? `/v1/products/${product.slug}` : '/v1');

		it(`createWebhook, listWebhooks, deleteWebhook (${scope})`, async () => {
			const created = await particle.createWebhook({
				event: 'temp', url: 'https://example.com/js', device: DEVICE_ID, rejectUnauthorized: false,
				hook: { method: 'PUT', json: { t: '{{PARTICLE_EVENT_VALUE}}' }, headers: { 'X-A': '1' },
					auth: { username: 'me', password: 'pw' }, responseEvent: 'reply', errorResponseEvent: 'oops' },
				auth: token, ...opts(),
			});
			assert.equal(created.statusCode, 201, JSON.stringify(created.body));
			assert.equal(created.body.ok, true);
			assert.match(created.body.id, HOOK_ID_RE);
			assert.equal(created.body.event, 'temp');
			assert.equal(created.body.url, 'https://example.com/js');
			assert.equal(created.body.hookUrl, `${server.url}${base()}/webhooks/${created.body.id}`);

			const list = await particle.listWebhooks({ auth: token, ...opts() });
			assert.equal(list.statusCode, 200);
			const hook = list.body.find((h) => h.id === created.body.id);
			assert.ok(hook, JSON.stringify(list.body));
			assert.equal(hook.requestType, 'PUT');
			assert.equal(hook.deviceID, DEVICE_ID);
			assert.equal(hook.rejectUnauthorized, false);
			assert.deepEqual(hook.json, { t: '{{PARTICLE_EVENT_VALUE}}' });
			assert.deepEqual(hook.auth, { username: 'me', password: 'pw' });
			assert.equal(hook.responseTopic, 'reply');
			assert.equal(hook.errorResponseTopic, 'oops');

			// Another user neither sees nor deletes it.
			if (scope === 'user') {
				const theirs = await particle.listWebhooks({ auth: otherToken });
				assert.deepEqual(theirs.body, []);
			}
			const foreign = await apiFailure(particle.deleteWebhook({ hookId: created.body.id, auth: otherToken, ...opts() }), 'foreign delete');
			assert.equal(foreign.statusCode, scope === 'user' ? 404 : 403, showErr(foreign));

			const deleted = await particle.deleteWebhook({ hookId: created.body.id, auth: token, ...opts() });
			assert.equal(deleted.statusCode, 200);
			assert.deepEqual(deleted.body, { ok: true });
			const after = await particle.listWebhooks({ auth: token, ...opts() });
			assert.ok(!after.body.some((h) => h.id === created.body.id), JSON.stringify(after.body));
		});

		it(`createIntegration, editIntegration, listIntegrations, deleteIntegration (${scope})`, async () => {
			const created = await particle.createIntegration({
				event: 'env/', deviceId: DEVICE_ID,
				settings: { integration_type: 'Webhook', url: 'https://example.com/int', requestType: 'POST',
					form: { v: '{{PARTICLE_EVENT_VALUE}}' } },
				auth: token, ...opts(),
			});
			assert.equal(created.statusCode, 201, JSON.stringify(created.body));
			const id = created.body.id;
			assert.match(id, HOOK_ID_RE);
			assert.equal(created.body.integration_type, 'Webhook');
			assert.equal(created.body.requestType, 'POST');
			assert.equal(created.body.deviceID, DEVICE_ID);

			const edited = await particle.editIntegration({
				integrationId: id, settings: { url: 'https://example.com/int2', requestType: 'GET' }, auth: token, ...opts(),
			});
			assert.equal(edited.statusCode, 200, JSON.stringify(edited.body));
			assert.equal(edited.body.integration.event, 'env/'); // kept: editIntegration left it out
			assert.equal(edited.body.integration.url, 'https://example.com/int2');
			assert.equal(edited.body.integration.form, undefined); // replaced, not merged
			assert.equal(edited.body.integration.deviceID, null);

			const list = await particle.listIntegrations({ auth: token, ...opts() });
			assert.equal(list.statusCode, 200);
			const found = list.body.find((h) => h.id === id);
			assert.ok(found, JSON.stringify(list.body));
			assert.equal(found.integration_type, 'Webhook');
			assert.equal(found.requestType, 'GET');

			const one = await restGet(`${base()}/integrations/${id}`, token);
			assert.deepEqual(one.integration.logs, []);
			const log = await restGet(`${base()}/integrations/${id}/deliveries`, token);
			assert.deepEqual(log, { ok: true, deliveries: [] });

			const deleted = await particle.deleteIntegration({ integrationId: id, auth: token, ...opts() });
			assert.equal(deleted.statusCode, 204);
			const again = await apiFailure(particle.deleteIntegration({ integrationId: id, auth: token, ...opts() }), 'second delete');
			assert.equal(again.statusCode, 404, showErr(again));
			assert.equal(again.body.error, 'Integration not found');
		});
	}

	it('createWebhook with a missing event is a 400 with the legacy shape', async () => {
		const err = await apiFailure(particle.createWebhook({ url: 'https://example.com/x', auth: token }), 'no event');
		assert.equal(err.statusCode, 400, showErr(err));
		assert.equal(err.body.ok, false, showErr(err));
		assert.equal(err.body.error, 'event is required', showErr(err));
	});

	it('a webhook on another user\'s product is refused', async () => {
		const err = await apiFailure(particle.createWebhook({ event: 'x', url: 'https://example.com/x', product: product.slug,
			auth: otherToken }), 'foreign product');
		assert.equal(err.statusCode, 403, showErr(err));
	});
});
