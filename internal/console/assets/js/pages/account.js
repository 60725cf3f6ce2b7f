// Account: profile, password change, two-step verification (enrol with an
// authenticator app, recovery codes shown once; remove), access tokens
// (list with the password, revoke one, sign out everywhere) and team
// invitations addressed to the user.

import { get, put, post, del, seg, session } from '../api.js';
import { h, mount, loading, pageHead, dialog, confirmDialog, field, onSubmit, toast, errorBox, copyButton } from '../ui.js';
import { qrCanvas } from '../qr.js';

export async function accountPage(root) {
	mount(root, loading('Loading account…'));
	let user;
	try {
		user = await get('/v1/user');
	} catch (err) {
		mount(root, errorBox(err));
		return;
	}
	const apps = h('section', { class: 'panel', 'aria-labelledby': 'apps-h' });
	if (session.customer) {
		// A customer has no password, two-step or token settings here:
		// the product's app manages the account.
		mount(root, pageHead('Account', user.username),
			h('div', { class: 'grid2' },
				h('div', { class: 'col' }, h('section', { class: 'panel' }, h('h2', {}, 'Your account'),
					h('p', {}, 'You are signed in as a customer of a product, with ', h('strong', {}, user.username), '.'),
					h('p', { class: 'muted' }, 'Your password and account settings are managed in the product\'s own app.'))),
				h('div', { class: 'col' }, apps)));
		drawApps(apps);
		return;
	}
	const mfa = h('section', { class: 'panel', 'aria-labelledby': 'mfa-h' });
	const tokens = h('section', { class: 'panel', 'aria-labelledby': 'tok-h' });
	const invites = h('section', { class: 'panel', 'aria-labelledby': 'inv-h' });
	mount(root, pageHead('Account', user.username),
		h('div', { class: 'grid2' },
			h('div', { class: 'col' }, passwordPanel(), mfa),
			h('div', { class: 'col' }, tokens, apps, invites)));
	drawApps(apps);
	drawMFA(mfa, user);
	drawTokens(tokens, user);
	drawInvites(invites);
}

/** Connected applications: the consents the browser sign-in remembers; revoking one also revokes its tokens. */
async function drawApps(root) {
	const head = h('div', { class: 'panel-head' }, h('h2', { id: 'apps-h' }, 'Connected applications'));
	mount(root, head, loading('Loading…'));
	let list;
	try {
		list = await get('/v1/user/grants');
	} catch (err) {
		mount(root, head, errorBox(err));
		return;
	}
	if (!list.length) {
		mount(root, head, h('p', { class: 'muted', id: 'apps-empty' }, 'No application signed you in through Wick yet. When you allow one, it is listed here and you are not asked again until it wants more.'));
		return;
	}
	mount(root, head, h('p', { class: 'muted' }, 'Applications you allowed to act for you. Revoking one signs it out at once; it asks again next time.'),
		h('ul', { class: 'list apps' }, list.map((g) => {
			const revoke = h('button', { type: 'button', class: 'btn small danger' }, 'Revoke');
			revoke.addEventListener('click', async () => {
				if (!await confirmDialog(`Revoke ${g.client_name || g.client_id}?`, 'It loses access now: its tokens stop working and its next sign-in asks you again.', 'Revoke')) return;
				revoke.disabled = true;
				try {
					await del(`/v1/user/grants/${seg(g.client_id)}`);
					toast(`${g.client_name || g.client_id} revoked`);
					drawApps(root);
				} catch (err) {
					revoke.disabled = false;
					toast(err.message, 'error');
				}
			});
			return h('li', { class: 'app-row', 'data-client': g.client_id },
				h('div', { class: 'grow' },
					h('div', {}, h('strong', {}, g.client_name || g.client_id), g.product ? h('span', { class: 'muted' }, ` · ${g.product}`) : null),
					h('ul', { class: 'scopes muted' }, g.scopes.map((sc) => h('li', { title: sc.scope }, sc.description))),
					h('div', { class: 'muted small' }, `Allowed ${new Date(g.updated_at).toLocaleString()}`)),
				revoke);
		})));
}

function passwordPanel() {
	return onSubmit(h('form', { class: 'panel stack', 'aria-labelledby': 'pw-h' },
		h('h2', { id: 'pw-h' }, 'Password'),
		field('Current password', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true }),
		field('New password', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: '8', required: true }, 'At least 8 characters.'),
		field('Repeat the new password', { name: 'again', type: 'password', autocomplete: 'new-password', required: true }),
		h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'invalidate_tokens', checked: true }), 'Sign out every other session'),
		h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn primary' }, 'Change password'))), async (v, form) => {
		if (v.password !== v.again) throw new Error('The two new passwords differ.');
		await put('/v1/user', { current_password: v.current_password, password: v.password, invalidate_tokens: v.invalidate_tokens === 'on' });
		form.reset();
		toast('Password changed');
	});
}

function drawMFA(root, user) {
	const on = user.mfa && user.mfa.enabled;
	if (on) {
		const off = onSubmit(h('form', { class: 'stack' },
			field('Password to confirm', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true }),
			h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn danger' }, 'Turn off two-step verification'))), async (v) => {
			await put('/v1/user/mfa-disable', { current_password: v.current_password });
			toast('Two-step verification is off');
			user.mfa.enabled = false;
			drawMFA(root, user);
		});
		mount(root, h('div', { class: 'panel-head' }, h('h2', { id: 'mfa-h' }, 'Two-step verification'), h('span', { class: 'badge badge-on' }, 'On')),
			h('p', { class: 'muted' }, 'Signing in asks for a code from your authenticator app.'), off);
		return;
	}
	const start = h('button', { type: 'button', class: 'btn primary' }, 'Turn on');
	mount(root, h('div', { class: 'panel-head' }, h('h2', { id: 'mfa-h' }, 'Two-step verification'), h('span', { class: 'badge badge-off' }, 'Off')),
		h('p', { class: 'muted' }, 'Ask for a code from an authenticator app (any TOTP app) at every sign-in.'), h('div', { class: 'row' }, start));
	start.addEventListener('click', async () => {
		let en;
		try {
			en = await get('/v1/user/mfa-enable');
		} catch (err) {
			toast(err.message, 'error');
			return;
		}
		const codes = await dialog('Set up two-step verification', (close) => onSubmit(h('form', { class: 'stack' },
			h('p', {}, 'Scan this code with your authenticator app (any TOTP app).'),
			h('div', { class: 'qr-wrap' }, qrCanvas(en.qr_url, { label: 'QR code of the authenticator setup link' })),
			h('p', { class: 'muted' }, 'Cannot scan? Enter this setup key (time based), or ', h('a', { href: en.qr_url, class: 'otpauth' }, 'open the link'), ' on a phone that has the app.'),
			h('div', { class: 'code-line' }, h('code', { class: 'mfa-secret' }, en.secret), copyButton(en.secret)),
			field('Code from the app', { name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, maxlength: '8' }),
			h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn', onclick: () => close() }, 'Cancel'), h('button', { type: 'submit', class: 'btn primary' }, 'Turn on'))), async (v) => {
			const res = await post('/v1/user/mfa-enable', { mfa_token: en.mfa_token, otp: v.otp.replace(/\s+/g, '') });
			close(res.tokens || []);
		}));
		if (!codes) return;
		const text = codes.join('\n');
		await dialog('Save your recovery codes', (close) => h('div', { class: 'stack' },
			h('p', {}, 'Each code signs you in once if you lose your authenticator. ', h('strong', {}, 'They are shown only now.')),
			h('pre', { class: 'recovery-codes' }, text),
			h('div', { class: 'row end' }, copyButton(text, 'Copy codes'), h('button', { type: 'button', class: 'btn primary', onclick: () => close() }, 'I have saved them'))));
		user.mfa = { enabled: true };
		drawMFA(root, user);
	});
}

function drawTokens(root, user) {
	const list = h('div', {});
	const show = onSubmit(h('form', { class: 'row' },
		h('input', { type: 'password', name: 'password', autocomplete: 'current-password', placeholder: 'Your password', 'aria-label': 'Password to list tokens', required: true }),
		h('button', { type: 'submit', class: 'btn' }, 'List tokens')), async (v) => {
		const toks = await get('/v1/access_tokens', { basic: [user.username, v.password] });
		mount(list, toks.length ? h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Access tokens' },
			h('thead', {}, h('tr', {}, ['Token (hash prefix)', 'Client', 'Expires'].map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, toks.map((t) => h('tr', {}, h('td', { class: 'mono' }, t.token), h('td', {}, t.client || ''), h('td', {}, t.expires_at ? new Date(t.expires_at).toLocaleString() : 'never'))))))
			: h('p', { class: 'muted' }, 'No active tokens.'));
	});
	const revoke = onSubmit(h('form', { class: 'row' },
		h('input', { type: 'password', name: 'token', autocomplete: 'off', placeholder: 'Paste a token to revoke', 'aria-label': 'Token to revoke', required: true }),
		h('button', { type: 'submit', class: 'btn' }, 'Revoke')), async (v, form) => {
		await del(`/v1/access_tokens/${seg(v.token.trim())}`, { auth: false });
		form.reset();
		toast('Token revoked');
	});
	const everywhere = h('button', { type: 'button', class: 'btn danger' }, 'Sign out everywhere');
	everywhere.addEventListener('click', async () => {
		if (!await confirmDialog('Sign out everywhere?', 'Every token of your account is revoked, this session\'s too: scripts and apps using them must sign in again.', 'Sign out everywhere')) return;
		try {
			await del('/v1/access_tokens');
		} catch (err) {
			toast(err.message, 'error');
			return;
		}
		session.clear();
		location.hash = '#/signin';
	});
	mount(root, h('h2', { id: 'tok-h' }, 'Access tokens'),
		h('p', { class: 'muted' }, 'Wick stores tokens only as hashes, so they are listed by the start of their hash; listing needs your password.'),
		show, list, h('hr', { class: 'sep' }), revoke, h('hr', { class: 'sep' }), h('div', { class: 'row' }, everywhere));
}

async function drawInvites(root) {
	const accept = onSubmit(h('form', { class: 'row' },
		h('input', { name: 'token', autocomplete: 'off', placeholder: 'Invitation code', 'aria-label': 'Invitation code', required: true }),
		h('button', { type: 'submit', class: 'btn' }, 'Accept')), async (v, form) => {
		const res = await post('/v1/user/team-invites/accept', { token: v.token.trim() });
		form.reset();
		toast(`You joined ${res.product ? res.product.name : 'the product'}`);
		drawInvites(root);
	});
	let pending = [];
	try {
		pending = (await get('/v1/user/team-invites')).invites || [];
	} catch (err) {
		mount(root, h('h2', { id: 'inv-h' }, 'Team invitations'), errorBox(err));
		return;
	}
	mount(root, h('h2', { id: 'inv-h' }, 'Team invitations'),
		pending.length ? pending.map((i) => h('div', { class: 'row between inv' },
			h('span', {}, h('strong', {}, i.product.name), ` as ${i.role ? i.role.name : ''}, from ${i.invited_by || 'the team'}`),
			h('button', { type: 'button', class: 'btn small danger', onclick: async () => {
				try {
					await del(`/v1/user/team-invites/${seg(i.product.slug || i.product.id)}`);
					toast('Invitation declined');
					drawInvites(root);
				} catch (err) {
					toast(err.message, 'error');
				}
			} }, 'Decline'))) : h('p', { class: 'muted' }, 'No invitations for you.'),
		h('p', { class: 'muted' }, 'To accept, paste the code the inviter gave you (or the one in the e-mail).'), accept);
}
