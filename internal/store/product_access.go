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
