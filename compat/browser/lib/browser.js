'use strict';
// Browser harness: playwright-core driving the system's Chromium (Debian's `chromium`
// package, /usr/bin/chromium, or WICK_CHROMIUM), never a downloaded browser. Each test
// file starts its own `wick serve` (lib/wick.js) and one browser; pages record console
// errors, failed requests and CSP violations so tests can assert that there were none.

const fs = require('node:fs');
const path = require('node:path');

const CHROMIUM = process.env.WICK_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT_DIR = path.join(__dirname, '..', 'screenshots');
const ACTION_TIMEOUT_MS = 15 * 1000;

/**
 * Returns null when the browser tests can run, else the reason they cannot. Under CI
 * (CI set) a missing Chromium is an error, thrown, never a skip.
 */
function unavailable() {
	let reason = null;
	if (!fs.existsSync(CHROMIUM)) {
		reason = `${CHROMIUM} is missing (apt-get install -y chromium, or set WICK_CHROMIUM)`;
	} else {
		try {
			require.resolve('playwright-core');
		} catch {
			reason = 'playwright-core is not installed (cd compat && npm ci --ignore-scripts)';
		}
	}
	if (reason && process.env.CI) {
		throw new Error(`compat/browser: ${reason}; browser tests are required in CI`);
	}
	return reason;
}

/** Launches headless Chromium. --no-sandbox: CI runs as root, where the sandbox cannot start. */
async function launch() {
	const { chromium } = require('playwright-core');
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
	});
}

/**
 * Opens a fresh context (own sessionStorage and cookies) and page. The returned
 * object's problems array collects console errors, uncaught page errors, CSP
 * violations and failed requests; tests assert it stays empty with noProblems().
 * opts: viewport ({width, height}), colorScheme ('light' | 'dark').
 */
async function openPage(browser, { viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
	const context = await browser.newContext({ viewport, colorScheme, acceptDownloads: false });
	context.setDefaultTimeout(ACTION_TIMEOUT_MS);
	await context.grantPermissions(['clipboard-read', 'clipboard-write']).catch(() => {});
	const page = await context.newPage();
	const problems = [];
	page.on('console', (msg) => {
		// Chromium logs every 4xx answer as "Failed to load resource"; the API's refusals
		// are part of the flows under test (wrong password, MFA required), so only other
		// errors count, plus any 5xx answer below.
		if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
			problems.push(`console: ${msg.text()}`);
		}
	});
	page.on('response', (res) => {
		if (res.status() >= 500) {
			problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
		}
	});
	page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
	page.on('requestfailed', (req) => {
		const why = req.failure() ? req.failure().errorText : '';
		// Event streams are aborted on purpose when a page changes or closes.
		if (!/ERR_ABORTED/.test(why)) {
			problems.push(`request failed: ${req.method()} ${req.url()} ${why}`);
		}
	});
	return { context, page, problems };
}

/**
 * Saves a full-page screenshot as compat/browser/screenshots/<name>.png (the directory
 * is ignored by git) and returns its path.
 */
async function screenshot(page, name) {
	fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
	const file = path.join(SCREENSHOT_DIR, `${name}.png`);
	await page.screenshot({ path: file, fullPage: true });
	return file;
}

/** Throws when problems (from openPage) holds anything, except entries matching allow. */
function noProblems(problems, allow = []) {
	const left = problems.filter((p) => !allow.some((re) => re.test(p)));
	if (left.length) {
		throw new Error(`compat/browser: the page reported problems:\n  ${left.join('\n  ')}`);
	}
}

module.exports = { CHROMIUM, SCREENSHOT_DIR, unavailable, launch, openPage, screenshot, noProblems };
