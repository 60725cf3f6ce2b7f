// One device: facts (handshake, firmware), functions with a call form and
// the return value, typed variables with refresh, rename, notes, signal,
// ping, unclaim and its live events.

import { get, put, post, del, seg, stream, request, session } from '../api.js';
import { h, mount, loading, ago, statusBadge, platformName, toast, dialog, confirmDialog, field, onSubmit, errorBox, showStreamState } from '../ui.js';
import { eventList } from '../events-view.js';

export async function devicePage(root, ctx) {
	const id = ctx.params.id;
	// A product's device (#/products/P/devices/ID) goes through the product's routes, which
	// team members may use whoever owns the device; a user's own device through /v1/devices.
	const product = ctx.params.p || '';
	const backHref = product ? `#/products/${product}/devices` : '#/devices';
	const backText = product ? '← Product devices' : '← Devices';
	const root0 = product ? `/v1/products/${seg(product)}/devices/` : '/v1/devices/';
	mount(root, loading('Loading device…'));
	let d;
	try {
		d = await get(`${root0}${seg(id)}`);
	} catch (err) {
		mount(root, h('p', {}, h('a', { href: backHref }, backText)), errorBox(err));
		return;
	}
	const base = `${root0}${seg(d.id)}`;
	const badge = h('span', {}, statusBadge(d.online));
	const title = h('h1', { tabindex: '-1' }, d.name || d.id);
	let signalOn = false;
	const signalBtn = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false' }, 'Signal');
	const facts = h('dl', { class: 'facts' });

	function drawFacts() {
		mount(facts,
			h('dt', {}, 'Device ID'), h('dd', { class: 'mono' }, d.id),
			h('dt', {}, 'Platform'), h('dd', {}, platformName(d.platform_id)),
			h('dt', {}, 'Owner'), h('dd', {}, d.owner || '—'),
			d.product_id && d.product_id !== d.platform_id ? [h('dt', {}, 'Product'), h('dd', {}, String(d.product_id))] : null,
			h('dt', {}, 'Last handshake'), h('dd', {}, ago(d.last_handshake_at)),
			h('dt', {}, 'Last heard'), h('dd', {}, ago(d.last_heard)),
			h('dt', {}, 'Last IP address'), h('dd', { class: 'mono' }, d.last_ip_address || '—'),
			h('dt', {}, 'Device OS'), h('dd', {}, d.system_firmware_version || '—'),
			h('dt', {}, 'Firmware version'), h('dd', {}, d.firmware_version === null || d.firmware_version === undefined ? '—' : String(d.firmware_version)),
			h('dt', {}, 'Connection'), h('dd', {}, d.cellular ? 'Cellular' : 'Wi-Fi / Ethernet'));
	}
	drawFacts();

	async function update(body, message) {
		const res = await put(base, body);
		Object.assign(d, body);
		if (message) toast(message);
		return res;
	}

	signalBtn.addEventListener('click', async () => {
		try {
			await update({ signal: signalOn ? 0 : 1 });
			signalOn = !signalOn;
			signalBtn.setAttribute('aria-pressed', String(signalOn));
			signalBtn.textContent = signalOn ? 'Stop signal' : 'Signal';
			toast(signalOn ? 'The device is shouting rainbows' : 'Signal stopped');
		} catch (err) {
			toast(err.message, 'error');
		}
	});

	const pingBtn = h('button', { type: 'button', class: 'btn' }, 'Ping');
	pingBtn.addEventListener('click', async () => {
		pingBtn.disabled = true;
		try {
			const res = await put(`${base}/ping`);
			d.online = !!res.online;
			mount(badge, statusBadge(d.online));
			toast(res.online ? 'The device answered' : 'The device did not answer', res.online ? 'ok' : 'error');
		} catch (err) {
			toast(err.message, 'error');
		} finally {
			pingBtn.disabled = false;
		}
	});

	const renameBtn = h('button', { type: 'button', class: 'btn' }, 'Rename');
	renameBtn.addEventListener('click', () => dialog('Rename device', (close) => onSubmit(h('form', { class: 'stack' },
		field('Name', { name: 'name', value: d.name || '', required: true, maxlength: '63', pattern: '[A-Za-z0-9_\\-]+', autocomplete: 'off' }, 'Letters, digits, _ and -; unique among your devices.'),
		h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Save'))), async (v) => {
		await update({ name: v.name.trim() }, 'Renamed');
		title.textContent = d.name;
		close(true);
	})));

	const flashBtn = h('button', { type: 'button', class: 'btn' }, 'Flash');
	// A product's firmware is the team's to ship: customers do not flash.
	flashBtn.hidden = session.customer;
	flashBtn.addEventListener('click', () => dialog('Flash firmware', (close) => onSubmit(h('form', { class: 'stack' },
		h('p', {}, `Sends a compiled binary to ${d.name || d.id} over the air. The device restarts into it; its progress shows in the live events (spark/flash/status).`),
		field('Binary', { name: 'file', type: 'file', accept: '.bin,application/octet-stream', required: true }, 'A user part (or system part) compiled for this device\'s platform. Source code is not compiled.'),
		h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Flash'))), async (v, form) => {
		const file = form.file.files[0];
		if (!file) throw new Error('Choose the binary.');
		const fd = new FormData();
		fd.append('file', file, file.name);
		const res = await request('PUT', base, fd);
		toast(res && res.status ? res.status : 'Update started');
		close(true);
	})));

	const unclaimBtn = h('button', { type: 'button', class: 'btn danger' }, product ? 'Unclaim owner' : 'Unclaim');
	unclaimBtn.hidden = product && !d.owner;
	unclaimBtn.addEventListener('click', async () => {
		const text = product
			? `${d.owner} will no longer own ${d.name || d.id}. It stays in the product.`
			: `${d.name || d.id} will no longer belong to your account. It keeps its name and notes; anyone with a claim code can claim it.`;
		if (!await confirmDialog('Unclaim this device?', text, 'Unclaim')) return;
		try {
			await del(product ? `${base}/owner` : base);
			toast('Device unclaimed');
			location.hash = backHref;
		} catch (err) {
			toast(err.message, 'error');
		}
	});

	// Functions
	const fnPanel = h('section', { class: 'panel', 'aria-labelledby': 'fn-h' }, h('h2', { id: 'fn-h' }, 'Functions'));
	const functions = d.functions || [];
	if (!functions.length) {
		fnPanel.appendChild(h('p', { class: 'muted' }, 'This device has described no functions.'));
	}
	for (const name of functions) {
		const result = h('div', { class: 'result muted', role: 'status' }, '');
		const form = h('form', { class: 'fn-row', dataset: { function: name } },
			h('label', { class: 'fn-name', for: `fn-${name}` }, name),
			h('input', { id: `fn-${name}`, name: 'arg', placeholder: 'Argument', autocomplete: 'off' }),
			h('button', { type: 'submit', class: 'btn primary' }, 'Call'),
			result);
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			const btn = form.querySelector('button');
			btn.disabled = true;
			result.className = 'result muted';
			result.textContent = 'Calling…';
			const started = performance.now();
			try {
				const res = await post(`${base}/${seg(name)}`, { arg: form.arg.value });
				result.className = 'result';
				result.replaceChildren('Returned ', h('strong', { class: 'return-value' }, String(res.return_value)), h('span', { class: 'muted' }, ` in ${Math.round(performance.now() - started)} ms`));
			} catch (err) {
				result.className = 'result alert';
				result.textContent = err.message;
			} finally {
				btn.disabled = false;
			}
		});
		fnPanel.appendChild(form);
	}

	// Variables
	const vars = Object.entries(d.variables || {});
	const varPanel = h('section', { class: 'panel', 'aria-labelledby': 'var-h' });
	const refreshers = [];
	const refreshAll = h('button', { type: 'button', class: 'btn small', onclick: () => refreshers.forEach((f) => f()) }, 'Refresh all');
	varPanel.appendChild(h('div', { class: 'panel-head' }, h('h2', { id: 'var-h' }, 'Variables'), vars.length ? refreshAll : null));
	if (!vars.length) {
		varPanel.appendChild(h('p', { class: 'muted' }, 'This device has described no variables.'));
	}
	for (const [name, type] of vars) {
		const value = h('span', { class: 'var-value mono', dataset: { variable: name } }, '—');
		const btn = h('button', { type: 'button', class: 'btn small', 'aria-label': `Refresh ${name}` }, 'Refresh');
		const status = h('div', { class: 'result muted' }, '');
		const refresh = async () => {
			btn.disabled = true;
			status.textContent = 'Reading…';
			try {
				const res = await get(`${base}/${seg(name)}`);
				value.textContent = typeof res.result === 'string' ? res.result : JSON.stringify(res.result);
				status.textContent = `Read ${new Date().toLocaleTimeString()}`;
				status.className = 'result muted';
			} catch (err) {
				status.textContent = err.message;
				status.className = 'result alert';
			} finally {
				btn.disabled = false;
			}
		};
		btn.addEventListener('click', refresh);
		refreshers.push(refresh);
		varPanel.appendChild(h('div', { class: 'fn-row' }, h('span', { class: 'fn-name' }, name, h('span', { class: 'type' }, type)), value, btn, status));
	}

	// Notes
	const notes = h('textarea', { id: 'notes', name: 'notes', maxlength: '10000', rows: '4', placeholder: 'Where it is, what it does…' });
	notes.value = d.notes || '';
	const notesForm = onSubmit(h('form', { class: 'panel stack' }, h('h2', {}, h('label', { for: 'notes' }, 'Notes')), notes,
		h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn' }, 'Save notes'))), async () => {
		await update({ notes: notes.value }, 'Notes saved');
	});

	// Events
	const events = eventList({ max: 100, emptyText: 'Events this device publishes appear here.' });
	const streamState = h('span', { class: 'stream-state muted' }, '');
	const pause = h('button', { type: 'button', class: 'btn small', 'aria-pressed': 'false' }, 'Pause');
	pause.addEventListener('click', () => {
		events.setPaused(!events.paused);
		pause.textContent = events.paused ? 'Resume' : 'Pause';
		pause.setAttribute('aria-pressed', String(events.paused));
	});

	mount(root,
		h('p', {}, h('a', { href: backHref }, backText)),
		h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'row' }, title, badge), h('p', { class: 'muted mono' }, d.id)),
			h('div', { class: 'row' }, pingBtn, signalBtn, flashBtn, renameBtn, unclaimBtn)),
		h('div', { class: 'grid2' },
			h('div', { class: 'col' }, fnPanel, varPanel),
			h('div', { class: 'col' }, h('section', { class: 'panel', 'aria-labelledby': 'facts-h' }, h('h2', { id: 'facts-h' }, 'Details'), facts), notesForm)),
		h('section', { class: 'panel', 'aria-labelledby': 'ev-h' }, h('div', { class: 'panel-head' }, h('h2', { id: 'ev-h' }, 'Live events'), h('div', { class: 'row' }, streamState, pause)), events.el));

	if (d.online) {
		refreshers.forEach((f) => f());
	}
	const close = stream(`${base}/events`, {
		onEvent(ev) {
			events.add(ev);
			if (ev.name === 'spark/status' && (ev.data === 'online' || ev.data === 'offline')) {
				d.online = ev.data === 'online';
				mount(badge, statusBadge(d.online));
				if (d.online) {
					// A device coming back may bring new firmware: re-read its facts.
					get(base).then((fresh) => { Object.assign(d, fresh); drawFacts(); }).catch(() => {});
				}
			}
		},
		onState: (s, detail) => showStreamState(streamState, s, detail),
	});
	ctx.onCleanup(close);
}
