// Small DOM helpers: element building without innerHTML (every text goes in
// through textContent, so API data can never become markup), dialogs,
// notices, copy buttons, empty states and formatting.

/**
 * Builds an element. attrs: class, text, on<Event> handlers, dataset
 * (object), boolean attributes (true adds, false/null omits), others as
 * attributes. Children: nodes, strings, arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) {
			continue;
		}
		if (k === 'class') {
			el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
		} else if (k === 'text') {
			el.textContent = v;
		} else if (k === 'dataset') {
			Object.assign(el.dataset, v);
		} else if (k.startsWith('on') && typeof v === 'function') {
			el.addEventListener(k.slice(2).toLowerCase(), v);
		} else if (k === 'value' && 'value' in el) {
			el.value = v;
		} else if (v === true) {
			el.setAttribute(k, '');
		} else {
			el.setAttribute(k, String(v));
		}
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false) {
			continue;
		}
		if (Array.isArray(c)) {
			append(el, c);
		} else if (c instanceof Node) {
			el.appendChild(c);
		} else {
			el.appendChild(document.createTextNode(String(c)));
		}
	}
}

/** Replaces el's children. */
export function mount(el, ...children) {
	el.replaceChildren();
	append(el, children);
	return el;
}

let toastHost = null;

/** Shows a short notice at the bottom of the screen. kind: 'ok' | 'error'. */
export function toast(message, kind = 'ok') {
	if (!toastHost) {
		toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
		document.body.appendChild(toastHost);
	}
	const t = h('div', { class: ['toast', kind === 'error' && 'toast-error'] }, message);
	toastHost.appendChild(t);
	while (toastHost.children.length > 3) {
		toastHost.firstChild.remove();
	}
	setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** An inline error box (role alert) for a failed action, or null. */
export function errorBox(err) {
	if (!err) {
		return null;
	}
	return h('div', { class: 'alert', role: 'alert' }, err.message || String(err));
}

/** An empty state: a title, a sentence and optional actions. */
export function empty(title, text, ...actions) {
	return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text && h('p', { class: 'muted' }, text), actions.length ? h('div', { class: 'row' }, actions) : null);
}

/** A loading placeholder of fixed height, so the page does not jump when data arrives. */
export function loading(label = 'Loading…') {
	return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
}

/**
 * Opens a modal dialog (the native <dialog>: focus trap and Escape for free).
 * build(close) returns the dialog's content. Returns a promise of the value
 * passed to close.
 */
export function dialog(title, build, { wide = false } = {}) {
	return new Promise((resolve) => {
		const d = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'aria-label': title });
		const close = (value) => {
			d.close();
			d.remove();
			resolve(value);
		};
		d.addEventListener('cancel', (e) => {
			e.preventDefault();
			close(undefined);
		});
		mount(d, h('header', { class: 'dialog-head' }, h('h2', {}, title), h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close', onclick: () => close(undefined) }, '×')), build(close));
		document.body.appendChild(d);
		d.showModal();
		const first = d.querySelector('input, select, textarea, button.primary');
		if (first) {
			first.focus();
		}
	});
}

/** Asks to confirm a destructive action; resolves true or false. */
export function confirmDialog(title, text, action = 'Delete') {
	return dialog(title, (close) => h('div', {},
		h('p', {}, text),
		h('div', { class: 'row end' },
			h('button', { type: 'button', class: 'btn', onclick: () => close(false) }, 'Cancel'),
			h('button', { type: 'button', class: 'btn danger', onclick: () => close(true) }, action)))).then(Boolean);
}

/** A button that copies text to the clipboard and says so. */
export function copyButton(text, label = 'Copy') {
	const b = h('button', { type: 'button', class: 'btn small', 'aria-label': `${label} to clipboard` }, label);
	b.addEventListener('click', async () => {
		try {
			await navigator.clipboard.writeText(text);
			b.textContent = 'Copied';
		} catch {
			// Clipboard refused (insecure origin): select the text instead.
			const sel = window.getSelection();
			const near = b.parentElement && b.parentElement.querySelector('code, input');
			if (near && sel) {
				const r = document.createRange();
				r.selectNodeContents(near);
				sel.removeAllRanges();
				sel.addRange(r);
			}
			b.textContent = 'Press Ctrl+C';
		}
		setTimeout(() => { b.textContent = label; }, 2000);
	});
	return b;
}

/** A labelled form field. attrs go to the input (or select/textarea via attrs.as). */
export function field(label, attrs = {}, hint) {
	const id = attrs.id || `f-${Math.random().toString(36).slice(2, 9)}`;
	const tag = attrs.as || 'input';
	const { as, options, ...rest } = attrs;
	const input = h(tag, { id, ...rest }, options ? options.map(([v, t]) => h('option', { value: v }, t)) : null);
	if (tag === 'select' && attrs.value !== undefined) {
		input.value = attrs.value;
	}
	return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint' }, hint) : null);
}

/**
 * Wires a form: on submit, disables its submit button, runs fn(formData as
 * an object) and shows a thrown error in the form's alert slot. Returns form.
 */
export function onSubmit(form, fn) {
	const slot = h('div', { class: 'form-error' });
	form.prepend(slot);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		const btn = form.querySelector('button[type=submit]');
		mount(slot);
		if (btn) {
			btn.disabled = true;
		}
		try {
			const data = Object.fromEntries(new FormData(form).entries());
			await fn(data, form);
		} catch (err) {
			mount(slot, errorBox(err));
		} finally {
			if (btn && btn.isConnected) {
				btn.disabled = false;
			}
		}
	});
	return form;
}

/** A relative time ("3 min ago") for an ISO date, with the full date as title. */
export function ago(iso) {
	if (!iso) {
		return h('span', { class: 'muted' }, 'never');
	}
	const t = new Date(iso);
	const s = Math.round((Date.now() - t.getTime()) / 1000);
	let text;
	if (s < 45) {
		text = 'just now';
	} else if (s < 3600) {
		text = `${Math.round(s / 60)} min ago`;
	} else if (s < 86400) {
		text = `${Math.round(s / 3600)} h ago`;
	} else {
		text = t.toLocaleDateString();
	}
	return h('time', { datetime: iso, title: t.toLocaleString() }, text);
}

/** An online/offline badge. */
export function statusBadge(online) {
	return h('span', { class: ['badge', online ? 'badge-on' : 'badge-off'] }, h('span', { class: 'dot', 'aria-hidden': 'true' }), online ? 'Online' : 'Offline');
}

/** Particle platform names by ID (the common ones; others show their number). */
const PLATFORMS = { 0: 'Core', 6: 'Photon', 8: 'P1', 10: 'Electron', 12: 'Argon', 13: 'Boron', 15: 'E SoM', 23: 'B SoM', 25: 'B5 SoM', 26: 'Tracker', 28: 'Tracker M', 32: 'P2', 35: 'Muon', 37: 'E-series 404X' };
export function platformName(id) {
	return PLATFORMS[id] || `Platform ${id}`;
}
export const PLATFORM_OPTIONS = Object.entries(PLATFORMS).map(([id, name]) => [id, `${name} (${id})`]);

/** A table with a header row; rows are arrays of cells. */
export function table(headers, rows, { label } = {}) {
	return h('div', { class: 'table-wrap' }, h('table', { 'aria-label': label },
		h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
		h('tbody', {}, rows.map((r) => (r instanceof Node ? r : h('tr', {}, r.map((c) => h('td', {}, c))))))));
}

/** A page heading with optional actions on the right. */
export function pageHead(title, sub, ...actions) {
	return h('div', { class: 'page-head' }, h('div', {}, h('h1', { tabindex: '-1' }, title), sub ? h('p', { class: 'muted' }, sub) : null), actions.length ? h('div', { class: 'row' }, actions) : null);
}

/** A link button to a console route. */
export function link(href, text, cls = 'btn') {
	return h('a', { href, class: cls }, text);
}

/** Shows an event stream's state (from stream()'s onState) in el: "● Live" in green when open. */
export function showStreamState(el, s, detail, suffix = '') {
	el.textContent = s === 'open' ? `● Live${suffix}` : s === 'retrying' ? 'Reconnecting…' : s === 'closed' ? (detail || 'Live updates stopped') : 'Connecting…';
	el.className = `stream-state ${s === 'open' ? 'live' : 'muted'}`;
}
