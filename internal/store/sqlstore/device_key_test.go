package sqlstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// keyTestDSNs returns, by dialect, a function that makes a DSN of a new
// database that can be opened twice: a SQLite file, and a PostgreSQL
// schema when WICK_TEST_POSTGRES_URL is set.
func keyTestDSNs() map[string]func(t *testing.T) string {
	dsns := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "wick.db") },
	}
	if os.Getenv(postgresEnv) != "" {
		dsns["postgres"] = func(t *testing.T) string { return freshSchema(t) }
	}
	return dsns
}

// TestKeyFingerprintBackfill opens a database whose ECC keys have no
// fingerprint, as rows written before migration 0007 or by an older
// binary: Open indexes them, leaves a key that another device already has
// unindexed with a warning, and ignores RSA keys.
func TestKeyFingerprintBackfill(t *testing.T) {
	for name, newDSN := range keyTestDSNs() {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			dsn := newDSN(t)
			db, err := Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			keyA, keyB, keyR := []byte("ecc-key-a"), []byte("ecc-key-b"), []byte("rsa-key")
			for id, k := range map[string]struct {
				alg string
				key []byte
			}{"aa0000000000000000000001": {store.KeyECC, keyA}, "aa0000000000000000000002": {store.KeyECC, keyB},
				"aa0000000000000000000003": {store.KeyRSA, keyR}} {
				if _, err := db.ProvisionDevice(ctx, id, k.alg, k.key, 0); err != nil {
					t.Fatal(err)
				}
			}
			// Forget the index, and add a device that shares key A, as
			// nothing stopped before the index existed.
			if _, err := db.exec(ctx, db.w, `UPDATE devices SET key_fingerprint = NULL`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.exec(ctx, db.w, `INSERT INTO devices (id, public_key, key_algorithm, created_at, updated_at)
				VALUES (?, ?, 'ecc', 0, 0)`, "aa0000000000000000000004", keyA); err != nil {
				t.Fatal(err)
			}
			if _, err := db.DeviceByPublicKey(ctx, keyA); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("before the backfill: err = %v; want not found", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			db, err = Open(ctx, dsn, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for key, want := range map[string]string{"ecc-key-a": "aa0000000000000000000001", "ecc-key-b": "aa0000000000000000000002", "rsa-key": ""} {
				d, err := db.DeviceByPublicKey(ctx, []byte(key))
				got := ""
				if err == nil {
					got = d.ID
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("key %q finds %q; want %q", key, got, want)
				}
			}
			if !strings.Contains(logs.String(), "aa0000000000000000000004") || !strings.Contains(logs.String(), "devices=2") {
				t.Errorf("log lacks the unindexed device or the count:\n%s", logs.String())
			}
			// Still refused as another device's key; a new key indexes it.
			if _, err := db.ProvisionDevice(ctx, "aa0000000000000000000004", store.KeyECC, keyA, 0); !errors.Is(err, store.ErrConflict) {
				t.Errorf("re-provisioning the shared key: err = %v; want a conflict", err)
			}
			if _, err := db.ProvisionDevice(ctx, "aa0000000000000000000004", store.KeyECC, []byte("ecc-key-c"), 0); err != nil {
				t.Fatal(err)
			}
			if d, err := db.DeviceByPublicKey(ctx, []byte("ecc-key-c")); err != nil || d.ID != "aa0000000000000000000004" {
				t.Errorf("new key: %v, %v", d, err)
			}
		})
	}
}

// TestProvisionConflictMessage checks that the store's refusal says what
// happened, for the logs of callers that pass it on.
func TestProvisionConflictMessage(t *testing.T) {
	db, err := Open(t.Context(), "sqlite::memory:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 2 {
		_, err = db.ProvisionDevice(t.Context(), fmt.Sprintf("bb%022d", i), store.KeyECC, []byte("same"), 0)
	}
	if err == nil || !strings.Contains(err.Error(), "another device's key") || !strings.HasPrefix(err.Error(), "sqlstore: ") {
		t.Errorf("err = %v; want a sqlstore error naming the key conflict", err)
	}
}

// BenchmarkDeviceByPublicKey measures the key lookup of every DTLS
// handshake, among 1,000 devices with 91-byte keys.
func BenchmarkDeviceByPublicKey(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		keys := make([][]byte, n)
		for i := range keys {
			keys[i] = bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x30}, 31)[:91]
			if _, err := db.ProvisionDevice(b.Context(), fmt.Sprintf("e00fce68%016x", i), store.KeyECC, keys[i], 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := db.DeviceByPublicKey(b.Context(), keys[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkSaveDTLSSession measures saving a session after a handshake,
// over 1,000 devices' sessions of 200 bytes of state.
func BenchmarkSaveDTLSSession(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		ids := seedDevices(b, db, n)
		state := bytes.Repeat([]byte{0xa5}, 200)
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			cid := []byte(fmt.Sprintf("%08x", i%n))
			err := db.SaveDTLSSession(b.Context(), store.DTLSSession{
				CID: cid, DeviceID: ids[i%n], State: state, Addr: "198.51.100.1:5684", UpdatedAt: time.Now(),
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkDTLSSession measures finding a saved session by connection ID,
// the lookup of a resumed device's first record.
func BenchmarkDTLSSession(b *testing.B) {
	benchDialects(b, func(b *testing.B, db *DB) {
		const n = 1000
		ids := seedDevices(b, db, n)
		cids := make([][]byte, n)
		for i := range cids {
			cids[i] = []byte(fmt.Sprintf("%08x", i))
			if err := db.SaveDTLSSession(b.Context(), store.DTLSSession{CID: cids[i], DeviceID: ids[i], State: make([]byte, 200)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := db.DTLSSession(b.Context(), cids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
