package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wick-cloud/wick/protocol"
)

// deviceKey returns the PKCS#1 DER private key of device id: read from
// dir/<id>.pem when dir is set and the file exists, else generated
// (RSA-1024, ≈10 ms of CPU) and, with dir, saved there (mode 0600) for
// the next run. generated reports a new key.
func deviceKey(dir, id string) (der []byte, generated bool, err error) {
	path := ""
	if dir != "" {
		path = filepath.Join(dir, id+".pem")
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			k, err := protocol.ParseRSAPrivateKey(b)
			if err != nil {
				return nil, false, fmt.Errorf("sim: key %s: %w", path, err)
			}
			der, err := protocol.MarshalPrivateKeyDER(k)
			return der, false, err
		case !errors.Is(err, fs.ErrNotExist):
			return nil, false, fmt.Errorf("sim: key: %w", err)
		}
	}
	k, err := protocol.GenerateDeviceKey(nil)
	if err != nil {
		return nil, false, fmt.Errorf("sim: %w", err)
	}
	der, err = protocol.MarshalPrivateKeyDER(k)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		pemBytes, err := protocol.MarshalPrivateKeyPEM(k)
		if err != nil {
			return nil, false, err
		}
		if err := writeFileAtomic(path, pemBytes, 0o600); err != nil {
			return nil, false, fmt.Errorf("sim: save key: %w", err)
		}
	}
	return der, true, nil
}

// writeFileAtomic writes data to path through a temporary file and a rename,
// so an interrupted run never leaves a truncated key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
