package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// tokenCache holds verified Principals by the SHA-256 of their token so that
// an authenticated request does not read the database. Entries live ttl;
// the token's own expiry is checked by the caller on every hit.
//
// A miss that loads from the store races with a concurrent revoke: the
// revoke may drop the (absent) entry before the loader inserts what it read.
// gen counts drops; a loader inserts only if no drop happened since it
// started, so a revoked token is never cached.
type tokenCache struct {
	ttl  time.Duration
	size int

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]cacheEntry // guarded by mu
	gen     uint64                           // guarded by mu; bumped by every drop
}

// cacheEntry is one cached Principal; p is never modified after insertion.
type cacheEntry struct {
	p     *Principal
	until time.Time
}

// newTokenCache returns a cache of at most size entries that live ttl.
func newTokenCache(ttl time.Duration, size int) *tokenCache {
	return &tokenCache{ttl: ttl, size: size, entries: make(map[[sha256.Size]byte]cacheEntry)}
}

// get returns the Principal cached under key if its entry is still fresh at
// now. The result must not be modified.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (*Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.p, true
}

// generation returns the drop counter, read before a store lookup.
func (c *tokenCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches p under key unless a drop happened after gen was read.
func (c *tokenCache) put(key [sha256.Size]byte, p *Principal, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.size {
		c.evictLocked(now)
	}
	c.entries[key] = cacheEntry{p: p, until: now.Add(c.ttl)}
}

// evictLocked frees room: it drops stale entries and, if none were stale,
// a sixteenth of the entries in map order (which Go randomises).
func (c *tokenCache) evictLocked(now time.Time) {
	n := c.size/16 + 1
	dropped := 0
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
			dropped++
		}
	}
	if dropped > 0 {
		return
	}
	for k := range c.entries {
		if n == 0 {
			break
		}
		delete(c.entries, k)
		n--
	}
}

// drop removes the entries of the given token hashes (SHA-256 hex).
func (c *tokenCache) drop(hashes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range hashes {
		var key [sha256.Size]byte
		if hex.DecodedLen(len(h)) != len(key) {
			continue
		}
		if _, err := hex.Decode(key[:], []byte(h)); err != nil {
			continue
		}
		delete(c.entries, key)
	}
}

// len returns the number of entries, for tests.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// secretCache remembers recent successful client-secret verifications, so
// that repeated client_credentials grants do not each pay for argon2id. It
// is keyed by SHA-256(id "\x00" secret) and stores the SecretHash that was
// verified, so a hit counts only while the stored client still has that hash.
type secretCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]secretEntry // guarded by mu
}

// secretEntry is one remembered verification.
type secretEntry struct {
	clientID   string
	secretHash string
	until      time.Time
}

// newSecretCache returns a cache of at most size verifications living ttl.
func newSecretCache(ttl time.Duration, size int) *secretCache {
	return &secretCache{ttl: ttl, size: size, entries: make(map[[sha256.Size]byte]secretEntry)}
}

// secretKey is the cache key of a client id and secret.
func secretKey(id, secret string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// ok reports whether id and secret were verified against secretHash
// recently.
func (c *secretCache) ok(id, secret, secretHash string, now time.Time) bool {
	k := secretKey(id, secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[k]
	if !found {
		return false
	}
	if !now.Before(e.until) {
		delete(c.entries, k)
		return false
	}
	return e.clientID == id && e.secretHash == secretHash
}

// add remembers a successful verification.
func (c *secretCache) add(id, secret, secretHash string, now time.Time) {
	k := secretKey(id, secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		clear(c.entries)
	}
	c.entries[k] = secretEntry{clientID: id, secretHash: secretHash, until: now.Add(c.ttl)}
}

// dropClient forgets every verification of one client.
func (c *secretCache) dropClient(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.clientID == id {
			delete(c.entries, k)
		}
	}
}
