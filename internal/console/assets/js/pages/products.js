export async function productsPage(root) { root.textContent = 'Products'; }
export async function productPage(root) { root.textContent = 'Product'; }
