// The console's entry point: the shell (navigation, account menu), the
// hash router (#/devices, #/products/widget/auth …) and the session checks.

import { session, onSessionExpired, del, get, finishCustomerSignIn } from './api.js';
import { h, mount, toast } from './ui.js';
import { signInPage } from './pages/signin.js';
import { devicesPage } from './pages/devices.js';
import { devicePage } from './pages/device.js';
import { eventsPage } from './pages/events.js';
import { productsPage, productPage } from './pages/products.js';
import { accountPage } from './pages/account.js';
import { clientsPage } from './pages/clients.js';
import { hooksPage } from './pages/hooks.js';

/** Routes: a pattern of hash segments (":x" captures one) and a page function. */
const ROUTES = [
	['devices', devicesPage, 'devices'],
	['devices/:id', devicePage, 'devices'],
	['events', eventsPage, 'events'],
	['products', productsPage, 'products'],
	['products/:p', productPage, 'products'],
	['products/:p/:tab', productPage, 'products'],
	['products/:p/devices/:id', devicePage, 'products'],
	['integrations', hooksPage, 'integrations'],
	['integrations/:hook', hooksPage, 'integrations'],
	['authentication', clientsPage, 'authentication'],
	['account', accountPage, 'account'],
];

/** What a product's customer may open: their devices, events and account. */
const CUSTOMER_SECTIONS = new Set(['devices', 'events', 'account']);

const NAV = [
	['devices', 'Devices'],
	['events', 'Events'],
	['products', 'Products'],
	['integrations', 'Integrations'],
	['authentication', 'Authentication'],
	['account', 'Account'],
];

const app = document.getElementById('app');
/** Cleanup of the current page (closes its event streams). */
let cleanup = null;

function match(path) {
	const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
	for (const [pattern, page, section] of ROUTES) {
		const want = pattern.split('/');
		if (want.length !== parts.length) {
			continue;
		}
		const params = {};
		let ok = true;
		want.forEach((w, i) => {
			if (w.startsWith(':')) {
				params[w.slice(1)] = parts[i];
			} else if (w !== parts[i]) {
				ok = false;
			}
		});
		if (ok) {
			return { page, params, section };
		}
	}
	return null;
}

/** Signs out: revokes the token on the server, then forgets it. */
async function signOut() {
	try {
		await del('/v1/access_tokens/current');
	} catch {
		// Already revoked or expired: forgetting it is all that is left.
	}
	const client = session.customer ? sessionStorage.getItem('wick.console.client') : null;
	session.clear();
	toast('Signed out');
	location.hash = client ? `#/signin?client=${encodeURIComponent(client)}` : '#/signin';
}

function shell(section, content) {
	const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
		NAV.filter(([id]) => !session.customer || CUSTOMER_SECTIONS.has(id)).map(([id, label]) => h('a', { href: `#/${id}`, class: ['nav-link', section === id && 'active'], 'aria-current': section === id ? 'page' : null }, label)));
	const menuBtn = h('button', { type: 'button', class: 'icon-btn nav-toggle', 'aria-label': 'Menu', 'aria-expanded': 'false' }, '☰');
	const side = h('aside', { class: 'side' }, h('a', { href: '#/devices', class: 'brand' }, h('img', { src: '/console/favicon.svg', alt: '', width: '28', height: '28' }), 'Wick'), nav);
	menuBtn.addEventListener('click', () => {
		const open = side.classList.toggle('open');
		menuBtn.setAttribute('aria-expanded', String(open));
	});
	nav.addEventListener('click', () => side.classList.remove('open'));
	const top = h('header', { class: 'top' }, menuBtn, h('div', { class: 'grow' }),
		h('span', { class: 'user muted', title: 'Signed in as' }, session.user),
		h('button', { type: 'button', class: 'btn small', onclick: signOut }, 'Sign out'));
	const main = h('main', { class: 'main', id: 'main' }, content);
	return h('div', { class: 'layout' }, h('a', { href: '#main', class: 'skip' }, 'Skip to content'), side, h('div', { class: 'content' }, top, main));
}

async function render() {
	if (cleanup) {
		cleanup();
		cleanup = null;
	}
	const full = location.hash.replace(/^#\/?/, '');
	const path = full.split('?')[0];
	if (!session.token) {
		if (!path.startsWith('signin')) {
			sessionStorage.setItem('wick.console.next', full);
		}
		mount(app, signInPage({ onDone: afterSignIn }));
		document.title = 'Sign in · Wick';
		return;
	}
	if (path === '' || path.startsWith('signin')) {
		location.replace('#/devices');
		return;
	}
	const m = match(path);
	if (!m) {
		mount(app, shell('', h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'Page not found'), h('a', { href: '#/devices', class: 'btn' }, 'Go to devices'))));
		return;
	}
	if (session.customer && (!CUSTOMER_SECTIONS.has(m.section) || m.params.p)) {
		// Products, integrations and clients are the product team's: a
		// customer's token cannot reach them, so the page is not offered.
		mount(app, shell('', h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, 'Not available to customers'),
			h('p', { class: 'muted' }, 'This part of the console is for the product\'s team.'),
			h('a', { href: '#/devices', class: 'btn' }, 'Go to your devices'))));
		return;
	}
	const container = h('div', { class: 'page' });
	mount(app, shell(m.section, container));
	const ctx = { params: m.params, onCleanup: (fn) => { const prev = cleanup; cleanup = () => { if (prev) prev(); fn(); }; } };
	document.title = `${NAV.find(([id]) => id === m.section)?.[1] || 'Wick'} · Wick`;
	try {
		await m.page(container, ctx);
	} catch (err) {
		mount(container, h('div', { class: 'alert', role: 'alert' }, err.message || String(err)));
	}
	const h1 = container.querySelector('h1');
	if (h1 && document.activeElement === document.body) {
		h1.focus({ preventScroll: true });
	}
}

async function afterSignIn() {
	const next = sessionStorage.getItem('wick.console.next');
	sessionStorage.removeItem('wick.console.next');
	const target = `#/${next && !next.startsWith('signin') ? next : 'devices'}`;
	if (location.hash === target) {
		render();
	} else {
		location.hash = target;
	}
}

onSessionExpired(() => {
	if (!session.token) {
		return;
	}
	session.clear();
	toast('Your session ended. Sign in again.', 'error');
	render();
});

window.addEventListener('hashchange', render);
// A customer coming back from Wick's sign-in page (?code=…): finish it first.
finishCustomerSignIn().then((signedIn) => {
	if (signedIn) {
		toast(`Signed in as ${session.user}`);
	} else if (session.token) {
		// A token from a closed tab may have been revoked: check it once at start.
		get('/v1/access_tokens/current').catch(() => {});
	}
}, (err) => {
	toast(err.message || String(err), 'error');
}).finally(render);
