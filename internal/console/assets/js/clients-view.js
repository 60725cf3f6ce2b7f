// OAuth clients of the user or of a product: the Authentication view the
// authentication guide describes. Clients are created by type (simple auth
// web app, simple auth mobile app, two-legged server, or custom type and
// scope); the secret is shown once, with a copy button, and never again.

import { get, post, put, del, seg } from './api.js';
import { h, mount, loading, empty, dialog, confirmDialog, field, onSubmit, copyButton, toast, errorBox } from './ui.js';

/** The presets of the guide, for a product's clients. */
const PRODUCT_KINDS = [
	{ id: 'simple-web', label: 'Simple auth (web app)', type: 'web', scope: 'create_customer', text: 'A browser app that creates customers itself. Scoped to creating customers only; needs a redirect URI.' },
	{ id: 'simple-mobile', label: 'Simple auth (mobile app)', type: 'installed', scope: 'create_customer', text: 'A phone app that creates customers itself. Scoped to creating customers only.' },
	{ id: 'two-legged', label: 'Two-legged auth (server)', type: 'installed', scope: '', text: 'Your own back end: creates customers and mints customer-scoped tokens. Full access; keep the secret on the server.' },
	{ id: 'custom', label: 'Custom', type: '', scope: null, text: 'Choose the type and the scope yourself.' },
];
/** A user's clients act as the user: no customer presets. */
const USER_KINDS = [
	{ id: 'web', label: 'Web app', type: 'web', scope: '', text: 'A browser app that signs you in; needs a redirect URI.' },
	{ id: 'installed', label: 'Script, server or installed app', type: 'installed', scope: '', text: 'A program that holds its secret.' },
];
const SCOPES = [['', 'Full access (no scope)'], ['create_customer', 'Create customers only']];

function describeScope(scope) {
	if (!scope) return 'Full access';
	if (scope === 'create_customer' || scope === 'customers:create') return 'Create customers';
	return scope;
}

/** Renders the clients of base ('/v1/clients' or '/v1/products/P/clients') into root. */
export async function clientsView(root, base, { product } = {}) {
	const kinds = product ? PRODUCT_KINDS : USER_KINDS;
	const list = h('div', {}, loading('Loading clients…'));
	const newBtn = h('button', { type: 'button', class: 'btn primary' }, '+ New client');
	mount(root, h('div', { class: 'panel-head' }, h('div', {},
		h('h2', {}, 'OAuth clients'),
		h('p', { class: 'muted' }, product ? 'Credentials for your product\'s apps and servers: creating customers, and tokens for them.' : 'Credentials for your own apps and scripts. Tokens they get act as you.')),
	newBtn), list);

	async function load() {
		try {
			const res = await get(base);
			draw(res.clients || []);
		} catch (err) {
			mount(list, errorBox(err));
		}
	}

	function draw(clients) {
		if (!clients.length) {
			mount(list, empty('No clients yet', product ? 'Create one for your web app, mobile app or server.' : 'Create one for an app or script.', h('button', { type: 'button', class: 'btn primary', onclick: create }, '+ New client')));
			return;
		}
		mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'OAuth clients' },
			h('thead', {}, h('tr', {}, ['Name', 'Client ID', 'Type', 'Scope', 'Redirect URI', ''].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, clients.map((c) => h('tr', { dataset: { client: c.id } },
				h('td', {}, h('strong', {}, c.name)),
				h('td', { class: 'mono' }, c.id),
				h('td', {}, c.type === 'web' ? 'Web' : 'Installed'),
				h('td', {}, describeScope(c.scope)),
				h('td', { class: 'mono' }, c.redirect_uri || '—'),
				h('td', {}, h('div', { class: 'row end' },
					h('button', { type: 'button', class: 'btn small', onclick: () => edit(c), 'aria-label': `Edit ${c.name}` }, 'Edit'),
					h('button', { type: 'button', class: 'btn small danger', onclick: () => remove(c), 'aria-label': `Delete ${c.name}` }, 'Delete')))))))));
	}

	async function create() {
		const created = await dialog('New OAuth client', (close) => {
			const kind = h('div', { class: 'stack', role: 'radiogroup', 'aria-label': 'Client type' });
			const custom = h('div', { class: 'stack', hidden: true },
				field('Type', { name: 'type', as: 'select', options: [['installed', 'Installed (mobile app, script, server)'], ['web', 'Web (browser)']] }),
				field('Scope', { name: 'scope', as: 'select', options: SCOPES }));
			const redirect = field('Redirect URI', { name: 'redirect_uri', type: 'url', placeholder: 'https://app.example.com/setup', autocomplete: 'off' }, 'Where browsers are sent after signing in. Must match exactly.');
			redirect.hidden = true;
			kinds.forEach((k, i) => kind.appendChild(h('label', { class: 'check kind' },
				h('input', { type: 'radio', name: 'kind', value: k.id, checked: i === 0 }),
				h('span', {}, h('strong', {}, k.label), h('br'), h('span', { class: 'muted' }, k.text)))));
			const form = h('form', { class: 'stack' },
				field('Name', { name: 'name', required: true, maxlength: '100', autocomplete: 'off', placeholder: 'My app' }),
				kind, custom, redirect,
				h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Create client')));
			const sync = () => {
				const k = kinds.find((x) => x.id === form.kind.value) || kinds[0];
				custom.hidden = k.id !== 'custom';
				const type = k.id === 'custom' ? form.type.value : k.type;
				redirect.hidden = type !== 'web';
			};
			form.addEventListener('change', sync);
			sync();
			return onSubmit(form, async (v) => {
				const k = kinds.find((x) => x.id === v.kind) || kinds[0];
				const type = k.id === 'custom' ? v.type : k.type;
				const scope = k.id === 'custom' ? v.scope : k.scope;
				const body = { name: v.name.trim(), type };
				if (scope) body.scope = scope;
				if (type === 'web') body.redirect_uri = (v.redirect_uri || '').trim();
				if (!body.name) throw new Error('Give the client a name.');
				const res = await post(base, body);
				close(res.client);
			});
		});
		if (!created) return;
		await showSecret(created);
		load();
	}

	function showSecret(c) {
		return dialog('Client created', (close) => h('div', { class: 'stack' },
			h('p', {}, 'Copy the secret now. ', h('strong', {}, 'It is shown only this once'), ': Wick keeps only a hash of it. If you lose it, delete the client and create another.'),
			h('div', { class: 'field' }, h('span', { class: 'muted' }, 'Client ID'), h('div', { class: 'code-line' }, h('code', { class: 'client-id' }, c.id), copyButton(c.id))),
			h('div', { class: 'field secret' }, h('span', {}, h('strong', {}, 'Client secret')), h('div', { class: 'code-line' }, h('code', { class: 'client-secret' }, c.secret), copyButton(c.secret))),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn primary', onclick: () => close(true) }, 'I have copied the secret'))));
	}

	async function edit(c) {
		const saved = await dialog(`Edit ${c.name}`, (close) => onSubmit(h('form', { class: 'stack' },
			field('Name', { name: 'name', value: c.name, required: true, maxlength: '100' }),
			field('Scope', { name: 'scope', as: 'select', options: SCOPES, value: c.scope === 'customers:create' ? 'create_customer' : (c.scope || '') }),
			c.type === 'web' ? field('Redirect URI', { name: 'redirect_uri', type: 'url', value: c.redirect_uri || '', required: true }) : null,
			h('p', { class: 'muted' }, 'The type cannot change and the secret stays as it is.'),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Save'))), async (v) => {
			const body = { name: v.name.trim(), scope: v.scope || 'none' };
			if (c.type === 'web') body.redirect_uri = v.redirect_uri.trim();
			await put(`${base}/${seg(c.id)}`, body);
			close(true);
		}));
		if (saved) {
			toast('Client saved');
			load();
		}
	}

	async function remove(c) {
		if (!await confirmDialog(`Delete ${c.name}?`, 'Apps using this client stop working, and every token it issued is revoked at once.')) return;
		try {
			await del(`${base}/${seg(c.id)}`);
			toast('Client deleted');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}

	newBtn.addEventListener('click', create);
	await load();
}
