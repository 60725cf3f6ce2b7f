package store

import (
	"context"
	"time"
)

// OAuthGrant is a consent remembered by the browser sign-in: the scopes a
// user, or a customer of a product, allowed one client
// (docs/authentication.md, Remembered consent).
type OAuthGrant struct {
	Kind      string // KindUser or KindCustomer
	SubjectID string // the user's or the customer's ID
	ClientID  string
	Scope     string // space-separated and sorted; "*:*" is full access
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OAuthGrants holds remembered consents.
type OAuthGrants interface {
	// SaveOAuthGrant creates the grant of (Kind, SubjectID, ClientID), or
	// replaces its Scope and UpdatedAt, keeping its CreatedAt. Zero times
	// are set to now. It fails with ErrNotFound if the client does not
	// exist.
	SaveOAuthGrant(ctx context.Context, g *OAuthGrant) error
	// OAuthGrant returns one grant or ErrNotFound.
	OAuthGrant(ctx context.Context, kind, subjectID, clientID string) (*OAuthGrant, error)
	// OAuthGrantsBySubject lists a subject's grants, newest change first.
	OAuthGrantsBySubject(ctx context.Context, kind, subjectID string) ([]OAuthGrant, error)
	// DeleteOAuthGrant removes a grant together with every access and
	// refresh token the client obtained for the subject, and returns the
	// removed access-token hashes. ErrNotFound if there is no such grant.
	DeleteOAuthGrant(ctx context.Context, kind, subjectID, clientID string) ([]string, error)
}
