// Devices: the signed-in user's devices, with live online state from the
// spark/status events of the user's event stream (no polling), a search box
// and filters.

import { get, post, stream, session } from '../api.js';
import { h, mount, empty, loading, ago, statusBadge, platformName, pageHead, errorBox, showStreamState, dialog, field, onSubmit, copyButton, toast } from '../ui.js';

export async function devicesPage(root, ctx) {
	const list = h('div', { class: 'device-list' }, loading('Loading devices…'));
	const state = h('span', { class: 'stream-state muted', role: 'status' }, '');
	const search = h('input', { type: 'search', placeholder: 'Search by name, ID or notes', 'aria-label': 'Search devices' });
	const filter = h('select', { 'aria-label': 'Show' }, h('option', { value: 'all' }, 'All devices'), h('option', { value: 'online' }, 'Online'), h('option', { value: 'offline' }, 'Offline'));
	const platform = h('select', { 'aria-label': 'Platform' }, h('option', { value: '' }, 'All platforms'));
	let refreshing = null;
	// Enabled once the list has loaded (a claim then reloads it).
	const addBtn = h('button', { type: 'button', class: 'btn primary', disabled: true }, '+ Add device');
	// A claim code is used by the device later, during its setup; the claim
	// sends this account no status event (the device was online before it
	// was ours), so the list is re-read every few seconds until a new device
	// shows up, for as long as the code is valid and this page is open.
	let waitTimer = null;
	function waitForClaim() {
		clearInterval(waitTimer);
		const known = new Set(byId.keys());
		const until = Date.now() + 24 * 3600 * 1000;
		waitTimer = setInterval(async () => {
			if (Date.now() > until) {
				clearInterval(waitTimer);
				return;
			}
			await refreshOne();
			const fresh = [...byId.keys()].find((id) => !known.has(id));
			if (fresh) {
				clearInterval(waitTimer);
				toast(`${byId.get(fresh).name || fresh} is now yours`);
			}
		}, 3000);
	}
	addBtn.addEventListener('click', async () => {
		if (await addDevice(waitForClaim)) {
			refreshOne();
		}
	});
	mount(root,
		pageHead('Devices', 'Devices claimed to your account. Online state updates live.', state, addBtn),
		h('div', { class: 'toolbar' }, search, filter, platform),
		list);

	let devices = [];
	try {
		devices = await get('/v1/devices');
	} catch (err) {
		mount(list, errorBox(err));
		return;
	}
	const platforms = [...new Set(devices.map((d) => d.platform_id))].sort((a, b) => a - b);
	platforms.forEach((p) => platform.appendChild(h('option', { value: String(p) }, platformName(p))));

	const byId = new Map(devices.map((d) => [d.id, d]));
	const q = new URLSearchParams(location.hash.split('?')[1] || '');
	search.value = q.get('q') || '';

	function draw() {
		const text = search.value.trim().toLowerCase();
		const rows = devices.filter((d) => {
			if (filter.value === 'online' && !d.online) return false;
			if (filter.value === 'offline' && d.online) return false;
			if (platform.value && String(d.platform_id) !== platform.value) return false;
			if (!text) return true;
			return [d.id, d.name, d.notes].some((v) => v && String(v).toLowerCase().includes(text));
		});
		if (!devices.length) {
			mount(list, empty('No devices yet', session.customer
				? 'Setting up a new device? Choose + Add device, get a claim code and give it to the device during setup (or in the product\'s app). It shows up here once it reports the code.'
				: 'Claim a device with the Particle CLI (particle device add ID) or try a simulated one: wick sim --api URL --token TOKEN.'));
			return;
		}
		if (!rows.length) {
			mount(list, empty('No device matches', 'Change the search or the filters.'));
			return;
		}
		rows.sort((a, b) => (b.online - a.online) || String(a.name || a.id).localeCompare(String(b.name || b.id)));
		mount(list, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Devices', class: 'devices-table' },
			h('thead', {}, h('tr', {}, ['Name', 'Status', 'Device ID', 'Platform', 'Last heard'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map((d) => h('tr', { dataset: { device: d.id } },
				h('td', {}, h('a', { href: `#/devices/${d.id}` }, d.name || d.id), d.notes ? h('div', { class: 'muted' }, String(d.notes).split('\n')[0].slice(0, 80)) : null),
				h('td', {}, statusBadge(d.online)),
				h('td', { class: 'mono' }, d.id),
				h('td', {}, platformName(d.platform_id)),
				h('td', {}, ago(d.last_heard))))))));
	}
	addBtn.disabled = false;
	search.addEventListener('input', draw);
	filter.addEventListener('change', draw);
	platform.addEventListener('change', draw);
	draw();

	async function refreshOne() {
		// A device this page has not seen (claimed meanwhile): fetch the list again, once at a time.
		if (refreshing) return refreshing;
		refreshing = get('/v1/devices').then((all) => {
			devices = all;
			byId.clear();
			all.forEach((d) => byId.set(d.id, d));
			draw();
		}).catch(() => {}).finally(() => { refreshing = null; });
		return refreshing;
	}

	const close = stream('/v1/devices/events/spark/status', {
		onEvent(ev) {
			if (ev.name !== 'spark/status' || !ev.coreid) return;
			const d = byId.get(ev.coreid);
			if (!d) {
				refreshOne();
				return;
			}
			if (ev.data === 'online' || ev.data === 'offline') {
				d.online = ev.data === 'online';
				d.connected = d.online;
				d.last_heard = ev.published_at || d.last_heard;
				draw();
			}
		},
		onState: (s, detail) => showStreamState(state, s, detail),
	});
	ctx.onCleanup(() => {
		close();
		clearInterval(waitTimer);
	});
}

/** Claims a device by ID, or makes a claim code for a device being set up. */
function addDevice(onCode) {
	return dialog('Add a device', (close) => {
		const codeSlot = h('div', {});
		const claim = onSubmit(h('form', { class: 'stack' },
			field('Device ID', { name: 'id', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: '24 hexadecimal characters' }, 'Claims a device that belongs to nobody yet.'),
			h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn primary' }, 'Claim'))), async (v) => {
			await post('/v1/devices', { id: v.id.trim() });
			toast('Device claimed');
			close(true);
		});
		const codeBtn = h('button', { type: 'button', class: 'btn' }, 'Get a claim code');
		codeBtn.addEventListener('click', async () => {
			codeBtn.disabled = true;
			try {
				const res = await post('/v1/device_claims');
				onCode();
				mount(codeSlot, h('div', { class: 'code-line' }, h('code', { class: 'claim-code' }, res.claim_code), copyButton(res.claim_code)),
					h('p', { class: 'muted' }, 'Give it to the device during setup (particle serial wifi, or your app); the first device that reports it becomes yours. Valid 24 hours, for one device.'));
			} catch (err) {
				mount(codeSlot, errorBox(err));
			} finally {
				codeBtn.disabled = false;
			}
		});
		return h('div', { class: 'stack' }, claim, h('hr', { class: 'sep' }),
			h('p', {}, 'Setting up a new device instead?'), h('div', { class: 'row' }, codeBtn), codeSlot);
	});
}
