export async function hooksPage(root) { root.textContent = "Hooks"; }
