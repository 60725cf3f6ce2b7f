'use strict';
// Remembered consent, scope choice and the console of a product's customer, in a real
// browser. A developer allows an app once and the next sign-in goes straight back to it;
// the console's Account page lists the app and revoking it kills the app's token. A
// request for narrow scopes shows them in plain words with boxes to untick, and the token
// carries exactly what was kept. A customer signs in to the console through the product's
// web client (PKCE, no password in the console), sees their device, calls its function,
// watches its events, cannot reach the team's pages, and signs out. Every response is
// checked: normal navigation must not meet a 403. Screenshots: consent-*.png, customer-*.png.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { unavailable, launch, openPage, screenshot, noProblems } = require('../lib/browser');
const { startWick } = require('../../lib/wick');
const { startSim, waitForDevices } = require('../../lib/sim');
const rest = require('../../lib/rest');

const skip = unavailable();
const DEV = 'ada@example.com';
const DEV_PASSWORD = 'difference engine 1822';
const CUSTOMER = 'lin@example.com';
const CUSTOMER_PASSWORD = 'my lamp at home 1';

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** A PKCE verifier and its S256 challenge. */
function pkce() {
	const verifier = b64url(crypto.randomBytes(32));
	return { verifier, challenge: b64url(crypto.createHash('sha256').update(verifier).digest()) };
}

/** Collects every 4xx/5xx answer of the page (the browser helpers let 4xx pass). */
function watchErrors(page) {
	const seen = [];
	page.on('response', (res) => {
		if (res.status() >= 400) seen.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
	});
	return seen;
}

/** Signs in on Wick's page (the form is already shown). */
async function wickSignIn(page, email, password) {
	await page.getByLabel('E-mail').fill(email);
	await page.getByLabel('Password').fill(password);
	await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('remembered consent, scopes and the customer console', { skip: skip || false }, () => {
	let server;
	let browser;
	let sim;
	let devToken;
	let product;
	let appClient; // a user web client whose redirect URI is the console (it exists and ignores ?code)

	before(async () => {
		server = await startWick({ signup: false });
		server.createUser(DEV, DEV_PASSWORD);
		devToken = (await rest.passwordToken(server.url, DEV, DEV_PASSWORD)).access_token;
		const res = await rest.request(server.url, 'POST', '/v1/clients',
			{ token: devToken, json: { name: 'Lamp App', type: 'web', redirect_uri: `${server.url}/oauth-landing` } });
		assert.ok(res.status === 200 || res.status === 201, rest.describe(res));
		appClient = res.body.client.id;
		browser = await launch();
	});

	after(async () => {
		if (sim) await sim.stop();
		if (browser) await browser.close();
		if (server) await server.stop();
	});

	/** Opens the authorization URL of appClient and returns the PKCE pair used. */
	async function openAuthorize(page, params = {}) {
		const p = pkce();
		const q = new URLSearchParams({ response_type: 'code', client_id: appClient, redirect_uri: `${server.url}/oauth-landing`,
			state: 'st-1', code_challenge: p.challenge, code_challenge_method: 'S256', ...params });
		await page.goto(`${server.url}/oauth/authorize?${q}`);
		return p;
	}

	/** Waits until the browser lands on the redirect URI and returns its code. */
	async function landedCode(page) {
		await page.waitForURL((u) => u.pathname === '/oauth-landing');
		const u = new URL(page.url());
		assert.equal(u.searchParams.get('state'), 'st-1');
		assert.ok(u.searchParams.get('code'), `no code in ${u}`);
		return u.searchParams.get('code');
	}

	async function exchange(code, verifier) {
		const res = await rest.request(server.url, 'POST', '/oauth/token', { form: {
			grant_type: 'authorization_code', code, redirect_uri: `${server.url}/oauth-landing`, code_verifier: verifier, client_id: appClient } });
		assert.equal(res.status, 200, rest.describe(res));
		return res.body;
	}

	it('asks once, then a second sign-in skips the consent page; revoking in the console signs the app out', async () => {
		const tab = await openPage(browser);
		const { page } = tab;
		let p = await openAuthorize(page);
		await wickSignIn(page, DEV, DEV_PASSWORD);
		await page.getByRole('heading', { name: 'Allow Lamp App?' }).waitFor();
		await page.getByText('Wick remembers your answer').waitFor();
		await screenshot(page, 'consent-01-first-time');
		await page.getByRole('button', { name: 'Allow' }).click();
		const first = await exchange(await landedCode(page), p.verifier);
		await tab.context.close();

		// A fresh browser: password again, but no consent page.
		const tab2 = await openPage(browser);
		p = await openAuthorize(tab2.page);
		await wickSignIn(tab2.page, DEV, DEV_PASSWORD);
		const second = await exchange(await landedCode(tab2.page), p.verifier);
		assert.equal(second.scope, '*:*');
		// prompt=consent asks again.
		await openAuthorize(tab2.page, { prompt: 'consent' });
		await wickSignIn(tab2.page, DEV, DEV_PASSWORD);
		await tab2.page.getByRole('heading', { name: 'Allow Lamp App?' }).waitFor();
		await tab2.context.close();

		// The console lists the app; revoking it kills both of its tokens.
		const tab3 = await openPage(browser);
		const con = tab3.page;
		await con.goto(`${server.url}/console/#/account`);
		await con.getByLabel('Email').fill(DEV);
		await con.getByLabel('Password').fill(DEV_PASSWORD);
		await con.getByRole('button', { name: 'Sign in' }).click();
		const row = con.locator(`li.app-row[data-client="${appClient}"]`);
		await row.waitFor();
		assert.match(await row.textContent(), /Lamp App/);
		assert.match(await row.textContent(), /Everything your account can do/);
		await screenshot(con, 'consent-02-account-connected-apps');
		await row.getByRole('button', { name: 'Revoke' }).click();
		await con.locator('dialog').getByRole('button', { name: 'Revoke' }).click();
		await con.locator('#apps-empty').waitFor();
		await screenshot(con, 'consent-03-account-revoked');
		for (const tok of [first.access_token, second.access_token]) {
			const me = await rest.request(server.url, 'GET', '/v1/user', { token: tok });
			assert.equal(me.status, 401, `the revoked app's token still works: ${rest.describe(me)}`);
		}
		noProblems(tab3.problems);
		await tab3.context.close();
	});

	it('lists narrow scopes in plain words and issues exactly the ones kept', async () => {
		const tab = await openPage(browser);
		const { page } = tab;
		const p = await openAuthorize(page, { scope: 'products:list devices:list devices.function:call' });
		await wickSignIn(page, DEV, DEV_PASSWORD);
		await page.getByRole('heading', { name: 'Allow Lamp App?' }).waitFor();
		const box = page.getByRole('checkbox', { name: /Call functions on your products' devices/ });
		assert.equal(await box.isChecked(), true);
		await box.uncheck();
		await screenshot(page, 'consent-04-scopes');
		await page.getByRole('button', { name: 'Allow' }).click();
		const tok = await exchange(await landedCode(page), p.verifier);
		assert.equal(tok.scope, 'devices:list products:list');
		const products = await rest.request(server.url, 'GET', '/v1/products', { token: tok.access_token });
		assert.equal(products.status, 200, rest.describe(products));
		const clients = await rest.request(server.url, 'GET', '/v1/clients', { token: tok.access_token });
		assert.equal(clients.status, 400, `a devices/products token reached the clients: ${rest.describe(clients)}`);
		noProblems(tab.problems);
		await tab.context.close();
	});

	it('gives a product customer their own console: devices, functions, events, account, sign out', async () => {
		product = await rest.createProduct(server.url, devToken, 'Smart Lamp');
		const made = await rest.request(server.url, 'POST', `/v1/products/${product.id}/clients`,
			{ token: devToken, json: { name: 'Smart Lamp Console', type: 'web', redirect_uri: `${server.url}/console/` } });
		assert.ok(made.status === 200 || made.status === 201, rest.describe(made));
		const consoleClient = made.body.client.id;
		const cu = await rest.request(server.url, 'POST', `/v1/products/${product.id}/customers`,
			{ token: devToken, form: { email: CUSTOMER, password: CUSTOMER_PASSWORD } });
		assert.ok(cu.status === 200 || cu.status === 201, rest.describe(cu));

		const tab = await openPage(browser);
		const { page } = tab;
		const errors = watchErrors(page);
		await page.goto(`${server.url}/console/#/signin?client=${encodeURIComponent(consoleClient)}`);
		await page.getByRole('button', { name: 'Continue to sign in' }).waitFor();
		await screenshot(page, 'customer-01-sign-in');
		await page.getByRole('button', { name: 'Continue to sign in' }).click();
		await page.getByText('with your Smart Lamp account').waitFor();
		await wickSignIn(page, CUSTOMER, CUSTOMER_PASSWORD);
		await page.getByRole('heading', { name: 'Allow Smart Lamp Console?' }).waitFor();
		await page.getByRole('button', { name: 'Allow' }).click();
		await page.getByRole('heading', { name: 'Devices' }).waitFor();
		assert.equal(new URL(page.url()).search, '', 'the code stays in the address bar');
		// Only the customer's sections are offered.
		const nav = await page.locator('nav.nav').textContent();
		assert.match(nav, /Devices/);
		assert.doesNotMatch(nav, /Products|Integrations|Authentication/);
		await page.getByText('No devices').first().waitFor();
		await screenshot(page, 'customer-02-no-devices');

		// Claim a device with a claim code: the code goes to the device during its setup.
		await page.getByRole('button', { name: '+ Add device' }).click();
		await page.getByRole('button', { name: 'Get a claim code' }).click();
		const code = (await page.locator('code.claim-code').textContent()).trim();
		assert.ok(code.length > 10, `claim code ${code}`);
		await screenshot(page, 'customer-03-claim-code');
		await page.keyboard.press('Escape');
		sim = startSim(server, { token: devToken, count: 1, idPrefix: 'cafe', product: product.id, claimCode: code, publish: 'lamp', every: '700ms' });
		const customerToken = await page.evaluate(() => sessionStorage.getItem('wick.console.token'));
		await waitForDevices(server, customerToken, sim.ids, { owner: CUSTOMER, sim });
		const row = page.locator(`tr[data-device="${sim.ids[0]}"]`);
		await row.getByText('Online').waitFor({ timeout: 30000 });
		await screenshot(page, 'customer-04-devices');

		// The device page: call led, read the variable, see its events; no Flash button.
		await row.locator('a').click();
		await page.getByRole('heading', { name: 'Functions' }).waitFor();
		assert.equal(await page.getByRole('button', { name: 'Flash', exact: true }).isVisible(), false);
		const led = page.locator('form[data-function="led"]');
		await led.getByRole('textbox').fill('on');
		await led.getByRole('button', { name: 'Call' }).click();
		await led.locator('.return-value').waitFor();
		assert.equal(await led.locator('.return-value').textContent(), '1');
		await page.getByRole('button', { name: 'Refresh on' }).click();
		await page.waitForFunction(() => document.querySelector('[data-variable="on"]').textContent === 'true');
		await page.locator('.event[data-name="lamp"]').first().waitFor();
		await screenshot(page, 'customer-05-device');
		// The owner's controls work for a customer too: rename, notes, signal.
		await page.getByRole('button', { name: 'Rename' }).click();
		await page.locator('dialog').getByLabel('Name').fill('hall_lamp');
		await page.locator('dialog').getByRole('button', { name: 'Save' }).click();
		await page.getByRole('heading', { name: 'hall_lamp' }).waitFor();
		await page.getByPlaceholder('Where it is, what it does…').fill('By the front door');
		await page.getByRole('button', { name: 'Save notes' }).click();
		await page.getByRole('button', { name: 'Signal' }).click();
		await page.getByText('The device is shouting rainbows').waitFor();

		await page.getByRole('link', { name: 'Events' }).click();
		await page.locator('.event[data-name="lamp"]').first().waitFor();
		await screenshot(page, 'customer-06-events');

		await page.getByRole('link', { name: 'Account' }).click();
		await page.getByText('You are signed in as a customer').waitFor();
		await page.locator('li.app-row[data-client]').first().waitFor();
		await screenshot(page, 'customer-07-account');

		// A team page typed into the address bar: a plain explanation, no API call refused.
		await page.goto(`${server.url}/console/#/products`);
		await page.getByText('Not available to customers').waitFor();
		await screenshot(page, 'customer-08-team-page');

		assert.deepEqual(errors, [], `normal navigation met refusals: ${errors.join(', ')}`);
		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.getByRole('button', { name: 'Continue to sign in' }).waitFor();
		const after = await rest.request(server.url, 'GET', '/v1/devices', { token: customerToken });
		assert.equal(after.status, 401, rest.describe(after));
		noProblems(tab.problems);
		await tab.context.close();
	});
});
