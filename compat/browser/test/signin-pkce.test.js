'use strict';
// The browser sign-in (GET /oauth/authorize) in a real browser, through the example app
// examples/pkce-app: a developer with MFA signs in to a user web client, and a product's
// customer signs in to the product's web client. Neither page ever sees a password; the app
// exchanges the code with its PKCE verifier and no secret. Screenshots: signin-pkce-*.png.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { unavailable, launch, openPage, screenshot, noProblems } = require('../lib/browser');
const { startWick, freePort, sleep, REPO_ROOT } = require('../../lib/wick');
const rest = require('../../lib/rest');
const { freshTotp } = require('../../lib/totp');

const skip = unavailable();
const EMAIL = 'grace@example.com';
const PASSWORD = 'analytical engine 1843';
const CUSTOMER = 'buyer@example.com';
const CUSTOMER_PASSWORD = 'widget owner pass';

/** Builds examples/pkce-app once into dir and returns the binary's path. */
function buildApp(dir) {
	const out = path.join(dir, 'pkce-app');
	const res = spawnSync('go', ['build', '-o', out, './examples/pkce-app'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 10 * 60 * 1000 });
	if (res.status !== 0) {
		throw new Error(`go build ./examples/pkce-app failed:\n${res.stdout}${res.stderr}${res.error || ''}`);
	}
	return out;
}

/** Starts the app for clientId on port and waits until it answers. */
async function startApp(bin, port, wickUrl, clientId) {
	const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--wick', wickUrl, '--client-id', clientId],
		{ stdio: ['ignore', 'ignore', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d) => { stderr += d; });
	const url = `http://127.0.0.1:${port}`;
	const deadline = Date.now() + 15000;
	for (;;) {
		try {
			const res = await fetch(`${url}/config.json`);
			if (res.ok) return { url, stop: () => child.kill('SIGTERM') };
		} catch { /* not yet */ }
		if (Date.now() > deadline || child.exitCode !== null) {
			child.kill('SIGKILL');
			throw new Error(`pkce-app did not start: ${stderr}`);
		}
		await sleep(100);
	}
}

/** Creates a web client at path (user or product clients) and returns its id. */
async function webClient(server, token, apiPath, name, redirect) {
	const res = await rest.request(server.url, 'POST', apiPath, { token, json: { name, type: 'web', redirect_uri: redirect } });
	assert.ok(res.status === 200 || res.status === 201, rest.describe(res));
	return res.body.client.id;
}

describe('browser sign-in with PKCE (examples/pkce-app)', { skip: skip || false }, () => {
	let server;
	let browser;
	let binDir;
	let bin;
	const apps = [];
	let token;
	let secret;
	const used = new Set();

	before(async () => {
		server = await startWick({ signup: false });
		server.createUser(EMAIL, PASSWORD);
		token = (await rest.passwordToken(server.url, EMAIL, PASSWORD)).access_token;
		secret = await rest.enrolMfa(server.url, token, (s) => freshTotp(s, used));
		binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wick-pkce-app-'));
		bin = buildApp(binDir);
		browser = await launch();
	});

	after(async () => {
		for (const app of apps) app.stop();
		if (browser) await browser.close();
		if (server) await server.stop();
		if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
	});

	it('signs a developer in with the one-time-code step and consent, then signs out', async () => {
		const port = await freePort();
		const clientId = await webClient(server, token, '/v1/clients', 'Lamp App', `http://127.0.0.1:${port}/callback`);
		const app = await startApp(bin, port, server.url, clientId);
		apps.push(app);
		const tab = await openPage(browser);
		const { page } = tab;

		await page.goto(app.url);
		await page.getByText('You are not signed in.').waitFor();
		await page.getByRole('button', { name: 'Sign in with Wick' }).click();

		// Wick's own page, on Wick's origin.
		await page.getByRole('heading', { name: 'Sign in' }).waitFor();
		assert.equal(new URL(page.url()).origin, server.url);
		await page.getByText('to continue to Lamp App').waitFor();
		await screenshot(page, 'signin-pkce-01-wick-sign-in');
		await page.getByLabel('E-mail').fill(EMAIL);
		await page.getByLabel('Password').fill('not the password');
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('alert').getByText('The e-mail or password is not right.').waitFor();
		await screenshot(page, 'signin-pkce-02-wrong-password');

		await page.getByLabel('E-mail').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
		await screenshot(page, 'signin-pkce-03-one-time-code');
		await page.getByLabel('Code').fill(await freshTotp(secret, used));
		await page.getByRole('button', { name: 'Verify' }).click();

		await page.getByRole('heading', { name: 'Allow Lamp App?' }).waitFor();
		await page.getByText(`Signed in as ${EMAIL}`).waitFor();
		await screenshot(page, 'signin-pkce-04-consent');
		await page.getByRole('button', { name: 'Allow' }).click();

		// Back in the app: the code was exchanged and removed from the address bar.
		await page.getByText(`Signed in as ${EMAIL}.`).waitFor();
		assert.equal(page.url(), `${app.url}/`);
		const appToken = await page.evaluate(() => sessionStorage.token);
		const me = await rest.request(server.url, 'GET', '/v1/user', { token: appToken });
		assert.equal(me.status, 200, rest.describe(me));
		assert.equal(me.body.username, EMAIL);
		await screenshot(page, 'signin-pkce-05-signed-in');

		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.getByText('You are not signed in.').waitFor();
		const after = await rest.request(server.url, 'GET', '/v1/user', { token: appToken });
		assert.equal(after.status, 401, rest.describe(after));
		noProblems(tab.problems);
		await tab.context.close();
	});

	it('sends the user back with access_denied when they deny', async () => {
		// A client this user never allowed: Lamp App's consent is remembered now, so its
		// next sign-in would skip the page (consent-customer.test.js).
		const port = await freePort();
		const clientId = await webClient(server, token, '/v1/clients', 'Lamp App', `http://127.0.0.1:${port}/callback`);
		const app = await startApp(bin, port, server.url, clientId);
		apps.push(app);
		const tab = await openPage(browser, { colorScheme: 'dark' });
		const { page } = tab;
		await page.goto(app.url);
		await page.getByRole('button', { name: 'Sign in with Wick' }).click();
		await page.getByLabel('E-mail').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByLabel('Code').fill(await freshTotp(secret, used));
		await page.getByRole('button', { name: 'Verify' }).click();
		await page.getByRole('heading', { name: 'Allow Lamp App?' }).waitFor();
		await screenshot(page, 'signin-pkce-06-consent-dark');
		await page.getByRole('button', { name: 'Deny' }).click();
		await page.getByText('Sign-in refused: The user denied the request').waitFor();
		noProblems(tab.problems);
		await tab.context.close();
	});

	it('signs a product customer in to the product web client', async () => {
		const product = await rest.createProduct(server.url, token, 'Widget');
		const port = await freePort();
		const clientId = await webClient(server, token, `/v1/products/${product.id}/clients`, 'Widget Home',
			`http://127.0.0.1:${port}/callback`);
		const made = await rest.request(server.url, 'POST', `/v1/products/${product.id}/customers`,
			{ token, form: { email: CUSTOMER, password: CUSTOMER_PASSWORD } });
		assert.ok(made.status === 200 || made.status === 201, rest.describe(made));
		const app = await startApp(bin, port, server.url, clientId);
		apps.push(app);
		const tab = await openPage(browser, { viewport: { width: 390, height: 844 } });
		const { page } = tab;

		await page.goto(app.url);
		await page.getByRole('button', { name: 'Sign in with Wick' }).click();
		await page.getByText('to continue to Widget Home, with your Widget account').waitFor();
		await screenshot(page, 'signin-pkce-07-customer-sign-in-phone');
		// The developer is not a customer of the product.
		await page.getByLabel('E-mail').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('alert').waitFor();
		await page.getByLabel('E-mail').fill(CUSTOMER);
		await page.getByLabel('Password').fill(CUSTOMER_PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('heading', { name: 'Allow Widget Home?' }).waitFor();
		await screenshot(page, 'signin-pkce-08-customer-consent-phone');
		await page.getByRole('button', { name: 'Allow' }).click();
		await page.getByText(`Signed in as ${CUSTOMER}.`).waitFor();
		await screenshot(page, 'signin-pkce-09-customer-signed-in-phone');

		const appToken = await page.evaluate(() => sessionStorage.token);
		const current = await rest.request(server.url, 'GET', '/v1/access_tokens/current', { token: appToken });
		assert.equal(current.status, 200, rest.describe(current));
		const products = await rest.request(server.url, 'GET', `/v1/products/${product.id}/customers`, { token: appToken });
		assert.equal(products.status, 403, `a customer token reached team routes: ${rest.describe(products)}`);
		noProblems(tab.problems);
		await tab.context.close();
	});
});
