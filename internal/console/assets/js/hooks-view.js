// Webhooks (integrations) of the user or of a product: list, create, test,
// enable/disable, delete, and each hook's delivery log (status, latency,
// response).

import { get, post, put, del, seg } from './api.js';
import { h, mount, loading, empty, dialog, confirmDialog, field, onSubmit, toast, errorBox, ago } from './ui.js';

/** Renders the hooks under base ('/v1/integrations' or '/v1/products/P/integrations'). */
export async function hooksView(root, base, { hrefFor, selected } = {}) {
	const list = h('div', {}, loading('Loading webhooks…'));
	const detail = h('div', { class: 'detail-slot' });
	const newBtn = h('button', { type: 'button', class: 'btn primary' }, '+ New webhook');
	mount(root, h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('div', {}, h('h2', {}, 'Webhooks'),
		h('p', { class: 'muted' }, 'Each matching event is sent to your URL. The delivery log shows what came back.')), newBtn), list), detail);

	async function load() {
		let hooks;
		try {
			hooks = await get(base);
		} catch (err) {
			mount(list, errorBox(err));
			return;
		}
		if (!hooks.length) {
			mount(list, empty('No webhooks yet', 'Send events to your own server, a spreadsheet or a chat.', h('button', { type: 'button', class: 'btn primary', onclick: create }, '+ New webhook')));
			mount(detail);
			return;
		}
		mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Webhooks' },
			h('thead', {}, h('tr', {}, ['Name', 'Event prefix', 'Request', 'State', 'Created'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, hooks.map((k) => h('tr', { dataset: { hook: k.id } },
				h('td', {}, h('a', { href: hrefFor(k.id) }, k.name || k.event)),
				h('td', { class: 'mono' }, k.event),
				h('td', { class: 'mono' }, `${k.requestType || 'POST'} ${k.url}`),
				h('td', {}, k.disabled ? h('span', { class: 'badge badge-off' }, 'Disabled') : h('span', { class: 'badge badge-on' }, 'Active')),
				h('td', {}, ago(k.created_at))))))));
		if (selected) {
			showDetail(selected);
		}
	}

	async function showDetail(id) {
		mount(detail, h('section', { class: 'panel' }, loading('Loading webhook…')));
		let hook;
		let deliveries;
		try {
			[hook, deliveries] = await Promise.all([get(`${base}/${seg(id)}`), get(`${base}/${seg(id)}/deliveries?limit=50`)]);
		} catch (err) {
			mount(detail, h('section', { class: 'panel' }, errorBox(err)));
			return;
		}
		const k = hook.integration || hook;
		const rows = (deliveries.deliveries || []);
		const testBtn = h('button', { type: 'button', class: 'btn' }, 'Send test');
		testBtn.addEventListener('click', async () => {
			testBtn.disabled = true;
			try {
				const res = await post(`${base}/${seg(id)}/test`);
				toast(res.pass ? 'Test delivered' : `Test failed: ${res.error || 'no answer'}`, res.pass ? 'ok' : 'error');
				showDetail(id);
			} catch (err) {
				toast(err.message, 'error');
			} finally {
				testBtn.disabled = false;
			}
		});
		const toggle = h('button', { type: 'button', class: 'btn' }, k.disabled ? 'Enable' : 'Disable');
		toggle.addEventListener('click', async () => {
			try {
				const conf = { ...k };
				for (const f of ['id', 'created_at', 'updated_at', 'logs', 'hookUrl', 'integrationUrl', 'ok', 'signed', 'counters']) delete conf[f];
				conf.disabled = !k.disabled;
				await put(`${base}/${seg(id)}`, conf);
				toast(conf.disabled ? 'Webhook disabled' : 'Webhook enabled');
				load();
				showDetail(id);
			} catch (err) {
				toast(err.message, 'error');
			}
		});
		const delBtn = h('button', { type: 'button', class: 'btn danger' }, 'Delete');
		delBtn.addEventListener('click', async () => {
			if (!await confirmDialog('Delete this webhook?', 'Events stop going to its URL. Its delivery log is deleted too.')) return;
			try {
				await del(`${base}/${seg(id)}`);
				toast('Webhook deleted');
				location.hash = hrefFor('').replace(/\/$/, '');
				mount(detail);
				load();
			} catch (err) {
				toast(err.message, 'error');
			}
		});
		const shown = { ...k };
		delete shown.logs;
		mount(detail, h('section', { class: 'panel', 'aria-labelledby': 'hook-h' },
			h('div', { class: 'panel-head' }, h('h2', { id: 'hook-h' }, k.name || k.event), h('div', { class: 'row' }, testBtn, toggle, delBtn)),
			h('details', {}, h('summary', {}, 'Configuration'), h('pre', {}, JSON.stringify(shown, null, 2))),
			h('h3', { class: 'section-title' }, 'Deliveries'),
			rows.length ? h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Deliveries' },
				h('thead', {}, h('tr', {}, ['Time', 'Event', 'Attempt', 'Status', 'Latency', 'Response or error'].map((t) => h('th', { scope: 'col' }, t)))),
				h('tbody', {}, rows.map((r) => h('tr', {},
					h('td', {}, ago(r.time)),
					h('td', { class: 'mono' }, r.event || ''),
					h('td', {}, String(r.attempt ?? '')),
					h('td', {}, h('span', { class: ['badge', r.status >= 200 && r.status < 300 ? 'badge-on' : 'badge-off'] }, r.status ? String(r.status) : 'no answer')),
					h('td', {}, r.latency_ms === undefined ? '' : `${r.latency_ms} ms`),
					h('td', {}, r.error ? h('span', { class: 'alert-text' }, r.error) : h('code', {}, String(r.response || '').slice(0, 200)))))))) : h('p', { class: 'muted' }, 'No deliveries yet. Publish a matching event or send a test.')));
	}

	async function create() {
		const made = await dialog('New webhook', (close) => onSubmit(h('form', { class: 'stack' },
			field('Name', { name: 'name', autocomplete: 'off', placeholder: 'Temperature to my server' }),
			field('Event prefix', { name: 'event', required: true, autocomplete: 'off', placeholder: 'temp' }, 'Events whose name starts with this.'),
			field('URL', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/hook' }),
			field('Method', { name: 'requestType', as: 'select', options: [['POST', 'POST'], ['PUT', 'PUT'], ['GET', 'GET'], ['DELETE', 'DELETE']] }),
			field('Device (optional)', { name: 'deviceID', autocomplete: 'off', placeholder: 'Any device' }),
			field('JSON body (optional)', { name: 'json', as: 'textarea', placeholder: '{"value": "{{PARTICLE_EVENT_VALUE}}"}' }, 'Leave empty for the default form body.'),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Create webhook'))), async (v) => {
			const body = { integration_type: 'Webhook', event: v.event.trim(), url: v.url.trim(), requestType: v.requestType };
			if (v.name.trim()) body.name = v.name.trim();
			if (v.deviceID.trim()) body.deviceID = v.deviceID.trim();
			if (v.json.trim()) {
				try {
					body.json = JSON.parse(v.json);
				} catch {
					throw new Error('The JSON body is not valid JSON.');
				}
			}
			const res = await post(base, body);
			close(res);
		}), { wide: true });
		if (made) {
			toast('Webhook created');
			location.hash = hrefFor(made.id);
		}
	}

	newBtn.addEventListener('click', create);
	await load();
}
