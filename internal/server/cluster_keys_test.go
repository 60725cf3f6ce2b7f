package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/internal/store/storetest"
	"github.com/wick-cloud/wick/protocol"
)

// memClusterKeys is an in-memory store.ClusterKeys.
type memClusterKeys struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memClusterKeys) ClusterKey(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (m *memClusterKeys) InsertClusterKey(_ context.Context, name string, v []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	if old, ok := m.m[name]; ok {
		return old, nil
	}
	m.m[name] = v
	return v, nil
}

// nodeConfig is the config of one cluster node with its own data directory
// and the given secret key.
func nodeConfig(t *testing.T, db string, secret []byte) config.Serve {
	t.Helper()
	cfg := testConfig(t)
	cfg.DB = db
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg.SecretKeyFile = filepath.Join(cfg.Data, "secret.key")
	if err := os.WriteFile(cfg.SecretKeyFile, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// TestClusterKeysAdoptLocalAndCheckSecret: the first node stores the keys
// of its data directory, a second node with an empty data directory gets
// the same keys (and their public halves), a node with another secret key
// is refused, and nothing private lands in the second data directory.
func TestClusterKeysAdoptLocalAndCheckSecret(t *testing.T) {
	ctx := context.Background()
	secret := randomKey(t)
	cs := &memClusterKeys{}
	first := nodeConfig(t, "sqlite::memory:", secret)
	own, err := LoadServerKeys(first) // an installation about to become a cluster
	if err != nil {
		t.Fatal(err)
	}
	k1, err := loadClusterKeys(ctx, first, cs, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.RSA.Equal(own.RSA) || !k1.EC.Equal(own.EC) {
		t.Fatal("the first node did not keep its existing keys")
	}
	second := nodeConfig(t, "sqlite::memory:", secret)
	k2, err := loadClusterKeys(ctx, second, cs, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.RSA.Equal(own.RSA) || !k2.EC.Equal(own.EC) {
		t.Fatal("the second node got other keys")
	}
	if _, err := os.Stat(filepath.Join(second.Data, rsaKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private key file written on a cluster node: %v", err)
	}
	der, err := os.ReadFile(filepath.Join(second.Data, "server_ec_key.pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := protocol.MarshalPublicKeyDER(own.EC.Public())
	if !bytes.Equal(der, want) {
		t.Error("server_ec_key.pub.der is not the cluster's key")
	}
	for name, v := range cs.m {
		if bytes.Contains(v, []byte("PRIVATE KEY")) {
			t.Errorf("cluster key %s stored unsealed", name)
		}
	}
	other := randomKey(t)
	if _, err := loadClusterKeys(ctx, nodeConfig(t, "sqlite::memory:", other), cs, other, nil); !errors.Is(err, ErrSecretKeyMismatch) {
		t.Fatalf("node with another secret key: %v; want ErrSecretKeyMismatch", err)
	}
}

// postgresSchema returns a DSN for a fresh PostgreSQL schema dropped when
// the test ends, or skips without WICK_TEST_POSTGRES_URL.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WICK_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("WICK_TEST_POSTGRES_URL not set; skipping the PostgreSQL cluster test")
	}
	return storetest.PostgresSchema(t, base, "wick_test_")
}

// TestClusterKeysPostgresConcurrentStart starts four nodes at once on one
// fresh PostgreSQL schema (migrations and key generation racing), and
// checks they all use one identity, which `wick keys server` reads too.
func TestClusterKeysPostgresConcurrentStart(t *testing.T) {
	dsn := postgresSchema(t)
	ctx := context.Background()
	secret := randomKey(t)
	const nodes = 4
	keys := make([]*ServerKeys, nodes)
	errs := make([]error, nodes)
	cfgs := make([]config.Serve, nodes)
	for i := range cfgs {
		cfgs[i] = nodeConfig(t, dsn, secret)
	}
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			st, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			keys[i], errs[i] = loadKeys(ctx, cfgs[i], st, nil)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	for i := 1; i < nodes; i++ {
		if !keys[i].RSA.Equal(keys[0].RSA) || !keys[i].EC.Equal(keys[0].EC) {
			t.Fatalf("node %d has another identity", i)
		}
	}
	blob, err := ServerKeyBlob(nodeConfig(t, dsn, secret), "udp", "wick.example.com", 5684)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := protocol.DecodeServerKeyBlob(protocol.TransportUDP, blob)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := protocol.MarshalPublicKeyDER(keys[0].EC.Public())
	if !bytes.Equal(dec.KeyDER, want) {
		t.Fatal("wick keys server on the cluster wrote another key")
	}
	if _, err := ServerKeyBlob(nodeConfig(t, dsn, randomKey(t)), "tcp", "h", 1); !errors.Is(err, ErrSecretKeyMismatch) {
		t.Fatalf("keys server with another secret key: %v; want ErrSecretKeyMismatch", err)
	}
}
