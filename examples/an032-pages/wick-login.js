// Shared by led.html and sensor.html: the sign-in of Particle's app note
// AN032 against a Wick server from any origin (or a file:// page). The
// password grant with client "particle" answers 403 mfa_required when the
// account has MFA on; the one-time code finishes it. The short-lived token
// lives in sessionStorage only, so closing the tab forgets it.
'use strict';

const WickLogin = (() => {
	const store = window.sessionStorage;
	const defaultApi = 'http://127.0.0.1:8080';
	let mfaToken = null;

	// The Wick URL: ?api=… wins, then the last one used in this tab.
	function api() {
		const fromQuery = new URLSearchParams(location.search).get('api');
		return (fromQuery || store.wickApi || defaultApi).replace(/\/+$/, '');
	}

	function token() { return store.wickToken || ''; }
	function user() { return store.wickUser || ''; }

	// request sends one API call and returns {status, body}.
	async function request(method, path, { form, auth = true } = {}) {
		const headers = {};
		if (auth) headers.Authorization = 'Bearer ' + token();
		let body;
		if (form) {
			headers['Content-Type'] = 'application/x-www-form-urlencoded';
			body = new URLSearchParams(form).toString();
		}
		const res = await fetch(api() + path, { method, headers, body });
		let data = null;
		try { data = await res.json(); } catch { /* 204 or not JSON */ }
		return { status: res.status, body: data };
	}

	async function tokenGrant(form) {
		return request('POST', '/oauth/token', {
			auth: false,
			form: { client_id: 'particle', client_secret: 'particle', expires_in: '3600', ...form },
		});
	}

	function saved(username, body) {
		store.wickToken = body.access_token;
		store.wickUser = username;
		return { ok: true };
	}

	// login returns {ok}, {mfa: true} when a code is needed, or {error}.
	async function login(apiUrl, username, password) {
		store.wickApi = apiUrl.replace(/\/+$/, '');
		const res = await tokenGrant({ grant_type: 'password', username, password });
		if (res.status === 200) return saved(username, res.body);
		if (res.status === 403 && res.body && res.body.mfa_token) {
			mfaToken = res.body.mfa_token;
			store.wickUser = username;
			return { mfa: true };
		}
		return { error: (res.body && res.body.error_description) || 'Login failed, please try again.' };
	}

	async function otp(code) {
		const res = await tokenGrant({ grant_type: 'urn:custom:mfa-otp', mfa_token: mfaToken, otp: code });
		if (res.status === 200) return saved(user(), res.body);
		return { error: (res.body && res.body.error_description) || 'Invalid code.' };
	}

	// logout revokes the token on the server, then forgets it.
	async function logout() {
		if (token()) {
			try { await request('DELETE', '/v1/access_tokens/current'); } catch { /* gone anyway */ }
		}
		delete store.wickToken;
		delete store.wickUser;
	}

	// wire connects the login, code and main sections of a page. onReady runs
	// with a valid token; it returns false when the token no longer works.
	function wire(onReady) {
		const $ = (id) => document.getElementById(id);
		const show = (which) => {
			for (const id of ['loginDiv', 'otpDiv', 'mainDiv']) $(id).hidden = id !== which;
		};
		const fail = (msg) => {
			$('loginFailed').textContent = msg;
			$('loginFailed').hidden = false;
			show('loginDiv');
		};
		const ready = async () => {
			$('userSpan').textContent = user();
			if (await onReady()) {
				show('mainDiv');
			} else {
				await logout();
				fail('Your session ended, please log in again.');
			}
		};
		$('apiInput').value = api();
		$('loginForm').addEventListener('submit', async (e) => {
			e.preventDefault();
			$('loginFailed').hidden = true;
			try {
				const r = await login($('apiInput').value, $('userInput').value.trim(), $('passwordInput').value);
				$('passwordInput').value = '';
				if (r.mfa) { show('otpDiv'); $('otpInput').focus(); return; }
				if (r.error) { fail(r.error); return; }
				await ready();
			} catch (err) {
				fail('Cannot reach ' + api() + ': ' + err.message);
			}
		});
		$('otpForm').addEventListener('submit', async (e) => {
			e.preventDefault();
			const r = await otp($('otpInput').value.trim());
			$('otpInput').value = '';
			if (r.error) { fail(r.error); return; }
			await ready();
		});
		$('logoutButton').addEventListener('click', async () => {
			await logout();
			show('loginDiv');
		});
		if (token()) {
			ready();
		} else {
			show('loginDiv');
		}
	}

	return { api, token, user, request, wire, logout };
})();
