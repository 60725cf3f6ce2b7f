// Authentication: the user's own OAuth clients.

import { h, mount, pageHead } from '../ui.js';
import { clientsView } from '../clients-view.js';

export async function clientsPage(root) {
	const view = h('section', { class: 'panel' });
	mount(root, pageHead('Authentication', 'OAuth clients of your account. A product\'s clients are on the product\'s Authentication tab.'), view);
	await clientsView(view, '/v1/clients');
}
