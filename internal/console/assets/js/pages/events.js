// Events: the live stream of the user's events (their devices and their
// own publishes), or everyone's public events under a prefix, with a prefix
// filter, pause and the raw JSON of each event.

import { stream, post, seg } from '../api.js';
import { h, mount, pageHead, toast, field, onSubmit, dialog, showStreamState } from '../ui.js';
import { eventList } from '../events-view.js';

export async function eventsPage(root, ctx) {
	const params = new URLSearchParams(location.hash.split('?')[1] || '');
	const events = eventList({ max: 500, emptyText: 'Waiting for events… Devices publish with Particle.publish(); you can publish one yourself.' });
	const prefix = h('input', { type: 'text', name: 'prefix', placeholder: 'Event name prefix, e.g. temp or spark/', 'aria-label': 'Event name prefix', value: params.get('prefix') || '', autocomplete: 'off' });
	const scope = h('select', { 'aria-label': 'Which events' }, h('option', { value: 'mine' }, 'My devices and publishes'), h('option', { value: 'public' }, 'All public events (needs a prefix)'));
	scope.value = params.get('scope') === 'public' ? 'public' : 'mine';
	const state = h('span', { class: 'stream-state muted', role: 'status' }, '');
	const pause = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false' }, 'Pause');
	const clear = h('button', { type: 'button', class: 'btn', onclick: () => events.clear() }, 'Clear');
	const publish = h('button', { type: 'button', class: 'btn primary' }, 'Publish event');
	const counter = h('span', { class: 'muted' }, '');
	let close = null;

	function open() {
		if (close) close();
		const p = prefix.value.trim();
		let path;
		if (scope.value === 'public') {
			if (!p) {
				state.textContent = 'Enter a prefix to watch public events.';
				close = null;
				return;
			}
			path = `/v1/events/${seg(p)}`;
		} else {
			path = p ? `/v1/devices/events/${seg(p)}` : '/v1/devices/events';
		}
		close = stream(path, {
			onEvent: (ev) => events.add(ev),
			onState: (s, detail) => showStreamState(state, s, detail, p ? ` · ${p}*` : ''),
		});
	}
	ctx.onCleanup(() => close && close());

	const filterForm = h('form', { class: 'toolbar', role: 'search' }, scope, prefix, h('button', { type: 'submit', class: 'btn' }, 'Apply'), pause, clear, counter);
	filterForm.addEventListener('submit', (e) => {
		e.preventDefault();
		const q = new URLSearchParams();
		if (prefix.value.trim()) q.set('prefix', prefix.value.trim());
		if (scope.value === 'public') q.set('scope', 'public');
		history.replaceState(null, '', `#/events${q.toString() ? `?${q}` : ''}`);
		events.clear();
		open();
	});
	pause.addEventListener('click', () => {
		events.setPaused(!events.paused);
		pause.textContent = events.paused ? 'Resume' : 'Pause';
		pause.setAttribute('aria-pressed', String(events.paused));
		counter.textContent = '';
	});
	const tick = setInterval(() => {
		counter.textContent = events.paused && events.held ? `${events.held} new while paused` : '';
	}, 500);
	ctx.onCleanup(() => clearInterval(tick));

	publish.addEventListener('click', () => dialog('Publish an event', (done) => onSubmit(h('form', { class: 'stack' },
		field('Name', { name: 'name', required: true, maxlength: '64', autocomplete: 'off' }),
		field('Data', { name: 'data', as: 'textarea', maxlength: '1024' }),
		h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'private', checked: true }), 'Private (only you receive it)'),
		h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => done() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Publish'))), async (v) => {
		await post('/v1/devices/events', { name: v.name, data: v.data, private: v.private === 'on' });
		toast('Published');
		done(true);
	})));

	mount(root, pageHead('Events', 'Live events as they happen. Click an event for its raw JSON.', state, publish), filterForm, events.el);
	open();
}
