// Sign-in: password, then the one-time code when MFA is on (or a recovery
// code); and the first-run help: sign up when the server allows it, else
// how the operator creates an account.

import { signIn, signInOTP, signupOpen, post, session, startCustomerSignIn } from '../api.js';
import { h, mount, field, onSubmit, copyButton } from '../ui.js';

/** Focuses el once the page is in the document (the first step is built before it is). */
function focusSoon(el) {
	queueMicrotask(() => el.focus());
}

function card(...children) {
	return h('div', { class: 'auth-wrap' }, h('div', { class: 'auth-card' },
		h('div', { class: 'auth-brand' }, h('img', { src: '/console/favicon.svg', alt: '', width: '36', height: '36' }), h('span', {}, 'Wick')),
		children));
}

/** The product web client a customer's sign-in link names (#/signin?client=ID), or ''. */
function customerClient() {
	const q = new URLSearchParams(location.hash.split('?')[1] || '');
	return q.get('client') || '';
}

/** The sign-in page; onDone runs once a token is stored. */
export function signInPage({ onDone }) {
	const root = h('div', {});
	let username = '';

	function done(token) {
		session.set(token, username);
		onDone();
	}

	function passwordStep(notice) {
		const form = onSubmit(h('form', { class: 'stack', novalidate: true },
			field('Email', { name: 'username', type: 'email', autocomplete: 'username', required: true, value: username }),
			field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
			h('button', { type: 'submit', class: 'btn primary wide' }, 'Sign in')), async (d) => {
			username = d.username.trim();
			if (!username || !d.password) {
				throw new Error('Enter your email and password.');
			}
			const res = await signIn(username, d.password);
			if (res.mfaToken) {
				otpStep(res.mfaToken);
			} else {
				done(res.token);
			}
		});
		const first = h('div', { class: 'first-run' }, h('p', { class: 'muted' }, 'Checking whether this server takes new accounts…'));
		mount(root, card(h('h1', {}, 'Sign in'), notice ? h('div', { class: 'note' }, notice) : null, form, first));
		firstRun(first);
		focusSoon(form.querySelector(username ? 'input[name=password]' : 'input[name=username]'));
	}

	function otpStep(mfaToken, recovery = false) {
		const form = onSubmit(h('form', { class: 'stack', novalidate: true },
			recovery
				? field('Recovery code', { name: 'code', autocomplete: 'off', required: true, spellcheck: 'false' }, 'One of the codes you saved when you turned on two-step verification. Each works once.')
				: field('One-time code', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9 ]*', maxlength: '8', required: true }, 'The 6-digit code from your authenticator app.'),
			h('button', { type: 'submit', class: 'btn primary wide' }, 'Verify'),
			h('div', { class: 'row between' },
				h('button', { type: 'button', class: 'btn link', onclick: () => otpStep(mfaToken, !recovery) }, recovery ? 'Use a one-time code' : 'Use a recovery code'),
				h('button', { type: 'button', class: 'btn link', onclick: () => passwordStep() }, 'Start over'))), async (d) => {
			const code = (d.code || '').replace(/\s+/g, '');
			if (!code) {
				throw new Error('Enter the code.');
			}
			try {
				const res = await signInOTP(mfaToken, code, recovery);
				done(res.token);
			} catch (err) {
				if (err.body && err.body.error === 'invalid_grant' && /expired|mfa_token/i.test(err.message)) {
					passwordStep('That step took too long. Sign in again.');
					return;
				}
				throw err;
			}
		});
		mount(root, card(h('h1', {}, 'Two-step verification'), h('p', { class: 'muted' }, `Signing in as ${username}.`), form));
		focusSoon(form.querySelector('input'));
	}

	async function firstRun(slot) {
		const open = await signupOpen();
		if (!open) {
			const cmd = 'wick user create you@example.com';
			mount(slot, h('details', {},
				h('summary', {}, 'No account yet?'),
				h('p', {}, 'This server does not take sign-ups. Whoever runs it creates accounts on the server machine:'),
				h('div', { class: 'code-line' }, h('code', {}, cmd), copyButton(cmd)),
				h('p', { class: 'muted' }, 'It asks for the password. Then sign in here with that email and password.')));
			return;
		}
		mount(slot, h('p', {}, 'New to this server? ', h('button', { type: 'button', class: 'btn link', onclick: signUpStep }, 'Create an account')));
	}

	function signUpStep() {
		const form = onSubmit(h('form', { class: 'stack', novalidate: true },
			field('Email', { name: 'username', type: 'email', autocomplete: 'username', required: true }),
			field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '8', required: true }, 'At least 8 characters.'),
			field('Repeat the password', { name: 'again', type: 'password', autocomplete: 'new-password', required: true }),
			h('button', { type: 'submit', class: 'btn primary wide' }, 'Create account'),
			h('button', { type: 'button', class: 'btn link', onclick: () => passwordStep() }, 'I have an account')), async (d) => {
			username = d.username.trim();
			if (d.password !== d.again) {
				throw new Error('The two passwords differ.');
			}
			await post('/v1/users', { username, password: d.password }, { auth: false });
			const res = await signIn(username, d.password);
			done(res.token);
		});
		mount(root, card(h('h1', {}, 'Create your account'), form));
		focusSoon(form.querySelector('input'));
	}

	/** A product's customer: Wick's own sign-in page for the product's web client (PKCE). */
	function customerStep(client) {
		const go = h('button', { type: 'button', class: 'btn primary wide', id: 'customer-sign-in' }, 'Continue to sign in');
		go.addEventListener('click', async () => {
			go.disabled = true;
			try {
				await startCustomerSignIn(client);
			} catch (err) {
				go.disabled = false;
				throw err;
			}
		});
		mount(root, card(h('h1', {}, 'Sign in'),
			h('p', { class: 'muted' }, 'Sign in with the e-mail and password of your account for this product. You will see your devices, their functions, variables and events.'),
			go,
			h('p', { class: 'muted small' }, 'Building this product? ', h('button', { type: 'button', class: 'btn link', onclick: () => passwordStep() }, 'Sign in as a developer'))));
		focusSoon(go);
	}

	const client = customerClient();
	if (client) {
		customerStep(client);
	} else {
		passwordStep();
	}
	return root;
}
