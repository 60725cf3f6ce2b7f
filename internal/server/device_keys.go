package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/protocol"
)

// Server key files in the data directory. The private keys are PEM (RSA
// PKCS#1, EC SEC1) with mode 0600; the public halves are written beside them
// as PEM and DER for `particle keys server` and for operators.
const (
	rsaKeyFile = "server_key.pem"     // RSA-2048, TCP transport
	ecKeyFile  = "server_ec_key.pem"  // P-256, DTLS transport
	pubPEMExt  = ".pub.pem"           // public key beside each private key
	pubDERExt  = ".pub.der"           // ... and in DER
	keyFileMod = 0o600                // private keys
	pubFileMod = 0o644                // public keys
	keySuffix  = ".pem"               // stripped before adding pubPEMExt
	errKeyWord = "server: server key" // prefix of key errors
)

// ServerKeys are the device-facing identities of this Wick installation.
type ServerKeys struct {
	RSA *rsa.PrivateKey   // TCP (Gen 2) handshake key
	EC  *ecdsa.PrivateKey // DTLS (Gen 3) handshake key
}

// LoadServerKeys reads the server keys from the data directory, creating
// them on first use.
func LoadServerKeys(cfg config.Serve) (*ServerKeys, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data directory: %w", err)
	}
	rsaKey, err := loadOrCreateKey(filepath.Join(cfg.Data, rsaKeyFile), func() (crypto.Signer, error) {
		return protocol.GenerateServerKey(rand.Reader)
	})
	if err != nil {
		return nil, err
	}
	ecKey, err := loadOrCreateKey(filepath.Join(cfg.Data, ecKeyFile), func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil {
		return nil, err
	}
	rk, ok := rsaKey.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != protocol.ServerKeyBits {
		return nil, fmt.Errorf("%s %s must be RSA-%d", errKeyWord, rsaKeyFile, protocol.ServerKeyBits)
	}
	ek, ok := ecKey.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s %s must be an EC P-256 key", errKeyWord, ecKeyFile)
	}
	return &ServerKeys{RSA: rk, EC: ek}, nil
}

// loadOrCreateKey reads a PEM private key, or generates and writes one (and
// its public halves) when the file does not exist.
func loadOrCreateKey(path string, generate func() (crypto.Signer, error)) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := protocol.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", errKeyWord, path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", errKeyWord, err)
	}
	k, err := generate()
	if err != nil {
		return nil, fmt.Errorf("%s: generate: %w", errKeyWord, err)
	}
	privPEM, err := protocol.MarshalPrivateKeyPEM(k)
	if err != nil {
		return nil, err
	}
	pubPEM, err := protocol.MarshalPublicKeyPEM(k.Public())
	if err != nil {
		return nil, err
	}
	pubDER, err := protocol.MarshalPublicKeyDER(k.Public())
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keyFileMod)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKey(path, generate) // another process won the race
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", errKeyWord, err)
	}
	if _, err := f.Write(privPEM); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: write: %w", errKeyWord, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: write: %w", errKeyWord, err)
	}
	base := path[:len(path)-len(keySuffix)]
	if err := os.WriteFile(base+pubPEMExt, pubPEM, pubFileMod); err != nil {
		return nil, fmt.Errorf("%s: %w", errKeyWord, err)
	}
	if err := os.WriteFile(base+pubDERExt, pubDER, pubFileMod); err != nil {
		return nil, fmt.Errorf("%s: %w", errKeyWord, err)
	}
	return k, nil
}

// ServerKeyBlob returns the blob a device stores to reach this server
// (docs/particle-protocol.md#the-server-key-file; what `particle keys server`
// flashes): the server's public key for the transport ("tcp" or "udp") followed
// by host and port.
// With a PostgreSQL database it reads the cluster's shared key (docs/scaling.md).
func ServerKeyBlob(cfg config.Serve, transport, host string, port uint16) ([]byte, error) {
	keys, err := serverKeysOf(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	var t protocol.Transport
	switch transport {
	case "tcp":
		pub, t = keys.RSA.Public(), protocol.TransportTCP
	case "udp":
		pub, t = keys.EC.Public(), protocol.TransportUDP
	default:
		return nil, fmt.Errorf("server: unknown transport %q: want tcp or udp", transport)
	}
	der, err := protocol.MarshalPublicKeyDER(pub)
	if err != nil {
		return nil, err
	}
	return protocol.EncodeServerKeyBlob(t, der, host, port)
}

// serverKeysOf returns the server keys of the installation cfg points at:
// the data directory's for SQLite, the cluster's for PostgreSQL (opening the
// store to read them).
func serverKeysOf(ctx context.Context, cfg config.Serve) (*ServerKeys, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cfg.DB, "postgres://") && !strings.HasPrefix(cfg.DB, "postgresql://") {
		return LoadServerKeys(cfg)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data directory: %w", err)
	}
	st, err := sqlstore.Open(ctx, cfg.DB, nil)
	if err != nil {
		return nil, fmt.Errorf("server: open store: %w", err)
	}
	defer st.Close()
	return loadKeys(ctx, cfg, st, nil)
}
