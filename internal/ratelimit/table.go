// Package ratelimit holds Wick's keyed limiters: fixed-window request
// counters (Window), token buckets (Buckets), failure lockouts (Lockout)
// and short-lived sets of keys (Recent). Each is split into shards with their own lock, and each
// shard keeps its keys in least-recently-used order, so memory is bounded
// by a key count and a new key evicts the stalest one in constant time.
// A full limiter never scans its keys. It imports nothing of Wick's.
package ratelimit

import (
	"hash/maphash"
	"sync"
)

// shardCount is how many independently locked parts a table has.
const shardCount = 64

// table maps keys to values of type V in shards, each bounded and kept in
// least-recently-used order by an intrusive list.
type table[V any] struct {
	seed     maphash.Seed
	perShard int
	shards   [shardCount]shard[V]
}

// shard is one locked part of a table.
type shard[V any] struct {
	mu   sync.Mutex
	m    map[string]*entry[V] // guarded by mu
	head *entry[V]            // most recently used; guarded by mu
	tail *entry[V]            // least recently used; guarded by mu
}

// entry is one key's value and its place in the shard's list.
type entry[V any] struct {
	key        string
	val        V
	prev, next *entry[V]
}

// newTable returns a table holding at most about maxKeys keys (at least
// one per shard).
func newTable[V any](maxKeys int) *table[V] {
	per := (maxKeys + shardCount - 1) / shardCount
	if per < 1 {
		per = 1
	}
	t := &table[V]{seed: maphash.MakeSeed(), perShard: per}
	for i := range t.shards {
		t.shards[i].m = map[string]*entry[V]{}
	}
	return t
}

// shard returns the shard of key.
func (t *table[V]) shard(key string) *shard[V] {
	return &t.shards[maphash.String(t.seed, key)%shardCount]
}

// update runs fn on key's value with the shard locked, creating a zero
// value (and evicting the least recently used key of a full shard) when
// create is set. It reports whether fn ran. When fn returns true the key
// is deleted afterwards.
func (t *table[V]) update(key string, create bool, fn func(v *V) (drop bool)) bool {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	switch {
	case e != nil:
		s.unlink(e)
	case !create:
		return false
	case len(s.m) >= t.perShard:
		e = s.tail // reuse the evicted entry: no allocation
		s.unlink(e)
		delete(s.m, e.key)
		var zero V
		e.key, e.val = key, zero
		s.m[key] = e
	default:
		e = &entry[V]{key: key}
		s.m[key] = e
	}
	if fn(&e.val) {
		delete(s.m, key)
		return true
	}
	s.pushFront(e)
	return true
}

// remove deletes key.
func (t *table[V]) remove(key string) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		s.unlink(e)
		delete(s.m, key)
	}
}

// len counts the keys held.
func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// unlink takes e out of the list. Called with mu held.
func (s *shard[V]) unlink(e *entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if s.head == e {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if s.tail == e {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// pushFront makes e the most recently used. Called with mu held.
func (s *shard[V]) pushFront(e *entry[V]) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}
