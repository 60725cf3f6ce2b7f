package sqlstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// BenchmarkTokenByHash measures the lookup behind every authenticated
// request that misses the token cache, on SQLite.
func BenchmarkTokenByHash(b *testing.B) {
	db := openSQLiteFile(b)
	defer db.Close()
	ctx := b.Context()
	exp := time.Now().Add(time.Hour)
	const n = 1000
	for i := range n {
		tok := &store.Token{Hash: fmt.Sprintf("%064x", i), Kind: store.KindUser, UserID: "0123456789abcdef01234567",
			ClientID: "particle-cli", ExpiresAt: &exp}
		if err := db.CreateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	hashes := make([]string, n)
	for i := range hashes {
		hashes[i] = fmt.Sprintf("%064x", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := db.TokenByHash(ctx, hashes[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTokenByHashParallel runs the lookup from many goroutines, as the
// API does, through the read pool.
func BenchmarkTokenByHashParallel(b *testing.B) {
	db := openSQLiteFile(b)
	defer db.Close()
	ctx := b.Context()
	hash := fmt.Sprintf("%064x", 42)
	if err := db.CreateToken(ctx, &store.Token{Hash: hash, Kind: store.KindUser, UserID: "u"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.TokenByHash(ctx, hash); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateToken measures a single-row write through the SQLite
// writer.
func BenchmarkCreateToken(b *testing.B) {
	db := openSQLiteFile(b)
	defer db.Close()
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tok := &store.Token{Hash: fmt.Sprintf("%064x", i), Kind: store.KindUser, UserID: "u"}
		if err := db.CreateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
