// Integrations: the user's own webhooks with their delivery logs.

import { h, mount, pageHead } from '../ui.js';
import { hooksView } from '../hooks-view.js';

export async function hooksPage(root, ctx) {
	const view = h('div', {});
	mount(root, pageHead('Integrations', 'Webhooks of your account. A product\'s webhooks are on the product\'s Integrations tab.'), view);
	await hooksView(view, '/v1/integrations', { hrefFor: (id) => `#/integrations/${id}`, selected: ctx.params.hook });
}
