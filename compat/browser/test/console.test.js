'use strict';
// The console in a real browser: first-run page, sign-in with MFA, devices coming online
// live, a function call changing a variable, live events, sign-out. Every page is saved as
// a screenshot in compat/browser/screenshots/.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { unavailable, launch, openPage, screenshot, noProblems } = require('../lib/browser');
const { startWick } = require('../../lib/wick');
const { startSim, waitForDevices } = require('../../lib/sim');
const rest = require('../../lib/rest');
const { freshTotp } = require('../../lib/totp');
const { userPart } = require('../lib/module');

const skip = unavailable();
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';

describe('console: sign-in with MFA, devices, functions, events', { skip: skip || false }, () => {
	let server;
	let browser;
	let tab;
	let sim;
	let secret;
	const used = new Set();

	before(async () => {
		server = await startWick({ signup: false });
		browser = await launch();
		tab = await openPage(browser);
	});

	after(async () => {
		if (sim) await sim.stop();
		if (browser) await browser.close();
		if (server) await server.stop();
	});

	it('serves the console at /console/ with a strict CSP, and leaves API paths to the API', async () => {
		const html = await fetch(`${server.url}/`, { headers: { Accept: 'text/html' }, redirect: 'manual' });
		assert.equal(html.status, 302);
		assert.equal(html.headers.get('location'), '/console/');
		const api = await rest.request(server.url, 'GET', '/');
		assert.equal(api.status, 404, rest.describe(api));
		assert.deepEqual(api.body, { ok: false, error: 'Not Found' });
		const page = await fetch(`${server.url}/console/`);
		assert.equal(page.status, 200);
		assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
		assert.match(await page.text(), /<div id="app"/);
	});

	it('shows the first-run help when sign-up is closed', async () => {
		const { page } = tab;
		await page.goto(`${server.url}/`);
		await page.getByRole('heading', { name: 'Sign in' }).waitFor();
		assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.name), 'username', 'the email field starts with the focus');
		await page.getByText('No account yet?').click();
		await page.getByText('wick user create you@example.com').waitFor();
		await screenshot(page, '01-signin-first-run');
	});

	it('signs in with a password and a one-time code', async () => {
		server.createUser(EMAIL, PASSWORD);
		const tok = await rest.passwordToken(server.url, EMAIL, PASSWORD);
		secret = await rest.enrolMfa(server.url, tok.access_token, (s) => freshTotp(s, used));
		const { page } = tab;
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill('wrong password');
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('alert').waitFor();
		await screenshot(page, '02-signin-error');
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
		await screenshot(page, '03-signin-otp');
		// Keyboard only: the code field has the focus, Enter submits.
		assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('autocomplete')), 'one-time-code');
		await page.keyboard.type(await freshTotp(secret, used));
		await page.keyboard.press('Enter');
		await page.getByRole('heading', { name: 'Devices' }).waitFor();
		await page.getByText('No devices yet').waitFor();
		await screenshot(page, '04-devices-empty');
		// Add a device: a claim code, and a claim by ID that the server refuses.
		await page.getByRole('button', { name: '+ Add device' }).click();
		await page.getByRole('button', { name: 'Get a claim code' }).click();
		assert.equal((await page.locator('dialog code.claim-code').textContent()).length, 63);
		await page.getByLabel('Device ID').fill('0123456789abcdef0123ffff');
		await page.getByRole('button', { name: 'Claim', exact: true }).click();
		await page.locator('dialog').getByRole('alert').waitFor();
		await screenshot(page, '04b-add-device');
		await page.keyboard.press('Escape');
		await page.locator('dialog').waitFor({ state: 'detached' });
		const stored = await page.evaluate(() => Object.keys(sessionStorage));
		assert.ok(stored.includes('wick.console.token'), `sessionStorage keys: ${stored}`);
		const local = await page.evaluate(() => localStorage.length);
		assert.equal(local, 0, 'the token must not reach localStorage');
	});

	it('shows a simulated device come online without a reload', async () => {
		const { page } = tab;
		const token = await page.evaluate(() => sessionStorage.getItem('wick.console.token'));
		sim = startSim(server, { token, count: 1, idPrefix: 'c0de', publish: 'sensor', every: '700ms' });
		await waitForDevices(server, token, sim.ids, { sim });
		const row = page.locator(`tr[data-device="${sim.ids[0]}"]`);
		await row.getByText('Online').waitFor();
		await screenshot(page, '05-devices-online');
	});

	it('calls a function and sees the variable change', async () => {
		const { page } = tab;
		await page.locator(`tr[data-device="${sim.ids[0]}"] a`).click();
		await page.getByRole('heading', { name: 'Functions' }).waitFor();
		const on = page.locator('[data-variable="on"]');
		await page.getByRole('button', { name: 'Refresh on' }).click();
		await page.waitForFunction(() => document.querySelector('[data-variable="on"]').textContent === 'false');
		const led = page.locator('form[data-function="led"]');
		await led.getByRole('textbox').fill('on');
		await led.getByRole('button', { name: 'Call' }).click();
		await led.locator('.return-value').waitFor();
		assert.equal(await led.locator('.return-value').textContent(), '1');
		await page.getByRole('button', { name: 'Refresh on' }).click();
		await page.waitForFunction(() => document.querySelector('[data-variable="on"]').textContent === 'true');
		assert.equal(await on.textContent(), 'true');
		await page.locator('.event[data-name="sensor"]').first().waitFor();
		await screenshot(page, '06-device');
	});

	it('watches live events with a prefix filter, pause and raw JSON', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Events' }).click();
		await page.getByRole('heading', { name: 'Events' }).waitFor();
		await page.getByLabel('Event name prefix').fill('sensor');
		await page.getByRole('button', { name: 'Apply' }).click();
		const first = page.locator('.event[data-name="sensor"]').first();
		await first.waitFor();
		await first.locator('summary').click();
		const raw = JSON.parse(await first.locator('pre.raw').textContent());
		assert.equal(raw.event, 'sensor');
		assert.equal(raw.coreid, sim.ids[0]);
		await page.getByRole('button', { name: 'Pause' }).click();
		const n = await page.locator('.event').count();
		await page.waitForTimeout(2000);
		assert.equal(await page.locator('.event').count(), n, 'no event may be added while paused');
		await page.getByText(/new while paused/).waitFor();
		await screenshot(page, '07-events');
		assert.match(page.url(), /#\/events\?prefix=sensor$/, 'the filter is in the address');
		await page.getByRole('button', { name: 'Resume' }).click();
		await page.waitForFunction((k) => document.querySelectorAll('.event').length > k, n);
		// A reload keeps the filter.
		await page.reload();
		assert.equal(await page.getByLabel('Event name prefix').inputValue(), 'sensor');
		await page.locator('.event[data-name="sensor"]').first().waitFor();
	});

	it('flashes firmware to the device and shows the update in its live events', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Devices' }).click();
		await page.locator(`tr[data-device="${sim.ids[0]}"] a`).click();
		await page.getByRole('heading', { name: 'Functions' }).waitFor();
		await page.getByRole('button', { name: 'Flash', exact: true }).click();
		// 0xFFFF: not a product binary.
		await page.getByLabel('Binary').setInputFiles({ name: 'app.bin', mimeType: 'application/octet-stream', buffer: userPart({ platform: 6, productId: 0xffff, version: 0xffff }) });
		await page.locator('dialog').getByRole('button', { name: 'Flash' }).click();
		await page.getByText('Update started').waitFor();
		await page.locator('.event[data-name="spark/flash/status"]', { hasText: 'success' }).waitFor({ timeout: 60000 });
		await screenshot(page, '06b-device-flashed');
	});

	it('shows the device go offline without a reload', async () => {
		const { page } = tab;
		await page.getByRole('link', { name: 'Devices', exact: true }).click();
		const row = page.locator(`tr[data-device="${sim.ids[0]}"]`);
		await row.getByText('Online').waitFor();
		await page.getByText('● Live').waitFor();
		await sim.stop();
		sim = null;
		await row.getByText('Offline').waitFor();
		await screenshot(page, '08-devices-offline');
	});

	it('signs out and revokes the token', async () => {
		const { page } = tab;
		const token = await page.evaluate(() => sessionStorage.getItem('wick.console.token'));
		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.getByRole('heading', { name: 'Sign in' }).waitFor();
		const res = await rest.request(server.url, 'GET', '/v1/user', { token });
		assert.equal(res.status, 401, rest.describe(res));
		noProblems(tab.problems, [/401 \(Unauthorized\)/]);
	});
});
