// A live list of events (shared by the Events page and the device page):
// newest first, each row expandable to its raw JSON, pausable.

import { h, mount } from './ui.js';

/** Creates an event list keeping at most max events. */
export function eventList({ max = 200, emptyText = 'Waiting for events…' } = {}) {
	const el = h('div', { class: 'events', role: 'log', 'aria-label': 'Events', 'aria-live': 'off' });
	const placeholder = h('p', { class: 'muted empty-events' }, emptyText);
	mount(el, placeholder);
	let count = 0;
	let paused = false;
	const held = [];

	function row(ev) {
		const when = ev.published_at ? new Date(ev.published_at) : new Date();
		const raw = { event: ev.name, id: ev.id || undefined, data: ev.data, ttl: ev.ttl, published_at: ev.published_at, coreid: ev.coreid };
		return h('details', { class: 'event', dataset: { name: ev.name } },
			h('summary', {},
				h('time', { class: 'muted mono', datetime: ev.published_at || '' }, when.toLocaleTimeString()),
				h('span', { class: 'ev-name' }, ev.name),
				h('span', { class: 'ev-data mono' }, ev.data === null || ev.data === undefined ? '' : String(ev.data)),
				h('span', { class: 'muted mono' }, ev.coreid ? String(ev.coreid).slice(0, 8) : '')),
			h('pre', { class: 'raw' }, JSON.stringify(raw, null, 2)));
	}

	function add(ev) {
		if (paused) {
			held.push(ev);
			if (held.length > max) held.shift();
			return;
		}
		if (placeholder.isConnected) placeholder.remove();
		el.prepend(row(ev));
		count++;
		while (count > max && el.lastChild) {
			el.lastChild.remove();
			count--;
		}
	}

	return {
		el,
		add,
		get paused() { return paused; },
		get held() { return held.length; },
		setPaused(p) {
			paused = p;
			if (!p) {
				const queued = held.splice(0);
				queued.forEach(add);
			}
		},
		clear() {
			held.length = 0;
			count = 0;
			mount(el, placeholder);
		},
	};
}
