package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// ProvisionDevice stores the public key of device id directly in the
// configured store, as `wick device provision` does; it works while a
// server runs on the same data. key may be PEM ("PUBLIC KEY" or "RSA
// PUBLIC KEY"), DER or base64 DER, RSA-1024/2048 or EC P-256 (see
// api.ParseDeviceKey). A non-zero productID, which must exist, moves the
// device into that product. The operator is trusted: the device's owner
// and any previous key are not checked, and ownership does not change.
// An EC key that another device has is refused (store.ErrConflict), with
// that device named. log may be nil.
func ProvisionDevice(ctx context.Context, cfg config.Serve, log *slog.Logger, id string, key []byte, productID int64) (*store.Device, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	devID, err := protocol.ParseDeviceID(strings.TrimSpace(id))
	if err != nil {
		return nil, fmt.Errorf("server: %q is not a device ID: want 24 hex characters", id)
	}
	if productID < 0 {
		return nil, fmt.Errorf("server: product ID %d must be positive", productID)
	}
	alg, der, err := api.ParseDeviceKey(key)
	if err != nil {
		var ke *api.DeviceKeyError
		if errors.As(err, &ke) {
			return nil, fmt.Errorf("server: invalid device key: %s", ke.Reason)
		}
		return nil, err
	}
	st, _, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if productID != 0 {
		if _, err := st.ProductByID(ctx, productID); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("server: product %d does not exist", productID)
		} else if err != nil {
			return nil, fmt.Errorf("server: read product: %w", err)
		}
	}
	d, err := st.ProvisionDevice(ctx, devID.String(), alg, der, productID)
	if errors.Is(err, store.ErrConflict) {
		// An EC key is one device's identity: name the device that has
		// it, for the operator to re-key one of the two.
		holder := "another device"
		if other, lerr := st.DeviceByPublicKey(ctx, der); lerr == nil {
			holder = "device " + other.ID
		}
		return nil, fmt.Errorf("server: provision device %s: %s already has this key; each device needs its own key pair: %w",
			devID, holder, err)
	}
	if err != nil {
		return nil, fmt.Errorf("server: provision device: %w", err)
	}
	// At debug: provisioning a fleet (100,000 devices) logged a line each,
	// every request queueing on the log handler's lock (docs/operations.md,
	// "Start-up log").
	log.LogAttrs(ctx, slog.LevelDebug, "device provisioned",
		slog.String("device", d.ID), slog.String("algorithm", alg), slog.Int64("product", d.ProductID), slog.String("by", "admin"))
	return d, nil
}
