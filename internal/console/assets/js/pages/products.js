// Products: the list and creation; a product's devices (with import by IDs
// or file and live online state), customers, team and invitations, claim
// codes, webhooks and its Authentication view (OAuth clients).

import { get, post, put, del, seg, stream, request } from '../api.js';
import { h, mount, loading, empty, pageHead, dialog, confirmDialog, field, onSubmit, toast, errorBox, ago, statusBadge, platformName, PLATFORM_OPTIONS, copyButton, showStreamState } from '../ui.js';
import { clientsView } from '../clients-view.js';
import { hooksView } from '../hooks-view.js';

export async function productsPage(root) {
	const list = h('div', {}, loading('Loading products…'));
	const newBtn = h('button', { type: 'button', class: 'btn primary' }, '+ New product');
	mount(root, pageHead('Products', 'Fleets of devices with their own customers, team, webhooks and OAuth clients.', newBtn), list);
	newBtn.addEventListener('click', async () => {
		const made = await dialog('New product', (close) => onSubmit(h('form', { class: 'stack' },
			field('Name', { name: 'name', required: true, maxlength: '100', autocomplete: 'off', placeholder: 'Smart lamp' }),
			field('Device type', { name: 'platform_id', as: 'select', options: PLATFORM_OPTIONS, value: '12' }, 'Every device of the product is of this platform.'),
			field('Description', { name: 'description', as: 'textarea', maxlength: '1000' }),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Create product'))), async (v) => {
			if (!v.name.trim()) throw new Error('Give the product a name.');
			const res = await post('/v1/user/products', { product: { name: v.name.trim(), platform_id: Number(v.platform_id), description: v.description } });
			close(res.product);
		}));
		if (made) {
			toast('Product created');
			location.hash = `#/products/${made.slug}`;
		}
	});
	let res;
	try {
		res = await get('/v1/user/products');
	} catch (err) {
		mount(list, errorBox(err));
		return;
	}
	const products = res.products || [];
	if (!products.length) {
		mount(list, empty('No products yet', 'A product groups devices of one platform that you sell or deploy, with their customers.', h('button', { type: 'button', class: 'btn primary', onclick: () => newBtn.click() }, '+ New product')));
		return;
	}
	mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Products' },
		h('thead', {}, h('tr', {}, ['Name', 'ID', 'Slug', 'Platform', 'Owner'].map((t) => h('th', { scope: 'col' }, t)))),
		h('tbody', {}, products.map((p) => h('tr', { dataset: { product: p.slug } },
			h('td', {}, h('a', { href: `#/products/${p.slug}` }, p.name), p.description ? h('div', { class: 'muted' }, p.description.slice(0, 80)) : null),
			h('td', { class: 'mono' }, String(p.id)),
			h('td', { class: 'mono' }, p.slug),
			h('td', {}, platformName(p.platform_id)),
			h('td', {}, p.user || '')))))));
}

const TABS = [['devices', 'Devices'], ['firmware', 'Firmware'], ['customers', 'Customers'], ['team', 'Team'], ['claim', 'Claim codes'], ['integrations', 'Integrations'], ['auth', 'Authentication']];

export async function productPage(root, ctx) {
	const slug = ctx.params.p;
	let tab = ctx.params.tab || 'devices';
	let hookId = '';
	if (tab.startsWith('integrations:')) {
		hookId = tab.slice('integrations:'.length);
		tab = 'integrations';
	}
	mount(root, loading('Loading product…'));
	let product;
	try {
		product = (await get(`/v1/products/${seg(slug)}`)).product;
	} catch (err) {
		mount(root, h('p', {}, h('a', { href: '#/products' }, '← Products')), errorBox(err));
		return;
	}
	const base = `/v1/products/${seg(product.slug)}`;
	const body = h('div', { class: 'tab-body' });
	mount(root,
		h('p', {}, h('a', { href: '#/products' }, '← Products')),
		pageHead(product.name, `${platformName(product.platform_id)} · product ${product.id} · ${product.slug}`),
		h('nav', { class: 'tabs', 'aria-label': 'Product sections' }, TABS.map(([id, label]) => h('a', { href: `#/products/${product.slug}/${id}`, class: ['tab', tab === id && 'active'], 'aria-current': tab === id ? 'page' : null }, label))),
		body);
	const views = { devices: devicesTab, firmware: firmwareTab, customers: customersTab, team: teamTab, claim: claimTab, integrations: hooksTab, auth: authTab };
	await (views[tab] || devicesTab)(body, { product, base, ctx, hookId });
}

async function devicesTab(root, { product, base, ctx }) {
	const list = h('div', {}, loading('Loading devices…'));
	const state = h('span', { class: 'stream-state muted' }, '');
	const search = h('input', { type: 'search', placeholder: 'Search by device ID or name', 'aria-label': 'Search product devices' });
	const importBtn = h('button', { type: 'button', class: 'btn primary' }, 'Import devices');
	const panel = h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Devices'), h('div', { class: 'row' }, state, importBtn)), h('div', { class: 'toolbar' }, search), list);
	mount(root, panel);
	let devices = [];
	let timer = null;

	async function load() {
		const q = new URLSearchParams({ per_page: '100' });
		const text = search.value.trim();
		if (/^[0-9a-f]{6,24}$/i.test(text)) q.set('deviceId', text);
		else if (text) q.set('deviceName', text);
		try {
			const res = await get(`${base}/devices?${q}`);
			devices = res.devices || [];
			draw(res.meta || {});
		} catch (err) {
			mount(list, errorBox(err));
		}
	}
	function draw(meta) {
		if (!devices.length) {
			mount(list, search.value.trim() ? empty('No device matches', 'Try another ID or name.') : empty('No devices in this product yet', 'Import device IDs, or provision devices into the product (wick sim --product, particle keys send).'));
			return;
		}
		mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Product devices', class: 'product-devices-table' },
			h('thead', {}, h('tr', {}, ['Device ID', 'Name', 'Status', 'Owner', 'Firmware', 'Last heard', ''].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, devices.map((d) => h('tr', { dataset: { device: d.id } },
				h('td', { class: 'mono' }, h('a', { href: `#/products/${product.slug}/devices/${d.id}` }, d.id)),
				h('td', {}, d.name || h('span', { class: 'muted' }, '—')),
				h('td', {}, statusBadge(d.online), d.quarantined ? h('span', { class: 'badge badge-warn' }, 'Quarantined') : null, d.denied ? h('span', { class: 'badge badge-off' }, 'Denied') : null),
				h('td', {}, d.owner || h('span', { class: 'muted' }, 'unclaimed')),
				h('td', {}, d.firmware_version === null ? '—' : String(d.firmware_version)),
				h('td', {}, ago(d.last_heard)),
				h('td', {}, h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Remove ${d.id}`, onclick: () => removeDevice(d) }, 'Remove'))))))),
		meta.total > devices.length ? h('p', { class: 'muted' }, `Showing ${devices.length} of ${meta.total}. Search to narrow down.`) : null);
	}
	async function removeDevice(d) {
		if (!await confirmDialog('Remove from product?', `${d.id} leaves ${product.name}. A customer who owns it loses it.`, 'Remove')) return;
		try {
			await del(`${base}/devices/${seg(d.id)}`);
			toast('Device removed');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}
	search.addEventListener('input', () => {
		clearTimeout(timer);
		timer = setTimeout(load, 250);
	});
	importBtn.addEventListener('click', async () => {
		const result = await dialog('Import devices', (close) => onSubmit(h('form', { class: 'stack' },
			field('Device IDs', { name: 'ids', as: 'textarea', rows: '5', placeholder: 'One 24-character device ID per line', spellcheck: 'false' }),
			field('…or a file', { name: 'file', type: 'file', accept: '.txt,.csv,text/plain,text/csv' }, 'A text or CSV file with one device ID per line (first column).'),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Import'))), async (v, form) => {
			const fd = new FormData();
			const file = form.file.files[0];
			if (file) {
				fd.append('file', file, file.name);
			} else if (v.ids.trim()) {
				fd.append('file', new Blob([v.ids.trim() + '\n'], { type: 'text/plain' }), 'devices.txt');
			} else {
				throw new Error('Paste device IDs or choose a file.');
			}
			close(await request('POST', `${base}/devices`, fd));
		}));
		if (!result) return;
		const bad = (result.invalidDeviceIds || []).length + (result.nonmemberDeviceIds || []).length;
		toast(`Imported ${result.updated || 0} device(s)${bad ? `; ${bad} refused` : ''}`, bad ? 'error' : 'ok');
		if (bad) {
			await dialog('Some devices were not imported', (close) => h('div', { class: 'stack' },
				(result.invalidDeviceIds || []).length ? h('p', {}, 'Not device IDs, or in another product or platform: ', h('code', {}, result.invalidDeviceIds.join(', '))) : null,
				(result.nonmemberDeviceIds || []).length ? h('p', {}, 'Owned by users outside the team: ', h('code', {}, result.nonmemberDeviceIds.join(', '))) : null,
				h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn primary', onclick: () => close() }, 'OK'))));
		}
		load();
	});
	await load();
	const close = stream(`${base}/events/spark/status`, {
		onEvent(ev) {
			const d = devices.find((x) => x.id === ev.coreid);
			if (d && (ev.data === 'online' || ev.data === 'offline')) {
				d.online = ev.data === 'online';
				d.last_heard = ev.published_at;
				const row = list.querySelector(`tr[data-device="${d.id}"] td:nth-child(3)`);
				if (row) mount(row, statusBadge(d.online));
			} else if (!d) {
				load();
			}
		},
		onState: (s, detail) => showStreamState(state, s, detail),
	});
	ctx.onCleanup(close);
}

async function customersTab(root, { base }) {
	const list = h('div', {}, loading('Loading customers…'));
	const addBtn = h('button', { type: 'button', class: 'btn primary' }, '+ New customer');
	mount(root, h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('div', {}, h('h2', {}, 'Customers'), h('p', { class: 'muted' }, 'People who own your product\'s devices. Usually your app creates them.')), addBtn), list));
	let page = 1;
	async function load() {
		try {
			const res = await get(`${base}/customers?page=${page}&per_page=50`);
			const customers = res.customers || [];
			if (!customers.length && page === 1) {
				mount(list, empty('No customers yet', 'Your app creates them with a product OAuth client; you can add one here too.'));
				return;
			}
			const meta = res.meta || {};
			mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Customers' },
				h('thead', {}, h('tr', {}, ['Customer', 'Devices', ''].map((t) => h('th', { scope: 'col' }, t)))),
				h('tbody', {}, customers.map((c) => h('tr', { dataset: { customer: c.username } },
					h('td', {}, c.username),
					h('td', { class: 'mono' }, (c.devices || []).join(', ') || h('span', { class: 'muted' }, 'none')),
					h('td', {}, h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete ${c.username}`, onclick: () => remove(c) }, 'Delete')))))))),
			meta.total_pages > 1 ? h('div', { class: 'row end pager' },
				h('button', { type: 'button', class: 'btn small', disabled: page <= 1, onclick: () => { page--; load(); } }, 'Previous'),
				h('span', { class: 'muted' }, `Page ${page} of ${meta.total_pages}`),
				h('button', { type: 'button', class: 'btn small', disabled: page >= meta.total_pages, onclick: () => { page++; load(); } }, 'Next')) : null);
		} catch (err) {
			mount(list, errorBox(err));
		}
	}
	async function remove(c) {
		if (!await confirmDialog(`Delete ${c.username}?`, 'The customer\'s tokens stop working and their devices become unclaimed.')) return;
		try {
			await del(`${base}/customers/${seg(c.username)}`);
			toast('Customer deleted');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}
	addBtn.addEventListener('click', async () => {
		const made = await dialog('New customer', (close) => onSubmit(h('form', { class: 'stack' },
			field('Email', { name: 'email', type: 'email', required: true, autocomplete: 'off' }),
			field('Password (optional)', { name: 'password', type: 'password', autocomplete: 'new-password' }, 'Without one the customer is a shadow customer: only your server gets tokens for it (two-legged auth).'),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Create customer'))), async (v) => {
			const body = { email: v.email.trim() };
			if (v.password) body.password = v.password;
			else body.no_password = true;
			const res = await post(`${base}/customers`, body);
			// Creating a customer answers a token for it; the console has no use for it.
			if (res && res.access_token) {
				await del(`/v1/access_tokens/${seg(res.access_token)}`, { auth: false }).catch(() => {});
			}
			close(true);
		}));
		if (made) {
			toast('Customer created');
			load();
		}
	});
	await load();
}

const ROLES = [['administrator', 'Administrator'], ['developer', 'Developer'], ['support', 'Support'], ['view-only', 'View-only']];

async function teamTab(root, { base }) {
	const members = h('div', {}, loading('Loading team…'));
	const invites = h('div', {});
	const inviteBtn = h('button', { type: 'button', class: 'btn primary' }, 'Invite');
	mount(root, h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Team'), inviteBtn), members), h('section', { class: 'panel' }, h('h2', {}, 'Pending invitations'), invites));
	async function load() {
		try {
			const [team, inv] = await Promise.all([get(`${base}/team`), get(`${base}/team/invites`)]);
			mount(members, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Team members' },
				h('thead', {}, h('tr', {}, ['Member', 'Role', ''].map((t) => h('th', { scope: 'col' }, t)))),
				h('tbody', {}, (team.team || []).map((m) => h('tr', {},
					h('td', {}, m.username, m.is_programmatic || /@api\.wick\.local$/.test(m.username) ? h('span', { class: 'type' }, 'API user') : null),
					h('td', {}, m.role ? m.role.name : ''),
					h('td', {}, m.role && m.role.id === 'owner' ? null : h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn small danger', onclick: () => remove(m.username, 'Remove') }, 'Remove')))))))));
			const pending = inv.invites || [];
			mount(invites, pending.length ? h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Pending invitations' },
				h('thead', {}, h('tr', {}, ['Invited', 'Role', 'By', 'Expires', ''].map((t) => h('th', { scope: 'col' }, t)))),
				h('tbody', {}, pending.map((i) => h('tr', {},
					h('td', {}, i.username), h('td', {}, i.role ? i.role.name : ''), h('td', {}, i.invited_by || ''), h('td', {}, new Date(i.expires_at).toLocaleDateString()),
					h('td', {}, h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn small danger', onclick: () => remove(i.username, 'Withdraw') }, 'Withdraw')))))))) : h('p', { class: 'muted' }, 'No pending invitations.'));
		} catch (err) {
			mount(members, errorBox(err));
		}
	}
	async function remove(username, verb) {
		if (!await confirmDialog(`${verb} ${username}?`, verb === 'Remove' ? 'They lose access to the product at once.' : 'The invitation stops working.', verb)) return;
		try {
			await del(`${base}/team/${seg(username)}`);
			toast(verb === 'Remove' ? 'Member removed' : 'Invitation withdrawn');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}
	inviteBtn.addEventListener('click', async () => {
		const res = await dialog('Invite to the team', (close) => onSubmit(h('form', { class: 'stack' },
			field('Email', { name: 'username', type: 'email', required: true, autocomplete: 'off' }),
			field('Role', { name: 'role', as: 'select', options: ROLES, value: 'developer' }),
			h('p', { class: 'muted' }, 'The invitation grants nothing until that person accepts it while signed in as that address.'),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Invite'))), async (v) => {
			close(await post(`${base}/team`, { username: v.username.trim(), role: v.role }));
		}));
		if (!res) return;
		if (res.invite_token) {
			await dialog('Invitation created', (close) => h('div', { class: 'stack' },
				h('p', {}, 'This server sends no e-mail. Give this invitation code to ', h('strong', {}, res.invited.username), ' over a channel you trust; they accept it on their Account page.'),
				h('div', { class: 'code-line' }, h('code', {}, res.invite_token), copyButton(res.invite_token)),
				h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn primary', onclick: () => close() }, 'Done'))));
		} else {
			toast('Invitation sent');
		}
		load();
	});
	await load();
}

async function claimTab(root, { base, product }) {
	const out = h('div', { class: 'stack' });
	const btn = h('button', { type: 'button', class: 'btn primary' }, 'Create claim code');
	mount(root, h('section', { class: 'panel' }, h('h2', {}, 'Claim codes'),
		h('p', {}, `A claim code lets a device join ${product.name} and, when a customer creates it, that customer. The device reports the code when it connects (device setup). Each code claims one device and lasts 24 hours.`),
		h('div', { class: 'row' }, btn), out));
	btn.addEventListener('click', async () => {
		btn.disabled = true;
		try {
			const res = await post(`${base}/device_claims`);
			out.prepend(h('div', { class: 'code-line' }, h('code', { class: 'claim-code' }, res.claim_code), copyButton(res.claim_code)));
		} catch (err) {
			out.prepend(errorBox(err));
		} finally {
			btn.disabled = false;
		}
	});
}

async function hooksTab(root, { product, hookId }) {
	await hooksView(root, `/v1/products/${seg(product.slug)}/integrations`, { hrefFor: (id) => `#/products/${product.slug}/integrations${id ? `:${id}` : ''}`, selected: hookId });
}

async function authTab(root, { product }) {
	const view = h('section', { class: 'panel' });
	mount(root, view);
	await clientsView(view, `/v1/products/${seg(product.slug)}/clients`, { product });
}


/** Size in KiB or MiB. */
function bytes(n) {
	return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.max(1, Math.round(n / 1024))} KiB`;
}

async function firmwareTab(root, { product, base }) {
	const list = h('div', {}, loading('Loading firmware…'));
	const uploadBtn = h('button', { type: 'button', class: 'btn primary' }, 'Upload firmware');
	mount(root, h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('div', {}, h('h2', {}, 'Firmware'),
		h('p', { class: 'muted' }, 'Versions of your product\'s application. The released version goes to every device of the product over the air.')), uploadBtn), list));

	async function load() {
		let versions;
		try {
			versions = await get(`${base}/firmware`);
		} catch (err) {
			mount(list, errorBox(err));
			return;
		}
		if (!versions.length) {
			mount(list, empty('No firmware yet', `Upload a binary compiled for ${platformName(product.platform_id)} with PRODUCT_VERSION set (and product ID ${product.id}).`, h('button', { type: 'button', class: 'btn primary', onclick: upload }, 'Upload firmware')));
			return;
		}
		mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Firmware versions' },
			h('thead', {}, h('tr', {}, ['Version', 'Title', 'Size', 'Devices running it', 'Uploaded', 'State', ''].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, versions.map((f) => h('tr', { dataset: { version: String(f.version) } },
				h('td', {}, h('strong', {}, String(f.version))),
				h('td', {}, f.title, f.description ? h('div', { class: 'muted' }, f.description.slice(0, 100)) : null),
				h('td', {}, bytes(f.size)),
				h('td', {}, String(f.device_count ?? 0)),
				h('td', {}, ago(f.uploaded_on || f.uploaded_at), f.uploaded_by ? h('div', { class: 'muted' }, f.uploaded_by.username) : null),
				h('td', {}, f.product_default ? h('span', { class: 'badge badge-on' }, 'Released') : h('span', { class: 'badge badge-off' }, 'Not released')),
				h('td', {}, h('div', { class: 'row end' },
					f.product_default
						? h('button', { type: 'button', class: 'btn small', onclick: () => release(f, false) }, 'Withdraw')
						: [h('button', { type: 'button', class: 'btn small primary', onclick: () => release(f, true) }, 'Release'),
							h('button', { type: 'button', class: 'btn small danger', 'aria-label': `Delete version ${f.version}`, onclick: () => remove(f) }, 'Delete')]))))))));
	}

	async function release(f, on) {
		const text = on
			? `Version ${f.version} becomes the product's firmware: devices that run another version get it over the air as they come online, a few at a time.`
			: `Version ${f.version} stops being sent. Devices keep what they run.`;
		if (!await confirmDialog(on ? `Release version ${f.version}?` : `Withdraw version ${f.version}?`, text, on ? 'Release' : 'Withdraw')) return;
		try {
			const res = await put(`${base}/firmware/release`, { version: f.version, product_default: on });
			toast(on ? `Released; ${res.devices_queued || 0} device(s) queued for the update` : 'Release withdrawn');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}

	async function remove(f) {
		if (!await confirmDialog(`Delete version ${f.version}?`, 'The binary is deleted from the server.')) return;
		try {
			await del(`${base}/firmware/${f.version}`);
			toast('Version deleted');
			load();
		} catch (err) {
			toast(err.message, 'error');
		}
	}

	async function upload() {
		const made = await dialog('Upload firmware', (close) => onSubmit(h('form', { class: 'stack' },
			field('Binary', { name: 'file', type: 'file', accept: '.bin,application/octet-stream', required: true }, `Compiled for ${platformName(product.platform_id)}, with this product's ID and the version below inside.`),
			field('Version', { name: 'version', type: 'number', min: '1', max: '65535', required: true }),
			field('Title', { name: 'title', required: true, maxlength: '100' }),
			field('Description', { name: 'description', as: 'textarea', maxlength: '1000' }),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Upload'))), async (v, form) => {
			const file = form.file.files[0];
			if (!file) throw new Error('Choose the binary.');
			const fd = new FormData();
			fd.append('version', v.version);
			fd.append('title', v.title.trim());
			fd.append('description', v.description);
			fd.append('file', file, file.name);
			close(await request('POST', `${base}/firmware`, fd));
		}));
		if (made) {
			toast(`Version ${made.version} uploaded`);
			load();
		}
	}

	uploadBtn.addEventListener('click', upload);
	await load();
}
