package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

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

// Sizes of the salt and derived key of new hashes, in bytes.
const (
	saltLen = 16
	keyLen  = 32
)

// Bounds on the parameters a PHC string may carry, so that a corrupt or
// hostile hash cannot make verification allocate gigabytes or spin forever.
const (
	maxMemoryKiB = 1 << 21 // 2 GiB
	maxTime      = 1 << 10
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 128
)

// phcEncoding is the unpadded standard base64 of the PHC string format.
var phcEncoding = base64.RawStdEncoding.Strict()

// errPHC reports a hash that is not an argon2id PHC string this package reads.
var errPHC = errors.New("auth: malformed argon2id hash")

// Hash returns the PHC string of password under a fresh 16-byte salt.
func (h *Hasher) Hash(password string) (string, error) {
	if h == nil {
		h = DefaultHasher()
	}
	if h.Time < 1 || h.Time > maxTime || h.Threads < 1 ||
		h.MemoryKiB < 8*uint32(h.Threads) || h.MemoryKiB > maxMemoryKiB {
		return "", fmt.Errorf("auth: bad hasher parameters t=%d m=%d p=%d", h.Time, h.MemoryKiB, h.Threads)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	p := phc{
		time:    h.Time,
		memory:  h.MemoryKiB,
		threads: h.Threads,
		salt:    salt,
		key:     argon2.IDKey([]byte(password), salt, h.Time, h.MemoryKiB, h.Threads, keyLen),
	}
	return p.String(), nil
}

// VerifyPassword reports whether password matches the argon2id PHC string
// encoded, reading the parameters from the string and comparing in constant
// time. A malformed hash matches nothing.
func VerifyPassword(encoded, password string) bool {
	p, err := parsePHC(encoded)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// phc is a decoded argon2id PHC string.
type phc struct {
	time    uint32
	memory  uint32
	threads uint8
	salt    []byte
	key     []byte
}

// String encodes p as $argon2id$v=19$m=M,t=T,p=P$salt$key.
func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads,
		phcEncoding.EncodeToString(p.salt), phcEncoding.EncodeToString(p.key))
}

// parsePHC decodes an argon2id PHC string of version 19 whose parameters
// appear in the canonical order m, t, p.
func parsePHC(s string) (phc, error) {
	var p phc
	if strings.ContainsAny(s, "\r\n") { // base64 decoding would skip them
		return p, errPHC
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, errPHC
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, errPHC
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, errPHC
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return p, errPHC
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, errPHC
		}
		vals[i] = n
	}
	p.memory, p.time = uint32(vals[0]), uint32(vals[1])
	if vals[2] < 1 || vals[2] > 255 {
		return p, errPHC
	}
	p.threads = uint8(vals[2])
	if p.time < 1 || p.time > maxTime || p.memory < 8*uint32(p.threads) || p.memory > maxMemoryKiB {
		return p, errPHC
	}
	var err error
	if p.salt, err = phcEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return p, errPHC
	}
	if p.key, err = phcEncoding.DecodeString(parts[5]); err != nil || len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return p, errPHC
	}
	return p, nil
}

// tokenLen is the length of every token, mfa_token and reset token.
const tokenLen = 40

// NewToken returns a fresh token: 40 lower-case hex characters from crypto/rand.
func NewToken() (string, error) {
	var b [tokenLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// HashToken returns the SHA-256 hex hash under which a token is stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidTokenFormat reports whether s has the shape of a token: exactly 40
// lower-case hex characters. It is a cheap check done before any lookup.
func ValidTokenFormat(s string) bool {
	if len(s) != tokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// secretHashPrefix starts the fast hash of a high-entropy secret.
const secretHashPrefix = "$sha256$"

// HashSecret returns the fast hash of a high-entropy secret such as a
// client secret (160 random bits): "$sha256$" and the unpadded base64 of
// its SHA-256. A slow, salted hash protects guessable passwords; a
// uniformly random 160-bit secret cannot be guessed, so SHA-256 is as safe
// for it and costs no memory (docs/security.md, Secrets at rest).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return secretHashPrefix + phcEncoding.EncodeToString(sum[:])
}

// isSecretHash reports whether encoded was made by HashSecret.
func isSecretHash(encoded string) bool { return strings.HasPrefix(encoded, secretHashPrefix) }

// verifySecretHash reports, in constant time, whether secret matches a
// HashSecret hash.
func verifySecretHash(encoded, secret string) bool {
	return subtle.ConstantTimeCompare([]byte(encoded), []byte(HashSecret(secret))) == 1
}
