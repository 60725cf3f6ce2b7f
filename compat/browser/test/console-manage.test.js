'use strict';
// The console's management pages in a real browser: sign-up on first run, products with
// their devices (import), customers, team invitations, claim codes, webhooks with the
// delivery log, the product's Authentication view (a client's secret shown once and never
// again), the account page (MFA enrolment from the page's own key, recovery codes,
// password change, tokens), dark mode and a phone-sized screen.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const jsQR = require('jsqr');

const { unavailable, launch, openPage, screenshot, noProblems } = require('../lib/browser');
const { startWick } = require('../../lib/wick');
const { Sim, deviceAddress, simDeviceId } = require('../../lib/sim');
const { userPart } = require('../lib/module');
const { spawn } = require('node:child_process');
const rest = require('../../lib/rest');
const { freshTotp } = require('../../lib/totp');

const skip = unavailable();
const EMAIL = 'grace@example.com';
const PASSWORD = 'hopper-1906-cobol';

describe('console: products, clients, webhooks, account', { skip: skip || false }, () => {
	let server;
	let browser;
	let tab;
	let hookTarget;
	let sim;
	const hits = [];
	const used = new Set();

	before(async () => {
		hookTarget = http.createServer((req, res) => {
			let body = '';
			req.on('data', (c) => { body += c; });
			req.on('end', () => {
				hits.push({ method: req.method, url: req.url, body });
				res.writeHead(200, { 'Content-Type': 'application/json' });
				res.end('{"thanks":true}');
			});
		});
		await new Promise((r) => hookTarget.listen(0, '127.0.0.1', r));
		server = await startWick({ signup: true, extraArgs: ['--webhook-allow-private'] });
		browser = await launch();
		tab = await openPage(browser);
	});

	after(async () => {
		if (sim) await sim.stop();
		if (browser) await browser.close();
		if (server) await server.stop();
		if (hookTarget) hookTarget.close();
	});

	const token = () => tab.page.evaluate(() => sessionStorage.getItem('wick.console.token'));

	it('creates the first account from the sign-in page when sign-up is open', async () => {
		const { page } = tab;
		await page.goto(`${server.url}/console/`);
		await page.getByRole('button', { name: 'Create an account' }).click();
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
		await page.getByLabel('Repeat the password').fill(PASSWORD);
		await screenshot(page, 'manage-01-signup');
		await page.getByRole('button', { name: 'Create account' }).click();
		await page.getByRole('heading', { name: 'Devices' }).waitFor();
		const me = await rest.request(server.url, 'GET', '/v1/user', { token: await token() });
		assert.equal(me.body.username, EMAIL, rest.describe(me));
	});

	it('creates a product and imports devices by ID', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Products' }).click();
		await page.getByText('No products yet').waitFor();
		await screenshot(page, 'manage-02-products-empty');
		await page.getByRole('button', { name: '+ New product' }).first().click();
		await page.getByLabel('Name').fill('Smart Lamp');
		await page.getByLabel('Device type').selectOption('6');
		await page.getByRole('button', { name: 'Create product' }).click();
		await page.getByRole('heading', { name: 'Smart Lamp' }).waitFor();
		await page.getByText('No devices in this product yet').waitFor();
		await page.getByRole('button', { name: 'Import devices' }).click();
		await page.getByLabel('Device IDs').fill('0123456789abcdef01234567\n0123456789abcdef01234568\nnot-a-device');
		await page.getByRole('button', { name: 'Import', exact: true }).click();
		await page.getByText('Some devices were not imported').waitFor();
		await page.getByRole('button', { name: 'OK' }).click();
		await page.locator('tr[data-device="0123456789abcdef01234568"]').waitFor();
		// The same import from a file (a CSV export: ID in the first column).
		await page.getByRole('button', { name: 'Import devices' }).click();
		await page.getByLabel('…or a file').setInputFiles({ name: 'devices.csv', mimeType: 'text/csv', buffer: Buffer.from('0123456789abcdef01234569,lamp 3\r\n') });
		await page.getByRole('button', { name: 'Import', exact: true }).click();
		await page.locator('tr[data-device="0123456789abcdef01234569"]').waitFor();
		await screenshot(page, 'manage-03-product-devices');
		const res = await rest.request(server.url, 'GET', '/v1/products/smart-lamp/devices', { token: await token() });
		assert.deepEqual(res.body.devices.map((d) => d.id).sort(), ['0123456789abcdef01234567', '0123456789abcdef01234568', '0123456789abcdef01234569']);
	});

	it('shows a new client secret once, with a copy button, and never again', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Authentication' }).last().click();
		await page.getByText('No clients yet').waitFor();
		await page.getByRole('button', { name: '+ New client' }).first().click();
		await page.getByLabel('Name').fill('Lamp web app');
		await page.getByText('Simple auth (web app)').click();
		await page.getByLabel('Redirect URI', { exact: true }).fill('https://lamp.example.com/setup');
		await screenshot(page, 'manage-04-new-client');
		await page.getByRole('button', { name: 'Create client' }).click();
		const secretEl = page.locator('code.client-secret');
		await secretEl.waitFor();
		const secret = await secretEl.textContent();
		const id = await page.locator('code.client-id').textContent();
		assert.match(secret, /^[0-9a-f]{40}$/);
		await page.getByRole('button', { name: 'Copy to clipboard' }).last().click();
		assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
		await screenshot(page, 'manage-05-client-secret');
		await page.getByRole('button', { name: 'I have copied the secret' }).click();
		const row = page.locator(`tr[data-client="${id}"]`);
		await row.waitFor();
		assert.match(await row.textContent(), /Create customers/);
		assert.ok(!(await page.content()).includes(secret), 'the secret must leave the page');
		await page.reload();
		await row.waitFor();
		assert.ok(!(await page.content()).includes(secret), 'the secret must not come back after a reload');
		await screenshot(page, 'manage-06-clients');
		// The secret works: the client creates a customer, as the guide's simple auth does.
		const made = await rest.request(server.url, 'POST', '/v1/products/smart-lamp/customers', {
			form: { client_id: id, client_secret: secret, email: 'lin@example.com', password: 'customer-pass-1' },
		});
		assert.ok(made.status === 200 || made.status === 201, rest.describe(made));
		// Edit, then two-legged server preset, then delete.
		await row.getByRole('button', { name: 'Edit Lamp web app' }).click();
		await page.getByLabel('Name').fill('Lamp web');
		await page.getByRole('button', { name: 'Save' }).click();
		await page.locator(`tr[data-client="${id}"]`, { hasText: 'Lamp web' }).waitFor();
		await page.getByRole('button', { name: '+ New client' }).click();
		await page.getByLabel('Name').fill('Lamp server');
		await page.getByText('Two-legged auth (server)').click();
		await page.getByRole('button', { name: 'Create client' }).click();
		await page.locator('code.client-secret').waitFor();
		await page.getByRole('button', { name: 'I have copied the secret' }).click();
		await page.getByRole('button', { name: 'Delete Lamp web' }).click();
		await page.getByRole('button', { name: 'Delete', exact: true }).click();
		await page.locator(`tr[data-client="${id}"]`).waitFor({ state: 'detached' });
		const list = await rest.request(server.url, 'GET', '/v1/products/smart-lamp/clients', { token: await token() });
		assert.equal(list.body.clients.length, 1, rest.describe(list));
		assert.equal(list.body.clients[0].name, 'Lamp server');
		assert.equal(list.body.clients[0].scope, undefined, 'the two-legged preset has no scope');
	});

	it('lists customers, invites to the team and makes claim codes', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Customers' }).click();
		await page.locator('tr[data-customer="lin@example.com"]').waitFor();
		await page.getByRole('button', { name: '+ New customer' }).click();
		await page.getByLabel('Email').fill('shadow@example.com');
		await page.getByRole('button', { name: 'Create customer' }).click();
		await page.locator('tr[data-customer="shadow@example.com"]').waitFor();
		await screenshot(page, 'manage-07-customers');
		await page.getByRole('link', { name: 'Team' }).click();
		await page.getByRole('button', { name: 'Invite' }).click();
		await page.getByLabel('Email').fill('linus@example.com');
		await page.getByRole('button', { name: 'Invite', exact: true }).last().click();
		await page.getByText('Invitation created').waitFor();
		assert.match(await page.locator('dialog code').textContent(), /^[0-9a-f]{40}$/);
		await page.getByRole('button', { name: 'Done' }).click();
		await page.getByRole('cell', { name: 'linus@example.com' }).waitFor();
		await screenshot(page, 'manage-08-team');
		await page.getByRole('link', { name: 'Claim codes' }).click();
		await page.getByRole('button', { name: 'Create claim code' }).click();
		assert.equal((await page.locator('code.claim-code').textContent()).length, 63);
		await screenshot(page, 'manage-09-claim-codes');
	});

	it('shows a product device come online and calls its function through the product', async () => {
		const { page } = tab;
		// `wick sim --product` provisions the device into the product, unowned (lib/sim.js has
		// no product option, so the process is started here with the same arguments).
		const args = ['sim', '--server', deviceAddress(server), '--data', server.dataDir, '--count', '1',
			'--id-prefix', 'ab12', '--id-start', '1', '--progress', '0', '--connect-timeout', '10s',
			'--api', server.url, '--token', await token(), '--product', 'smart-lamp'];
		sim = new Sim({ child: spawn(server.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }), ids: [simDeviceId('ab12', 1)], args });
		await page.getByRole('navigation', { name: 'Product sections' }).getByRole('link', { name: 'Devices' }).click();
		const row = page.locator(`tr[data-device="${sim.ids[0]}"]`);
		await row.getByText('Online').waitFor({ timeout: 20000 }).catch(async (err) => {
			throw new Error(`${err.message}\n${sim.logs()}`);
		});
		await row.getByRole('link').click();
		await page.getByRole('heading', { name: 'Functions' }).waitFor();
		const led = page.locator('form[data-function="led"]');
		await led.getByRole('textbox').fill('on');
		await led.getByRole('button', { name: 'Call' }).click();
		await led.locator('.return-value').waitFor();
		assert.equal(await led.locator('.return-value').textContent(), '1');
		await page.getByRole('button', { name: 'Refresh on' }).click();
		await page.waitForFunction(() => document.querySelector('[data-variable="on"]').textContent === 'true');
		await screenshot(page, 'manage-09b-product-device');
		await page.getByRole('link', { name: '← Product devices' }).click();
		await page.getByRole('button', { name: 'Import devices' }).waitFor();
	});

	it('uploads, releases, withdraws and deletes product firmware', async () => {
		const { page } = tab;
		await page.getByRole('navigation', { name: 'Product sections' }).getByRole('link', { name: 'Firmware' }).click();
		await page.getByText('No firmware yet').waitFor();
		for (const version of [2, 3]) {
			await page.getByRole('button', { name: 'Upload firmware' }).first().click();
			await page.getByLabel('Binary').setInputFiles({ name: `lamp-v${version}.bin`, mimeType: 'application/octet-stream', buffer: userPart({ platform: 6, productId: 10000, version }) });
			await page.getByLabel('Version', { exact: true }).fill(String(version));
			await page.getByLabel('Title', { exact: true }).fill(`Lamp ${version}`);
			await page.getByRole('button', { name: 'Upload', exact: true }).click();
			await page.locator(`tr[data-version="${version}"]`).waitFor();
		}
		// A binary of another version is refused, and the dialog says why.
		await page.getByRole('button', { name: 'Upload firmware' }).click();
		await page.getByLabel('Binary').setInputFiles({ name: 'wrong.bin', mimeType: 'application/octet-stream', buffer: userPart({ platform: 6, productId: 10000, version: 9 }) });
		await page.getByLabel('Version', { exact: true }).fill('4');
		await page.getByLabel('Title', { exact: true }).fill('Wrong');
		await page.getByRole('button', { name: 'Upload', exact: true }).click();
		await page.locator('dialog').getByRole('alert').waitFor();
		await page.keyboard.press('Escape');
		const v3 = page.locator('tr[data-version="3"]');
		await v3.getByRole('button', { name: 'Release' }).click();
		await page.getByRole('button', { name: 'Release', exact: true }).last().click();
		await v3.getByText('Released', { exact: true }).waitFor();
		await screenshot(page, 'manage-09c-firmware');
		const list = await rest.request(server.url, 'GET', '/v1/products/smart-lamp/firmware', { token: await token() });
		assert.deepEqual(list.body.map((f) => [f.version, f.product_default]), [[3, true], [2, false]], rest.describe(list));
		await v3.getByRole('button', { name: 'Withdraw' }).click();
		await page.getByRole('button', { name: 'Withdraw', exact: true }).last().click();
		await v3.getByText('Not released').waitFor();
		await page.getByRole('button', { name: 'Delete version 2' }).click();
		await page.getByRole('button', { name: 'Delete', exact: true }).click();
		await page.locator('tr[data-version="2"]').waitFor({ state: 'detached' });
	});

	it('creates a webhook, sends a test and shows the delivery log', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Integrations' }).last().click();
		await page.getByRole('button', { name: '+ New webhook' }).first().click();
		await page.getByLabel('Name').fill('Lamp telemetry');
		await page.getByLabel('Event prefix').fill('lamp');
		await page.getByLabel('URL').fill(`http://127.0.0.1:${hookTarget.address().port}/in`);
		await page.getByRole('button', { name: 'Create webhook' }).click();
		await page.getByRole('heading', { name: 'Lamp telemetry' }).waitFor();
		await page.getByRole('button', { name: 'Send test' }).click();
		await page.getByRole('cell', { name: '200' }).waitFor();
		assert.ok(hits.length >= 1, 'the webhook target got the test');
		await screenshot(page, 'manage-10-webhook');
		await page.getByRole('button', { name: 'Disable' }).click();
		await page.getByRole('button', { name: 'Enable' }).waitFor();
		await page.locator('tr[data-hook]').getByText('Disabled').waitFor();
		const hooks = await rest.request(server.url, 'GET', '/v1/products/smart-lamp/integrations', { token: await token() });
		assert.equal(hooks.body[0].disabled, true, rest.describe(hooks));
		assert.equal(hooks.body[0].url, `http://127.0.0.1:${hookTarget.address().port}/in`, 'disabling keeps the rest of the configuration');
	});

	it('turns on two-step verification with the key the page shows, then off', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Account' }).click();
		await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
		await page.getByRole('button', { name: 'Turn on' }).click();
		const secret = await page.locator('code.mfa-secret').textContent();
		// The QR code decodes to the otpauth link, which holds the same key.
		const link = await page.locator('a.otpauth').getAttribute('href');
		assert.match(link, new RegExp(`^otpauth://totp/.*[?&]secret=${secret}(&|$)`));
		const img = await page.locator('canvas.qr').evaluate((c) => {
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
			return { w: d.width, h: d.height, px: Array.from(d.data) };
		});
		const decoded = jsQR(Uint8ClampedArray.from(img.px), img.w, img.h);
		assert.ok(decoded, 'the QR code must decode');
		assert.equal(decoded.data, link);
		await screenshot(page, 'manage-11-mfa-setup');
		await page.getByLabel('Code from the app').fill(await freshTotp(secret, used));
		await page.getByRole('button', { name: 'Turn on' }).last().click();
		await page.getByText('Save your recovery codes').waitFor();
		const codes = (await page.locator('pre.recovery-codes').textContent()).split('\n').filter(Boolean);
		assert.ok(codes.length >= 5, `recovery codes: ${codes}`);
		await page.getByRole('button', { name: 'I have saved them' }).click();
		const me = await rest.request(server.url, 'GET', '/v1/user', { token: await token() });
		assert.equal(me.body.mfa.enabled, true);
		// A recovery code signs in (one step of the console's MFA sign-in).
		const ch = await rest.request(server.url, 'POST', '/oauth/token', { form: { grant_type: 'password', username: EMAIL, password: PASSWORD, client_id: 'particle', client_secret: 'particle' } });
		assert.equal(ch.body.error, 'mfa_required');
		await page.getByLabel('Password to confirm').fill(PASSWORD);
		await page.getByRole('button', { name: 'Turn off two-step verification' }).click();
		await page.getByText('Two-step verification is off').waitFor();
		await page.getByPlaceholder('Your password').fill(PASSWORD);
		await page.getByRole('button', { name: 'List tokens' }).click();
		await page.getByRole('table', { name: 'Access tokens' }).waitFor();
		await screenshot(page, 'manage-12-account');
	});

	it('changes the password', async () => {
		const { page } = tab;
		await page.getByLabel('Current password', { exact: true }).fill(PASSWORD);
		await page.getByLabel('New password', { exact: true }).fill(`${PASSWORD}-2`);
		await page.getByLabel('Repeat the new password').fill(`${PASSWORD}-2`);
		await page.getByRole('button', { name: 'Change password' }).click();
		await page.getByText('Password changed').waitFor();
		await rest.passwordToken(server.url, EMAIL, `${PASSWORD}-2`);
	});

	it('sends the user back to sign-in when the token is revoked elsewhere', async () => {
		const { page } = tab;
		const t = await token();
		const res = await rest.request(server.url, 'DELETE', `/v1/access_tokens/${t}`);
		assert.equal(res.status, 200, rest.describe(res));
		await page.getByRole('link', { name: 'Products' }).click();
		await page.getByRole('heading', { name: 'Sign in' }).waitFor();
		await page.getByText('Your session ended').waitFor();
		assert.equal(await token(), null);
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill(`${PASSWORD}-2`);
		await page.getByRole('button', { name: 'Sign in' }).click();
		// Back where the user was going.
		await page.getByRole('heading', { name: 'Products' }).waitFor();
	});

	it('looks right in dark mode and on a phone', async () => {
		const t = await token();
		for (const [name, opts] of [['dark', { colorScheme: 'dark' }], ['phone', { viewport: { width: 390, height: 844 } }]]) {
			const other = await openPage(browser, opts);
			await other.page.goto(`${server.url}/console/`);
			await other.page.evaluate((tk) => { sessionStorage.setItem('wick.console.token', tk); sessionStorage.setItem('wick.console.user', 'grace@example.com'); }, t);
			await other.page.goto(`${server.url}/console/#/products/smart-lamp/devices`);
			await other.page.locator('tr[data-device="0123456789abcdef01234567"]').waitFor();
			await screenshot(other.page, `manage-13-${name}-product`);
			if (name === 'phone') {
				await other.page.getByRole('button', { name: 'Menu' }).click();
				await other.page.getByRole('link', { name: 'Events' }).waitFor();
				await screenshot(other.page, 'manage-14-phone-menu');
				const overflow = await other.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
				assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
			}
			noProblems(other.problems);
			await other.context.close();
		}
		noProblems(tab.problems);
	});
});
