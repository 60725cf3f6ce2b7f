// Package store defines Wick's persistent aggregates and the per-aggregate
// interfaces that hold them.
//
// The interfaces here are implemented once, in package sqlstore, for SQLite
// (the embedded default) and PostgreSQL (scale-out). The conformance suite in
// package storetest runs against both. Callers never see SQL: they see these
// types and the sentinel errors ErrNotFound and ErrConflict, wrapped with
// context.
//
// Credentials are never stored in usable form: passwords are slow hashes,
// client secrets and tokens SHA-256 hashes, and TOTP secrets are sealed
// with the server's secret key before they reach the store.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound reports that the requested record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict reports that a record with the same unique key already exists.
var ErrConflict = errors.New("store: conflict")

// Every Create method sets CreatedAt (and UpdatedAt) to the current time
// when they are zero. Times are stored with millisecond precision in UTC.

// Store is every aggregate Wick persists. Implementations are safe for
// concurrent use by many goroutines and by several processes sharing one
// database.
type Store interface {
	Users
	Products
	Customers
	Clients
	Tokens
	Challenges
	Devices
	DTLSSessions
	ClaimCodes
	Webhooks
	Invites
	AuthCodes
	OAuthGrants
	FirmwareBinaries
	ProductFirmwares
	DeviceFirmwares
	// Close releases the database connections.
	Close() error
}

// Page selects a window of a list: Number is 1-based, Size is items per page.
// A zero Page means "everything".
type Page struct {
	Number int
	Size   int
}

// AccountInfo is the free-form profile a user keeps beside the login.
type AccountInfo struct {
	FirstName       string `json:"first_name"`
	LastName        string `json:"last_name"`
	CompanyName     string `json:"company_name,omitempty"`
	BusinessAccount bool   `json:"business_account"`
}

// User is a developer account. Username is a lower-case e-mail address and
// unique. IDs are 24 lower-case hex characters.
type User struct {
	ID           string
	Username     string
	PasswordHash string // argon2id PHC string; never empty for users
	AccountInfo  AccountInfo
	Verified     bool
	MFAEnabled   bool
	// MFASecret is the TOTP secret sealed with the server key; nil when MFA
	// is off.
	MFASecret []byte
	// MFARecoveryHashes are SHA-256 hex hashes of the unused recovery codes.
	MFARecoveryHashes []string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Version counts the row's updates (1 when created); UpdateUser checks
	// it when set, so a write based on a stale read fails with ErrStale.
	Version int64
}

// Users holds developer accounts.
type Users interface {
	// CreateUser inserts u, assigning u.ID (24 hex) when empty and the
	// timestamps when zero. It fails with ErrConflict if the username exists.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByUsername returns the user with that (lower-case) username or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UpdateUser replaces every mutable field of the user with ID u.ID.
	// It fails with ErrConflict on a username clash and ErrNotFound if absent.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes the user, its OAuth clients, its tokens, its
	// challenges, its claim codes, its team memberships and its sandbox
	// webhooks (ProductID 0) with their delivery logs, and unclaims its
	// devices (they keep name, notes and product), in one transaction.
	// Product webhooks it created stay. It fails with ErrNotFound if absent.
	DeleteUser(ctx context.Context, id string) error
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)
	// UseMFAStep records that the user spent the TOTP code of time step
	// step, atomically: it fails with ErrConflict when that step or a
	// later one was recorded before (a replayed code), and ErrNotFound if
	// the user is absent. UpdateUser never changes the record.
	UseMFAStep(ctx context.Context, userID string, step int64) error
}

// Product is a fleet of devices owned by a user, with its own team,
// customers and OAuth clients. ID is a positive integer; Slug is unique.
type Product struct {
	ID          int64
	Slug        string
	Name        string
	Description string
	PlatformID  int
	OwnerID     string // user ID of the creator
	Settings    []byte // JSON object, as given; "{}" when empty
	CreatedAt   time.Time
}

// Team roles.
const (
	RoleOwner         = "Owner"
	RoleAdministrator = "Administrator"
	RoleDeveloper     = "Developer"
	RoleSupport       = "Support"
	RoleViewOnly      = "View-only"
)

// TeamMember is a membership of a user, by username, in a product team.
// Members are keyed by username so that an invitation can precede the
// account it names.
type TeamMember struct {
	ProductID    int64
	Username     string
	Role         string
	Programmatic bool // an API user created for the team
	CreatedAt    time.Time
}

// Products holds products and their teams.
type Products interface {
	// CreateProduct inserts p, assigning p.ID, and adds the owner to the team
	// with RoleOwner. It fails with ErrConflict if the slug exists.
	CreateProduct(ctx context.Context, p *Product, ownerUsername string) error
	// ProductByID returns the product or ErrNotFound.
	ProductByID(ctx context.Context, id int64) (*Product, error)
	// ProductBySlug returns the product or ErrNotFound.
	ProductBySlug(ctx context.Context, slug string) (*Product, error)
	// ProductsForMember returns the products whose team lists username,
	// ordered by ID.
	ProductsForMember(ctx context.Context, username string) ([]Product, error)
	// AddTeamMember inserts m. It fails with ErrConflict if already a member.
	AddTeamMember(ctx context.Context, m *TeamMember) error
	// TeamMember returns the membership or ErrNotFound.
	TeamMember(ctx context.Context, productID int64, username string) (*TeamMember, error)
	// TeamMembers lists a product's team ordered by creation.
	TeamMembers(ctx context.Context, productID int64) ([]TeamMember, error)
	// RemoveTeamMember deletes the membership or fails with ErrNotFound.
	RemoveTeamMember(ctx context.Context, productID int64, username string) error
	// RenameTeamMember moves every membership of oldUsername to newUsername.
	RenameTeamMember(ctx context.Context, oldUsername, newUsername string) error
}

// Customer is an end user of a product. Email is any identifier unique
// within the product. An empty PasswordHash is a "shadow" customer created
// with no_password=true for two-legged authentication.
type Customer struct {
	ID           string
	ProductID    int64
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Customers holds the customers of products.
type Customers interface {
	// CreateCustomer inserts c, assigning c.ID (24 hex) when empty and the
	// timestamps when zero. It fails with ErrConflict if the e-mail is
	// already a customer of that product.
	CreateCustomer(ctx context.Context, c *Customer) error
	// CustomerByID returns the customer or ErrNotFound.
	CustomerByID(ctx context.Context, id string) (*Customer, error)
	// CustomerByEmail returns the product's customer or ErrNotFound.
	CustomerByEmail(ctx context.Context, productID int64, email string) (*Customer, error)
	// ListCustomers returns one page of a product's customers ordered by
	// creation, and the total count.
	ListCustomers(ctx context.Context, productID int64, page Page) ([]Customer, int, error)
	// UpdateCustomer replaces the mutable fields (PasswordHash, UpdatedAt).
	UpdateCustomer(ctx context.Context, c *Customer) error
	// DeleteCustomer removes the customer, its tokens and its claim codes,
	// and unclaims its devices, in one transaction; or fails with
	// ErrNotFound.
	DeleteCustomer(ctx context.Context, id string) error
}

// OAuth client types.
const (
	ClientInstalled = "installed"
	ClientWeb       = "web"
)

// Client is an OAuth client owned by a user (ProductID 0) or by a product
// (OwnerID empty). ID is "<slug>-<4 digits>".
type Client struct {
	ID          string
	Name        string
	Type        string // ClientInstalled or ClientWeb
	RedirectURI string
	Scope       string // space-separated; empty means full access
	SecretHash  string // argon2id PHC string of the secret
	OwnerID     string
	ProductID   int64
	CreatedAt   time.Time
	// Version counts the row's updates (1 when created); UpdateClient
	// checks it when set, so a write based on a stale read fails with
	// ErrStale.
	Version int64
}

// Clients holds OAuth clients.
type Clients interface {
	// CreateClient inserts c. It fails with ErrConflict if the ID exists.
	CreateClient(ctx context.Context, c *Client) error
	// ClientByID returns the client or ErrNotFound.
	ClientByID(ctx context.Context, id string) (*Client, error)
	// ClientsByOwner lists a user's own clients ordered by creation.
	ClientsByOwner(ctx context.Context, userID string) ([]Client, error)
	// ClientsByProduct lists a product's clients ordered by creation.
	ClientsByProduct(ctx context.Context, productID int64) ([]Client, error)
	// UpdateClient replaces Name and Scope (and RedirectURI). With a
	// Version it fails with ErrStale when the row's version differs; on
	// success the version goes up by one, in the row and in c.
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient removes the client or fails with ErrNotFound.
	DeleteClient(ctx context.Context, id string) error
}

// Token kinds: whom an access token acts for.
const (
	KindUser     = "user"     // a developer account
	KindCustomer = "customer" // one customer of one product
	KindProduct  = "product"  // a product bearer token (team-level access to one product)
)

// Token is an issued access token, stored only by the SHA-256 hex hash of
// its value.
type Token struct {
	Hash       string
	Kind       string // KindUser, KindCustomer or KindProduct
	UserID     string // KindUser
	CustomerID string // KindCustomer
	ProductID  int64  // KindCustomer and KindProduct
	ClientID   string // the OAuth client id used to mint it (any string for password grants)
	Scope      string // space-separated; empty means full access for the kind
	ExpiresAt  *time.Time
	CreatedAt  time.Time
}

// RefreshToken is an issued refresh token, stored only by hash. It carries
// the subject of the access token it was issued with.
type RefreshToken struct {
	Hash       string
	AccessHash string
	Kind       string
	UserID     string
	CustomerID string
	ProductID  int64
	ClientID   string
	Scope      string
	ExpiresAt  time.Time
	CreatedAt  time.Time
}

// Tokens holds access and refresh tokens.
type Tokens interface {
	// CreateToken inserts t.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token or ErrNotFound (expired tokens are
	// returned; the caller checks ExpiresAt).
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// TokensByUser lists a user's access tokens ordered by creation.
	TokensByUser(ctx context.Context, userID string) ([]Token, error)
	// DeleteToken removes one access token and the refresh tokens issued
	// with it, or fails with ErrNotFound.
	DeleteToken(ctx context.Context, hash string) error
	// DeleteTokensByUser removes every access and refresh token of a user and
	// returns the removed access-token hashes.
	DeleteTokensByUser(ctx context.Context, userID string) ([]string, error)
	// DeleteTokensByCustomer does the same for a customer.
	DeleteTokensByCustomer(ctx context.Context, customerID string) ([]string, error)
	// DeleteTokensByClient does the same for every token minted by a client.
	DeleteTokensByClient(ctx context.Context, clientID string) ([]string, error)
	// CreateRefreshToken inserts r.
	CreateRefreshToken(ctx context.Context, r *RefreshToken) error
	// TakeRefreshToken atomically deletes and returns the refresh token, so
	// that two concurrent uses cannot both succeed. ErrNotFound if absent.
	TakeRefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	// DeleteExpired removes access tokens, refresh tokens, challenges,
	// claim codes and team invitations that expired before now, and
	// authorization codes that expired AuthCodeRetention before now, and
	// returns how many rows went.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Challenge purposes.
const (
	ChallengeMFALogin      = "mfa-login"      // mfa_token of the password grant
	ChallengeMFAEnroll     = "mfa-enroll"     // pending TOTP enrolment
	ChallengePasswordReset = "password-reset" // password reset token
)

// Challenge is a short-lived, single-use secret (an mfa_token, an
// enrolment, a password-reset token), stored by hash.
type Challenge struct {
	Hash      string
	Purpose   string
	UserID    string
	Data      []byte // purpose-specific JSON, opaque to the store
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Challenges holds challenges.
type Challenges interface {
	// CreateChallenge inserts c.
	CreateChallenge(ctx context.Context, c *Challenge) error
	// ChallengeByHash returns the challenge with that hash and purpose, or
	// ErrNotFound (expired ones are returned; the caller checks).
	ChallengeByHash(ctx context.Context, hash, purpose string) (*Challenge, error)
	// DeleteChallenge removes it, or fails with ErrNotFound; a caller that
	// consumes a challenge treats ErrNotFound as "already used".
	DeleteChallenge(ctx context.Context, hash string) error
}
