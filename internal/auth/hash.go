package auth

// Hasher hashes passwords and client secrets with argon2id and encodes the
// result as a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
// Hashes made with other parameters still verify.
type Hasher struct {
	Time      uint32 // iterations
	MemoryKiB uint32
	Threads   uint8
}

// DefaultHasher returns the production parameters (OWASP's argon2id
// recommendation: 19 MiB, 2 iterations, 1 thread).
func DefaultHasher() *Hasher { return &Hasher{Time: 2, MemoryKiB: 19 * 1024, Threads: 1} }

// TestHasher returns cheap parameters for tests. Never use it in production.
func TestHasher() *Hasher { return &Hasher{Time: 1, MemoryKiB: 64, Threads: 1} }

// NewToken returns a fresh token: 40 lower-case hex characters from crypto/rand.
func NewToken() (string, error) { panic("auth: not implemented") }

// HashToken returns the SHA-256 hex hash under which a token is stored.
func HashToken(token string) string { panic("auth: not implemented") }
