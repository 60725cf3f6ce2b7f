package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// Names of the rows in the store's cluster keys (docs/scaling.md, One
// identity). The private keys are stored as PEM sealed under the secret key
// with clusterSealPrefix+name as additional data.
const (
	clusterKeyCheck   = "secret-key-check"
	clusterKeyRSA     = "server-key-rsa"
	clusterKeyEC      = "server-key-ec"
	clusterSealPrefix = "wick-cluster-key/"
	secretCheckLabel  = "wick secret key check v1"
)

// ErrSecretKeyMismatch reports a server whose secret key file differs from
// the one the first server of the cluster stored a check value of.
var ErrSecretKeyMismatch = errors.New("server: the secret key differs from the cluster's")

// clusterStore is a store that may hold the cluster's shared keys.
type clusterStore interface {
	store.ClusterKeys
	store.SharedStore
}

// shared returns st as a clusterStore when st is shared by several servers
// (PostgreSQL); ok is false for a single-server store.
func shared(st any) (clusterStore, bool) {
	cs, ok := st.(clusterStore)
	if !ok || !cs.Shared() {
		return nil, false
	}
	return cs, true
}

// loadKeys returns the device server keys for a server using st: from the
// data directory for a single server, from the shared store for a cluster.
func loadKeys(ctx context.Context, cfg config.Serve, st any, log *slog.Logger) (*ServerKeys, error) {
	cs, ok := shared(st)
	if !ok {
		return LoadServerKeys(cfg)
	}
	secret, err := loadSecretKey(cfg.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	return loadClusterKeys(ctx, cfg, cs, secret, log)
}

// loadClusterKeys checks that secret is the cluster's secret key and returns
// the server keys stored in cs, storing them first when this is the first
// server: keys already in this server's data directory (an installation
// turning into a cluster keeps its identity) or new ones. Every server that
// starts at the same time ends up with the first writer's keys.
func loadClusterKeys(ctx context.Context, cfg config.Serve, cs store.ClusterKeys, secret []byte, log *slog.Logger) (*ServerKeys, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(secretCheckLabel))
	check := mac.Sum(nil)
	got, err := cs.InsertClusterKey(ctx, clusterKeyCheck, check)
	if err != nil {
		return nil, fmt.Errorf("server: cluster secret key check: %w", err)
	}
	if !hmac.Equal(got, check) {
		return nil, fmt.Errorf("%w: copy the secret key file of a running server to %s on this one (docs/scaling.md)",
			ErrSecretKeyMismatch, cfg.SecretKeyFile)
	}
	rsaKey, err := clusterKey(ctx, cs, secret, clusterKeyRSA, filepath.Join(cfg.Data, rsaKeyFile), log, func() (crypto.Signer, error) {
		return protocol.GenerateServerKey(rand.Reader)
	})
	if err != nil {
		return nil, err
	}
	ecKey, err := clusterKey(ctx, cs, secret, clusterKeyEC, filepath.Join(cfg.Data, ecKeyFile), log, func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil {
		return nil, err
	}
	rk, ok := rsaKey.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != protocol.ServerKeyBits {
		return nil, fmt.Errorf("%s %s in the store must be RSA-%d", errKeyWord, clusterKeyRSA, protocol.ServerKeyBits)
	}
	ek, ok := ecKey.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s %s in the store must be an EC P-256 key", errKeyWord, clusterKeyEC)
	}
	return &ServerKeys{RSA: rk, EC: ek}, nil
}

// clusterKey returns the private key stored under name, storing the key of
// file (when it exists) or a generated one first if none is stored. It
// writes the public halves beside file so that operators and `wick sim`
// find the cluster's key where a single server keeps its own.
func clusterKey(ctx context.Context, cs store.ClusterKeys, secret []byte, name, file string, log *slog.Logger,
	generate func() (crypto.Signer, error)) (crypto.Signer, error) {
	ad := []byte(clusterSealPrefix + name)
	sealed, err := cs.ClusterKey(ctx, name)
	var local crypto.Signer
	if errors.Is(err, store.ErrNotFound) {
		local, err = readKeyFile(file)
		if err != nil {
			return nil, err
		}
		if local == nil {
			if local, err = generate(); err != nil {
				return nil, fmt.Errorf("%s: generate: %w", errKeyWord, err)
			}
		}
		pemKey, err := protocol.MarshalPrivateKeyPEM(local)
		if err != nil {
			return nil, err
		}
		mine, err := auth.Seal(secret, pemKey, ad)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", errKeyWord, name, err)
		}
		if sealed, err = cs.InsertClusterKey(ctx, name, mine); err != nil {
			return nil, fmt.Errorf("%s %s: %w", errKeyWord, name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errKeyWord, name, err)
	}
	pemKey, err := auth.Open(secret, sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errKeyWord, name, err)
	}
	k, err := protocol.ParsePrivateKey(pemKey)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errKeyWord, name, err)
	}
	if local == nil {
		if local, err = readKeyFile(file); err != nil {
			return nil, err
		}
	}
	type equaler interface{ Equal(crypto.PrivateKey) bool }
	if e, ok := local.(equaler); ok && !e.Equal(k) {
		log.Warn("server: this server's key file differs from the cluster's key; using the cluster's (devices given the file's key must be given the cluster's)",
			"file", file, "key", name)
	}
	if err := writePublicHalves(file, k); err != nil {
		return nil, err
	}
	return k, nil
}

// readKeyFile parses the PEM private key in path, or returns nil when the
// file does not exist.
func readKeyFile(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errKeyWord, err)
	}
	k, err := protocol.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", errKeyWord, path, err)
	}
	return k, nil
}

// writePublicHalves writes k's public key as PEM and DER beside the private
// key file path (which it does not write: a cluster's private keys live in
// the store only).
func writePublicHalves(path string, k crypto.Signer) error {
	pubPEM, err := protocol.MarshalPublicKeyPEM(k.Public())
	if err != nil {
		return err
	}
	pubDER, err := protocol.MarshalPublicKeyDER(k.Public())
	if err != nil {
		return err
	}
	base := path[:len(path)-len(keySuffix)]
	if err := os.WriteFile(base+pubPEMExt, pubPEM, pubFileMod); err != nil {
		return fmt.Errorf("%s: %w", errKeyWord, err)
	}
	if err := os.WriteFile(base+pubDERExt, pubDER, pubFileMod); err != nil {
		return fmt.Errorf("%s: %w", errKeyWord, err)
	}
	return nil
}
