export async function accountPage(root) { root.textContent = "Account"; }
