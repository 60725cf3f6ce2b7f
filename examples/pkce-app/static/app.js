// The browser side of the PKCE example: start Wick's browser sign-in with a
// fresh code verifier and state, take the code back at the redirect URI,
// exchange it at /oauth/token (a public client: no secret), then use the
// token like any other. The verifier and state live in sessionStorage only
// for the round trip; the token only in sessionStorage.
'use strict';

(async () => {
	const store = window.sessionStorage;
	const $ = (id) => document.getElementById(id);
	const status = (msg) => { $('status').textContent = msg; };
	const problem = (msg) => { $('problem').textContent = msg; $('problem').hidden = !msg; };

	const config = await (await fetch('/config.json')).json();

	// base64url of bytes, without padding (RFC 7636 appendix A).
	const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
		.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
	const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
	const s256 = async (verifier) => b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));

	async function api(method, path) {
		const res = await fetch(config.wick + path, { method, headers: { Authorization: 'Bearer ' + store.token } });
		let body = null;
		try { body = await res.json(); } catch { /* 204 */ }
		return { status: res.status, body };
	}

	async function signIn() {
		const verifier = random(32);
		const state = random(16);
		store.pkceVerifier = verifier;
		store.pkceState = state;
		const q = new URLSearchParams({
			response_type: 'code',
			client_id: config.client_id,
			redirect_uri: config.redirect_uri,
			state,
			code_challenge: await s256(verifier),
			code_challenge_method: 'S256',
		});
		location.assign(config.wick + '/oauth/authorize?' + q);
	}

	// finish handles the redirect back from Wick: a code (or an error) and
	// the state this tab sent.
	async function finish(params) {
		const verifier = store.pkceVerifier;
		const state = store.pkceState;
		delete store.pkceVerifier;
		delete store.pkceState;
		history.replaceState(null, '', '/'); // the code must not stay in the address bar
		if (!state || params.get('state') !== state) {
			problem('The sign-in answer does not belong to this tab; sign in again.');
			return;
		}
		// RFC 9207: the answer names the server that sent it.
		if (params.get('iss') && params.get('iss') !== config.wick) {
			problem('The sign-in answer came from another server (' + params.get('iss') + '); sign in again.');
			return;
		}
		if (params.get('error')) {
			problem('Sign-in refused: ' + (params.get('error_description') || params.get('error')));
			return;
		}
		const res = await fetch(config.wick + '/oauth/token', {
			method: 'POST',
			headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
			body: new URLSearchParams({
				grant_type: 'authorization_code',
				code: params.get('code'),
				redirect_uri: config.redirect_uri,
				code_verifier: verifier,
				client_id: config.client_id,
			}),
		});
		const body = await res.json();
		if (res.status !== 200) {
			problem('The code exchange failed: ' + (body.error_description || body.error));
			return;
		}
		store.token = body.access_token;
	}

	async function show() {
		if (!store.token) {
			status('You are not signed in.');
			$('signedOut').hidden = false;
			$('signedIn').hidden = true;
			return;
		}
		const me = await api('GET', '/v1/user');
		if (me.status !== 200) {
			delete store.token;
			problem('Your session ended; sign in again.');
			return show();
		}
		$('who').textContent = me.body.username;
		const list = await api('GET', '/v1/devices');
		const rows = (list.status === 200 && Array.isArray(list.body)) ? list.body : [];
		$('devices').replaceChildren(...rows.map((d) => {
			const tr = document.createElement('tr');
			const name = document.createElement('td');
			name.textContent = d.name || d.id;
			const state = document.createElement('td');
			state.textContent = d.online ? 'online' : 'offline';
			tr.append(name, state);
			return tr;
		}));
		$('noDevices').hidden = rows.length > 0;
		status('');
		$('signedOut').hidden = true;
		$('signedIn').hidden = false;
	}

	$('signIn').addEventListener('click', () => { problem(''); signIn(); });
	$('signOut').addEventListener('click', async () => {
		await api('DELETE', '/v1/access_tokens/current');
		delete store.token;
		show();
	});

	const params = new URLSearchParams(location.search);
	if (params.has('code') || params.has('error')) {
		await finish(params);
	}
	await show();
})();
