package store

import "context"

// ProductAccess is a product read together with where a user stands with
// it, as a team route's authorization needs them.
type ProductAccess struct {
	// Product is the product.
	Product Product
	// UserExists is false when no user has the ID asked about (a token
	// whose account is gone).
	UserExists bool
	// Member is true when the user is on the product's team.
	Member bool
}

// TeamAccess is implemented by stores that read a product, whether a user
// exists and whether that user is on the product's team in one statement,
// so that authorizing a team route is one round trip instead of three
// (ProductByID or ProductBySlug, UserByID, TeamMember). Nothing is cached:
// every call reads the current team.
type TeamAccess interface {
	// ProductAccessByID returns the product with that ID and the standing
	// of the user with userID, or ErrNotFound when there is no such
	// product (whatever the user).
	ProductAccessByID(ctx context.Context, productID int64, userID string) (*ProductAccess, error)
	// ProductAccessBySlug is ProductAccessByID for a product's slug.
	ProductAccessBySlug(ctx context.Context, slug, userID string) (*ProductAccess, error)
}

// ProductRef names a product as a request's path does: by Slug when it
// is not empty, else by ID.
type ProductRef struct {
	ID   int64
	Slug string
}

// Granted reports whether a's user exists and is on the team of the
// product with productID.
func (a *ProductAccess) Granted(productID int64) bool {
	return a != nil && a.UserExists && a.Member && a.Product.ID == productID
}

// ProductDevicePageAccess is implemented by stores that read a user's
// standing with a product (TeamAccess) together with a page of its
// cached device order (ProductDevicePages): on PostgreSQL the access
// statement goes first in the page's batch, so that authorizing and
// reading a page is one round trip. The page is returned only to a user
// granted access to that product; nothing of it otherwise.
type ProductDevicePageAccess interface {
	// ReadProductDevicePageFor returns the standing of the user with
	// userID with the product of ref (ProductAccessByID or
	// ProductAccessBySlug: ErrNotFound when there is no such product)
	// and, when a.Granted(productID), ReadProductDevicePage(productID,
	// since, ids); else the zero read, and no error of the page's reads.
	ReadProductDevicePageFor(ctx context.Context, ref ProductRef, userID string, productID, since int64,
		ids []string) (a *ProductAccess, r ProductDevicePageRead, err error)
}
