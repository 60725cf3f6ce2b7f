'use strict';
// The AN032 example pages (examples/an032-pages) in a real browser, served from another
// origin than Wick's, as a developer would open them: password login with the one-time-code
// step, the LED page switching a `wick sim` device's LED, the sensor page drawing a live
// progress bar per device from the event stream, and logging out. Screenshots: an032-*.png.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { unavailable, launch, openPage, screenshot, noProblems } = require('../lib/browser');
const { startWick, REPO_ROOT } = require('../../lib/wick');
const { startSim, waitForDevices, waitUntil } = require('../../lib/sim');
const rest = require('../../lib/rest');
const { freshTotp } = require('../../lib/totp');

const skip = unavailable();
const EMAIL = 'kim@example.com';
const PASSWORD = 'blink an led 2024';
const PAGES = path.join(REPO_ROOT, 'examples', 'an032-pages');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

/** Serves examples/an032-pages on a free loopback port: another origin than Wick's. */
function servePages() {
	const srv = http.createServer((req, res) => {
		const name = path.basename(new URL(req.url, 'http://x').pathname);
		const file = path.join(PAGES, name);
		if (!TYPES[path.extname(name)] || !fs.existsSync(file)) {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { 'Content-Type': TYPES[path.extname(name)] });
		fs.createReadStream(file).pipe(res);
	});
	return new Promise((resolve) => {
		srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() }));
	});
}

describe('AN032 pages from another origin (examples/an032-pages)', { skip: skip || false }, () => {
	let server;
	let browser;
	let pages;
	let sim;
	let token;
	let secret;
	let tab;
	const used = new Set();

	before(async () => {
		server = await startWick({ signup: false });
		server.createUser(EMAIL, PASSWORD);
		token = (await rest.passwordToken(server.url, EMAIL, PASSWORD)).access_token;
		secret = await rest.enrolMfa(server.url, token, (s) => freshTotp(s, used));
		sim = startSim(server, { token, count: 2, idPrefix: 'a032', publish: 'sensorValueEvent', every: '300ms' });
		await waitForDevices(server, token, sim.ids, { sim });
		pages = await servePages();
		browser = await launch();
		tab = await openPage(browser);
	});

	after(async () => {
		if (sim) await sim.stop();
		if (pages) pages.close();
		if (browser) await browser.close();
		if (server) await server.stop();
	});

	it('logs in with the one-time-code step and switches the LED', async () => {
		const { page } = tab;
		await page.goto(`${pages.url}/led.html?api=${encodeURIComponent(server.url)}`);
		await page.getByRole('heading', { name: 'Log in to Wick' }).waitFor();
		assert.equal(await page.getByLabel('Wick URL').inputValue(), server.url);
		await page.getByLabel('Username (e-mail)').fill(EMAIL);
		await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
		await screenshot(page, 'an032-01-led-login');
		await page.getByRole('button', { name: 'Log in' }).click();
		await page.getByLabel('One-time password from your authenticator app').fill(await freshTotp(secret, used));
		await page.getByRole('button', { name: 'Log in' }).click();

		await page.getByText(`Logged in as ${EMAIL}`).waitFor();
		const options = await page.locator('#deviceSelect option').evaluateAll((els) => els.map((e) => e.value));
		assert.deepEqual(options.sort(), [...sim.ids].sort());
		const id = await page.getByLabel('Device').inputValue();

		await page.getByRole('button', { name: 'LED On' }).click();
		await page.getByText('Call completed (returned 1)').waitFor();
		let on = await rest.request(server.url, 'GET', `/v1/devices/${id}/on`, { token });
		assert.equal(on.body && on.body.result, true, rest.describe(on));
		await screenshot(page, 'an032-02-led-on');

		await page.getByRole('button', { name: 'LED Off' }).click();
		await page.getByText('Call completed (returned 0)').waitFor();
		on = await rest.request(server.url, 'GET', `/v1/devices/${id}/on`, { token });
		assert.equal(on.body && on.body.result, false, rest.describe(on));

		// The token is in sessionStorage only: a reload keeps the session.
		assert.equal(await page.evaluate(() => localStorage.length), 0);
		await page.reload();
		await page.getByText(`Logged in as ${EMAIL}`).waitFor();
		noProblems(tab.problems);
	});

	it('shows a live progress bar per device on the sensor page, then logs out', async () => {
		const { page } = tab;
		// Same origin and tab: the sensor page finds the session the LED page started.
		await page.goto(`${pages.url}/sensor.html?api=${encodeURIComponent(server.url)}`);
		await page.getByText(`Logged in as ${EMAIL}`).waitFor();
		for (const id of sim.ids) {
			await page.locator(`#prog${id}`).waitFor();
		}
		const first = await page.locator(`#prog${sim.ids[0]}`).evaluate((el) => el.value);
		await waitUntil(async () => (await page.locator(`#prog${sim.ids[0]}`).evaluate((el) => el.value)) !== first,
			'the first progress bar to move');
		const values = await page.locator('progress').evaluateAll((els) => els.map((e) => [e.max, e.value]));
		assert.equal(values.length, 2);
		for (const [max, value] of values) {
			assert.equal(max, 4095);
			assert.ok(value >= 0 && value <= 4095, `value ${value}`);
		}
		await screenshot(page, 'an032-03-sensor-live');

		const pageToken = await page.evaluate(() => sessionStorage.wickToken);
		await page.getByRole('button', { name: 'Log out' }).click();
		await page.getByRole('heading', { name: 'Log in to Wick' }).waitFor();
		assert.equal(await page.evaluate(() => sessionStorage.wickToken), undefined);
		const me = await rest.request(server.url, 'GET', '/v1/user', { token: pageToken });
		assert.equal(me.status, 401, `the page's token survived the log-out: ${rest.describe(me)}`);
		await screenshot(page, 'an032-04-logged-out');
		noProblems(tab.problems);
	});

	it('says so when the login fails', async () => {
		const fresh = await openPage(browser);
		const { page } = fresh;
		await page.goto(`${pages.url}/led.html?api=${encodeURIComponent(server.url)}`);
		await page.getByLabel('Username (e-mail)').fill(EMAIL);
		await page.getByLabel('Password', { exact: true }).fill('wrong password');
		await page.getByRole('button', { name: 'Log in' }).click();
		await page.getByRole('alert').getByText('User credentials are invalid').waitFor();
		await screenshot(page, 'an032-05-login-failed');
		noProblems(fresh.problems);
		await fresh.context.close();
	});
});
