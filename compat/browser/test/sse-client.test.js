'use strict';
// The console's event-stream client (internal/console/assets/js/api.js, stream()) against a
// scripted Server-Sent Events server: the token in the Authorization header, events split
// across chunks and CR/LF/CRLF line ends, comments, multi-line data, and a reconnect after
// a drop that sends Last-Event-ID. Pure Node: fetch and streams are built in; sessionStorage
// is a small stand-in.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const API = pathToFileURL(path.join(__dirname, '..', '..', '..', 'internal', 'console', 'assets', 'js', 'api.js')).href;

function storage() {
	const m = new Map();
	return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}

describe('console event-stream client', () => {
	let server;
	let url;
	const seen = [];

	before(async () => {
		globalThis.sessionStorage = storage();
		server = http.createServer((req, res) => {
			seen.push({ url: req.url, auth: req.headers.authorization, last: req.headers['last-event-id'] || '' });
			if (req.url === '/refused') {
				res.writeHead(401, { 'Content-Type': 'application/json' });
				res.end('{"error":"invalid_token","error_description":"The access token provided is invalid."}');
				return;
			}
			res.writeHead(200, { 'Content-Type': 'text/event-stream' });
			if (seen.filter((s) => s.url === req.url).length === 1) {
				// First connection: two events in awkward pieces (a CRLF split between chunks too),
				// then the server drops it.
				const chunks = [':ok\n\n', 'id: 1\r', '\nevent: te', 'mp\r\ndata: {"data":"21.5","ttl":60,"published_at":"2026-01-01T00:00:00.000Z","coreid":"0123456789abcdef01234567"}\r\n\r\n',
					': keep-alive\n\n', 'id: 2\revent: multi\rdata: line one\rdata: line two\r\r'];
				let i = 0;
				const next = () => {
					if (i < chunks.length) {
						res.write(chunks[i++]);
						setTimeout(next, 10);
					} else {
						res.end();
					}
				};
				next();
			} else {
				res.write('id: 3\nevent: after\ndata: {"data":"back"}\n\n');
			}
		});
		await new Promise((r) => server.listen(0, '127.0.0.1', r));
		url = `http://127.0.0.1:${server.address().port}`;
	});

	after(() => {
		server.closeAllConnections();
		server.close();
		delete globalThis.sessionStorage;
	});

	it('parses events and resumes with Last-Event-ID after a drop', async () => {
		const api = await import(API);
		api.session.set('tok123', 'ada@example.com');
		const events = [];
		const states = [];
		let close;
		await new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`timed out; events ${JSON.stringify(events)} states ${states}`)), 10000);
			close = api.stream(`${url}/v1/devices/events`, {
				onEvent(ev) {
					events.push(ev);
					if (ev.name === 'after') {
						clearTimeout(timer);
						resolve();
					}
				},
				onState: (s) => states.push(s),
			});
		});
		close();
		assert.deepEqual(events.map((e) => [e.name, e.id, e.data]), [['temp', '1', '21.5'], ['multi', '2', 'line one\nline two'], ['after', '3', 'back']]);
		assert.equal(events[0].coreid, '0123456789abcdef01234567');
		assert.equal(events[0].ttl, 60);
		const mine = seen.filter((s) => s.url === '/v1/devices/events');
		assert.equal(mine.length, 2);
		assert.ok(mine.every((s) => s.auth === 'Bearer tok123'), JSON.stringify(mine));
		assert.equal(mine[0].last, '');
		assert.equal(mine[1].last, '2');
		assert.ok(states.includes('open') && states.includes('retrying'), states.join(','));
	});

	it('stops, without retrying, when the token is refused, and says the session ended', async () => {
		const api = await import(API);
		api.session.set('revoked', 'ada@example.com');
		let expired = 0;
		api.onSessionExpired(() => { expired++; });
		const done = new Promise((resolve) => {
			api.stream(`${url}/refused`, { onEvent() {}, onState: (s, detail) => { if (s === 'closed') resolve(detail); } });
		});
		const detail = await done;
		assert.match(detail, /access token provided is invalid/);
		assert.equal(expired, 1);
		await new Promise((r) => setTimeout(r, 1500));
		assert.equal(seen.filter((s) => s.url === '/refused').length, 1, 'a refused stream must not be retried');
	});
});
