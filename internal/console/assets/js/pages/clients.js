export async function clientsPage(root) { root.textContent = "Clients"; }
