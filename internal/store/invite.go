package store

import (
	"context"
	"time"
)

// Invite is a pending invitation of an e-mail address to a product team.
// It grants nothing: the address's owner becomes a member only by
// accepting it while logged in as that address, with the invitation's
// secret (docs/api.md, Team invitations). The secret is stored only as
// the SHA-256 hex of its value.
type Invite struct {
	ProductID int64
	Username  string // the invited address, lower-case
	Role      string
	InvitedBy string // username of the inviter
	TokenHash string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Invites holds pending team invitations, at most one per product and
// address.
type Invites interface {
	// PutInvite inserts inv, or replaces the pending invitation of the
	// same product and address (a new secret, role and expiry). It fails
	// with ErrConflict when the address is already on the team.
	PutInvite(ctx context.Context, inv *Invite) error
	// InviteByHash returns the invitation whose secret has that hash, or
	// ErrNotFound (expired ones are returned; the caller checks).
	InviteByHash(ctx context.Context, hash string) (*Invite, error)
	// InvitesByProduct lists a product's pending invitations by creation.
	InvitesByProduct(ctx context.Context, productID int64) ([]Invite, error)
	// InvitesByUsername lists the pending invitations of an address by
	// creation.
	InvitesByUsername(ctx context.Context, username string) ([]Invite, error)
	// DeleteInvite removes the invitation of that product and address, or
	// fails with ErrNotFound.
	DeleteInvite(ctx context.Context, productID int64, username string) error
	// AcceptInvite turns the invitation of that product and address into
	// a team membership with its role, in one transaction, and returns
	// the membership. It fails with ErrNotFound when there is no such
	// invitation; when the address is already a member it removes the
	// invitation and fails with ErrConflict.
	AcceptInvite(ctx context.Context, productID int64, username string) (*TeamMember, error)
}
