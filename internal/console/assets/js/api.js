// The console's only way to the server: Wick's public REST API and its
// event streams, with the access token kept in sessionStorage (it ends with
// the browser tab and is never written to a cookie or to localStorage).

const TOKEN_KEY = 'wick.console.token';
const USER_KEY = 'wick.console.user';
const KIND_KEY = 'wick.console.kind';
const PKCE_KEY = 'wick.console.pkce';

/** An API failure, with the HTTP status and Particle's error text. */
export class APIError extends Error {
	constructor(status, body, fallback) {
		super(errorText(body) || fallback || `HTTP ${status}`);
		this.status = status;
		this.body = body;
	}
}

/** Returns the human text of any of Particle's three error shapes. */
export function errorText(body) {
	if (!body || typeof body !== 'object') {
		return '';
	}
	if (Array.isArray(body.errors) && body.errors.length) {
		return body.errors.map((e) => (typeof e === 'string' ? e : e.message || JSON.stringify(e))).join('; ');
	}
	if (body.error_description) {
		return body.error_description;
	}
	if (typeof body.error === 'string') {
		return body.info ? `${body.error}: ${body.info}` : body.error;
	}
	return '';
}

export const session = {
	get token() {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	},
	get user() {
		return sessionStorage.getItem(USER_KEY) || '';
	},
	/** 'customer' for a product's customer, 'user' for a developer. */
	get kind() {
		return sessionStorage.getItem(KIND_KEY) || 'user';
	},
	get customer() {
		return this.kind === 'customer';
	},
	set(token, user, kind = 'user') {
		sessionStorage.setItem(TOKEN_KEY, token);
		sessionStorage.setItem(USER_KEY, user);
		sessionStorage.setItem(KIND_KEY, kind);
	},
	clear() {
		sessionStorage.removeItem(TOKEN_KEY);
		sessionStorage.removeItem(USER_KEY);
		sessionStorage.removeItem(KIND_KEY);
	},
};

/** The console's own address, the redirect URI of a product's customer sign-in. */
export const consoleRedirect = () => `${location.origin}/console/`;

function base64url(bytes) {
	return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Starts a product customer's sign-in: the authorization-code flow with PKCE
 * (S256) at Wick's own sign-in page, for the product's web client whose
 * redirect URI is this console (docs/console.md, Customers).
 */
export async function startCustomerSignIn(clientId) {
	const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
	const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
	const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
	sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, clientId }));
	const q = new URLSearchParams({
		response_type: 'code', client_id: clientId, redirect_uri: consoleRedirect(), state,
		code_challenge: base64url(digest), code_challenge_method: 'S256',
	});
	location.assign(`/oauth/authorize?${q}`);
}

/**
 * Finishes a customer sign-in when the page was opened by the redirect back
 * (?code=…&state=…): checks state, exchanges the code with the verifier and
 * stores the session. Returns true when it signed in; throws on a refusal.
 */
export async function finishCustomerSignIn() {
	const q = new URLSearchParams(location.search);
	if (!q.has('code') && !q.has('error')) {
		return false;
	}
	const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
	sessionStorage.removeItem(PKCE_KEY);
	history.replaceState(null, '', `${location.pathname}${location.hash}`);
	if (!saved || q.get('state') !== saved.state) {
		throw new Error('That sign-in was not started here. Start it again.');
	}
	if (q.has('error')) {
		throw new Error(q.get('error') === 'access_denied' ? 'You did not allow the console.' : (q.get('error_description') || q.get('error')));
	}
	const form = new URLSearchParams({
		grant_type: 'authorization_code', code: q.get('code'), redirect_uri: consoleRedirect(),
		code_verifier: saved.verifier, client_id: saved.clientId,
	});
	const tok = await request('POST', '/oauth/token', form, { auth: false });
	session.set(tok.access_token, '', 'customer');
	const me = await get('/v1/user');
	session.set(tok.access_token, me.username, 'customer');
	sessionStorage.setItem('wick.console.client', saved.clientId);
	return true;
}

/** Listeners told when the server refuses the session's token (401). */
const expiredListeners = new Set();
export function onSessionExpired(fn) {
	expiredListeners.add(fn);
}

/**
 * Sends one request. body: a plain object (sent as JSON), FormData, or
 * URLSearchParams. opts.auth false sends no token; opts.basic [user, pass]
 * sends HTTP Basic. Returns the parsed JSON (or null for 204); throws APIError.
 */
export async function request(method, path, body, opts = {}) {
	const headers = { Accept: 'application/json' };
	let payload;
	if (body instanceof FormData || body instanceof URLSearchParams) {
		payload = body;
	} else if (body !== undefined && body !== null) {
		headers['Content-Type'] = 'application/json';
		payload = JSON.stringify(body);
	}
	if (opts.basic) {
		headers.Authorization = `Basic ${btoa(unescape(encodeURIComponent(`${opts.basic[0]}:${opts.basic[1]}`)))}`;
	} else if (opts.auth !== false && session.token) {
		headers.Authorization = `Bearer ${session.token}`;
	}
	let res;
	try {
		res = await fetch(path, { method, headers, body: payload, signal: opts.signal, cache: 'no-store' });
	} catch (err) {
		if (err.name === 'AbortError') {
			throw err;
		}
		throw new APIError(0, null, 'The server cannot be reached. Check your connection and try again.');
	}
	const text = await res.text();
	let parsed = null;
	if (text) {
		try {
			parsed = JSON.parse(text);
		} catch {
			parsed = opts.raw ? text : null;
		}
	}
	if (!res.ok) {
		if (res.status === 401 && opts.auth !== false && !opts.basic && session.token) {
			for (const fn of expiredListeners) {
				fn();
			}
		}
		throw new APIError(res.status, parsed, res.statusText);
	}
	return parsed;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => request('PUT', path, body ?? {}, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

/** Encodes one path segment. */
export const seg = (s) => encodeURIComponent(String(s));

/** The console's OAuth client: the one Particle's own tools use. */
const CLIENT = { client_id: 'particle', client_secret: 'particle' };
/** Console sessions last a working day; signing out revokes them at once. */
const SESSION_SECONDS = 8 * 3600;

/**
 * Signs in with a password. Returns {token} or, when MFA is on,
 * {mfaToken}; throws APIError for wrong credentials.
 */
export async function signIn(username, password) {
	const form = new URLSearchParams({ grant_type: 'password', username, password, expires_in: String(SESSION_SECONDS), ...CLIENT });
	try {
		const res = await request('POST', '/oauth/token', form, { auth: false });
		return { token: res.access_token };
	} catch (err) {
		if (err instanceof APIError && err.body && err.body.error === 'mfa_required') {
			return { mfaToken: err.body.mfa_token };
		}
		throw err;
	}
}

/** Finishes an MFA sign-in with a one-time code or a recovery code. */
export async function signInOTP(mfaToken, code, recovery = false) {
	const form = new URLSearchParams({ mfa_token: mfaToken, expires_in: String(SESSION_SECONDS), ...CLIENT });
	if (recovery) {
		form.set('grant_type', 'urn:custom:recovery-code');
		form.set('recovery_code', code);
	} else {
		form.set('grant_type', 'urn:custom:mfa-otp');
		form.set('otp', code);
	}
	const res = await request('POST', '/oauth/token', form, { auth: false });
	return { token: res.access_token };
}

/**
 * Reports whether the server lets anyone create an account: POST /v1/users
 * with no fields answers 403 when sign-up is closed and 400 (missing fields)
 * when it is open; nothing is created either way.
 */
export async function signupOpen() {
	try {
		await request('POST', '/v1/users', {}, { auth: false });
		return true;
	} catch (err) {
		return err instanceof APIError && err.status === 400;
	}
}

/**
 * Opens a Server-Sent Events stream of the API with the session's token in
 * the Authorization header (not in the URL, where it would reach logs and
 * history), reading it with fetch. It reconnects after a drop with
 * Last-Event-ID, waiting 1 s, 2 s, 4 s … up to 30 s. Calls onEvent({name,
 * data, ttl, published_at, coreid, id, raw}) per event and onState('connecting'
 * | 'open' | 'retrying' | 'closed', detail). Returns a function that closes it.
 */
export function stream(path, { onEvent, onState = () => {} }) {
	const ctl = new AbortController();
	let lastId = '';
	let delay = 1000;
	let closed = false;

	async function once() {
		const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` };
		if (lastId) {
			headers['Last-Event-ID'] = lastId;
		}
		onState('connecting');
		const res = await fetch(path, { headers, signal: ctl.signal, cache: 'no-store' });
		if (!res.ok) {
			let body = null;
			try {
				body = await res.json();
			} catch {
				// not JSON
			}
			const err = new APIError(res.status, body, res.statusText);
			if (res.status === 401) {
				for (const fn of expiredListeners) {
					fn();
				}
			}
			throw err;
		}
		onState('open');
		delay = 1000;
		const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
		let buf = '';
		let ev = { name: 'message', data: [], id: null };
		const drain = () => {
			let nl;
			while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
				if (buf[nl] === '\r' && nl === buf.length - 1) {
					return; // a CR at the end of a chunk may be the first half of CRLF
				}
				const line = buf.slice(0, nl);
				buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
				if (line === '') {
					// The event is complete: only now does its ID count for a resume.
					if (ev.id !== null) {
						lastId = ev.id;
					}
					if (ev.data.length) {
						dispatch(ev);
					}
					ev = { name: 'message', data: [], id: null };
					continue;
				}
				if (line.startsWith(':')) {
					continue;
				}
				const colon = line.indexOf(':');
				const field = colon < 0 ? line : line.slice(0, colon);
				let val = colon < 0 ? '' : line.slice(colon + 1);
				if (val.startsWith(' ')) {
					val = val.slice(1);
				}
				if (field === 'event') {
					ev.name = val;
				} else if (field === 'data') {
					ev.data.push(val);
				} else if (field === 'id' && !val.includes('\0')) {
					ev.id = val;
				} else if (field === 'retry' && /^\d+$/.test(val)) {
					delay = Math.max(1000, Number(val));
				}
			}
		};
		for (;;) {
			const { value, done } = await reader.read();
			if (done) {
				// A final CR ends its line; an event without its blank line is dropped.
				if (buf.endsWith('\r')) {
					buf += '\n';
					drain();
				}
				return;
			}
			buf += value;
			drain();
		}
	}

	function dispatch(ev) {
		const raw = ev.data.join('\n');
		let body = null;
		try {
			body = JSON.parse(raw);
		} catch {
			// not JSON: the data as text
		}
		if (!body || typeof body !== 'object' || Array.isArray(body)) {
			body = { data: raw };
		}
		onEvent({ ...body, name: ev.name, id: ev.id || '', raw });
	}

	(async () => {
		while (!closed) {
			try {
				await once();
				if (!closed) {
					onState('retrying', 'The stream ended; reconnecting…');
				}
			} catch (err) {
				if (closed || err.name === 'AbortError') {
					break;
				}
				if (err instanceof APIError && (err.status === 401 || err.status === 403 || err.status === 404 || err.status === 400)) {
					onState('closed', err.message);
					return;
				}
				onState('retrying', err.message || 'Connection lost; reconnecting…');
			}
			await new Promise((r) => setTimeout(r, delay));
			delay = Math.min(delay * 2, 30000);
		}
		onState('closed');
	})();
	return () => {
		closed = true;
		ctl.abort();
	};
}
