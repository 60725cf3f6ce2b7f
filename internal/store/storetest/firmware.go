package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var firmwareTests = []test{
	{"BinaryRoundTripAndDedup", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		data := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00}, 50000)
		sum := sha256.Sum256(data)
		want := hex.EncodeToString(sum[:])
		h1, err := s.PutFirmwareBinary(ctx, data)
		must(t, err)
		h2, err := s.PutFirmwareBinary(ctx, data)
		must(t, err)
		if h1 != want || h2 != want {
			t.Fatalf("hashes = %s, %s; want %s twice", h1, h2, want)
		}
		got, err := s.FirmwareBinary(ctx, want)
		must(t, err)
		if !bytes.Equal(got, data) {
			t.Fatalf("binary of %d bytes differs from the %d stored", len(got), len(data))
		}
		empty, err := s.PutFirmwareBinary(ctx, nil)
		must(t, err)
		got, err = s.FirmwareBinary(ctx, empty)
		must(t, err)
		if len(got) != 0 {
			t.Errorf("empty binary read back as %d bytes", len(got))
		}
		_, err = s.FirmwareBinary(ctx, hex.EncodeToString(make([]byte, 32)))
		wantErr(t, "FirmwareBinary(absent)", err, store.ErrNotFound)
	}},
	{"ProductFirmwareLifecycle", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		f1 := &store.ProductFirmware{ProductID: 7, Version: 1, Title: "one", Description: "first",
			FileName: "firmware.bin", Hash: "aa", Size: 100, PlatformID: 12, UploadedBy: "a@example.com",
			CreatedAt: base, ProductDefault: true}
		must(t, s.CreateProductFirmware(ctx, f1))
		if f1.ProductDefault {
			t.Error("a new version came out released")
		}
		checkTime(t, "CreatedAt", f1.CreatedAt, at(0))
		checkTime(t, "UpdatedAt", f1.UpdatedAt, at(0))
		f2 := &store.ProductFirmware{ProductID: 7, Version: 2, Title: "two", Hash: "bb", Size: 200, PlatformID: 12, CreatedAt: base.Add(time.Hour)}
		must(t, s.CreateProductFirmware(ctx, f2))
		must(t, s.CreateProductFirmware(ctx, &store.ProductFirmware{ProductID: 8, Version: 1, Hash: "cc", PlatformID: 6}))
		wantErr(t, "duplicate version", s.CreateProductFirmware(ctx, &store.ProductFirmware{ProductID: 7, Version: 2, Hash: "dd"}), store.ErrConflict)

		got, err := s.ProductFirmware(ctx, 7, 1)
		must(t, err)
		checkEqual(t, "ProductFirmware", got, f1)
		_, err = s.ProductFirmware(ctx, 7, 3)
		wantErr(t, "ProductFirmware(absent)", err, store.ErrNotFound)

		list, err := s.ProductFirmwares(ctx, 7)
		must(t, err)
		if len(list) != 2 || list[0].Version != 2 || list[1].Version != 1 {
			t.Fatalf("ProductFirmwares = %+v; want versions 2, 1", list)
		}
		_, err = s.ProductDefaultFirmware(ctx, 7)
		wantErr(t, "ProductDefaultFirmware(none)", err, store.ErrNotFound)

		rel, err := s.ReleaseProductFirmware(ctx, 7, 1, "a@example.com", base.Add(2*time.Hour))
		must(t, err)
		if !rel.ProductDefault || rel.ReleasedBy != "a@example.com" || rel.ReleasedAt == nil {
			t.Fatalf("released = %+v", rel)
		}
		checkTime(t, "ReleasedAt", *rel.ReleasedAt, at(2*time.Hour))
		rel, err = s.ReleaseProductFirmware(ctx, 7, 2, "b@example.com", base.Add(3*time.Hour))
		must(t, err)
		def, err := s.ProductDefaultFirmware(ctx, 7)
		must(t, err)
		checkEqual(t, "default", def, rel)
		old, err := s.ProductFirmware(ctx, 7, 1)
		must(t, err)
		if old.ProductDefault {
			t.Error("version 1 is still a default after version 2 was released")
		}
		// Releasing the default again keeps it the only one.
		_, err = s.ReleaseProductFirmware(ctx, 7, 2, "b@example.com", time.Time{})
		must(t, err)
		_, err = s.ReleaseProductFirmware(ctx, 7, 9, "b@example.com", time.Time{})
		wantErr(t, "release absent", err, store.ErrNotFound)
		if def, err := s.ProductDefaultFirmware(ctx, 7); err != nil || def.Version != 2 {
			t.Errorf("default after a failed release = %+v, %v; want version 2", def, err)
		}
		_, err = s.ProductDefaultFirmware(ctx, 8)
		wantErr(t, "other product's default", err, store.ErrNotFound)

		upd := &store.ProductFirmware{ProductID: 7, Version: 1, Title: "uno", Description: "primero"}
		lo := time.Now()
		must(t, s.UpdateProductFirmware(ctx, upd))
		got, err = s.ProductFirmware(ctx, 7, 1)
		must(t, err)
		if got.Title != "uno" || got.Description != "primero" || got.Hash != "aa" {
			t.Errorf("updated = %+v", got)
		}
		checkStamped(t, "UpdatedAt", got.UpdatedAt, lo, time.Now())
		wantErr(t, "update absent", s.UpdateProductFirmware(ctx, &store.ProductFirmware{ProductID: 7, Version: 5}), store.ErrNotFound)

		must(t, s.UnreleaseProductFirmware(ctx, 7))
		must(t, s.UnreleaseProductFirmware(ctx, 7))
		_, err = s.ProductDefaultFirmware(ctx, 7)
		wantErr(t, "default after unrelease", err, store.ErrNotFound)

		must(t, s.DeleteProductFirmware(ctx, 7, 1))
		wantErr(t, "delete again", s.DeleteProductFirmware(ctx, 7, 1), store.ErrNotFound)
		list, err = s.ProductFirmwares(ctx, 7)
		must(t, err)
		if len(list) != 1 || list[0].Version != 2 {
			t.Errorf("after delete = %+v; want version 2 only", list)
		}
	}},
	{"DeviceFirmwareLockAndOTA", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.DeviceFirmware(ctx, "dev1")
		wantErr(t, "DeviceFirmware(none)", err, store.ErrNotFound)
		v := 3
		must(t, s.SetDeviceFirmwareLock(ctx, "dev1", 7, &v))
		d, err := s.DeviceFirmware(ctx, "dev1")
		must(t, err)
		if d.DesiredVersion == nil || *d.DesiredVersion != 3 || d.ProductID != 7 || d.Status != "" || d.Hash != "" {
			t.Fatalf("locked = %+v", d)
		}

		must(t, s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{ProductID: 7, Hash: "h3", Version: 3, At: base, StaleAfter: time.Minute}))
		err = s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{ProductID: 7, Hash: "h4", Version: 4, At: base.Add(30 * time.Second), StaleAfter: time.Minute})
		wantErr(t, "second start", err, store.ErrConflict)
		d, err = s.DeviceFirmware(ctx, "dev1")
		must(t, err)
		want := &store.DeviceFirmware{DeviceID: "dev1", ProductID: 7, DesiredVersion: &v, Hash: "h3", Version: 3,
			Status: store.OTAStarted, Attempts: 1, StartedAt: ptr(at(0)), UpdatedAt: at(0)}
		checkEqual(t, "started", d, want)

		ok, err := s.FinishDeviceOTA(ctx, "dev1", "other", "", base.Add(time.Second))
		must(t, err)
		if ok {
			t.Error("finishing another hash applied")
		}
		ok, err = s.FinishDeviceOTA(ctx, "dev1", "h3", "device refused", base.Add(2*time.Second))
		must(t, err)
		if !ok {
			t.Fatal("finishing the started update did not apply")
		}
		ok, err = s.FinishDeviceOTA(ctx, "dev1", "h3", "", base.Add(3*time.Second))
		must(t, err)
		if ok {
			t.Error("finishing twice applied")
		}
		d, err = s.DeviceFirmware(ctx, "dev1")
		must(t, err)
		want.Status, want.Error, want.FinishedAt, want.UpdatedAt = store.OTAFailed, "device refused", ptr(at(2*time.Second)), at(2*time.Second)
		checkEqual(t, "failed", d, want)

		// A finished update does not block; a plain flash (product 0)
		// keeps the product.
		must(t, s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{Hash: "plain", At: base.Add(time.Minute)}))
		// A stale one does not either; Attempts counts starts in a row
		// of one hash.
		must(t, s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{ProductID: 7, Hash: "h3", Version: 3, At: base.Add(3 * time.Minute), StaleAfter: time.Minute}))
		if d, _ := s.DeviceFirmware(ctx, "dev1"); d.Attempts != 1 {
			t.Errorf("attempts after another hash = %d; want 1", d.Attempts)
		}
		must(t, s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{ProductID: 7, Hash: "h3", Version: 3, At: base.Add(5 * time.Minute), StaleAfter: time.Minute}))
		if d, _ := s.DeviceFirmware(ctx, "dev1"); d.Attempts != 2 {
			t.Errorf("attempts after the same hash again = %d; want 2", d.Attempts)
		}
		ok, err = s.FinishDeviceOTA(ctx, "dev1", "h3", "", base.Add(4*time.Minute))
		must(t, err)
		if !ok {
			t.Fatal("finish after restart did not apply")
		}
		d, err = s.DeviceFirmware(ctx, "dev1")
		must(t, err)
		if d.Attempts != 2 || d.Status != store.OTASuccess || d.Error != "" || d.ProductID != 7 || *d.DesiredVersion != 3 {
			t.Errorf("after success = %+v", d)
		}

		// Without StaleAfter a started update never goes stale.
		must(t, s.StartDeviceOTA(ctx, "dev2", store.DeviceOTA{ProductID: 7, Hash: "x", At: base}))
		wantErr(t, "never stale", s.StartDeviceOTA(ctx, "dev2", store.DeviceOTA{ProductID: 7, Hash: "y", At: base.Add(1000 * time.Hour)}), store.ErrConflict)
		must(t, s.StartDeviceOTA(ctx, "dev3", store.DeviceOTA{ProductID: 8, Hash: "x", At: base}))

		// A failed update the device took after all becomes a success.
		must(t, s.StartDeviceOTA(ctx, "dev4", store.DeviceOTA{ProductID: 9, Hash: "m", Version: 2, At: base}))
		if _, err := s.FinishDeviceOTA(ctx, "dev4", "m", "lost", base.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			hash string
			want bool
		}{{"other", false}, {"m", true}, {"m", false}} {
			ok, err := s.MarkDeviceOTASucceeded(ctx, "dev4", c.hash, base.Add(2*time.Second))
			must(t, err)
			if ok != c.want {
				t.Errorf("MarkDeviceOTASucceeded(%s) = %v; want %v", c.hash, ok, c.want)
			}
		}
		if d, _ := s.DeviceFirmware(ctx, "dev4"); d.Status != store.OTASuccess || d.Error != "" || !d.FinishedAt.Equal(at(2*time.Second)) {
			t.Errorf("after MarkDeviceOTASucceeded: %+v", d)
		}
		must(t, s.SetDeviceFirmwareLock(ctx, "dev1", 7, nil))
		list, err := s.DeviceFirmwaresByProduct(ctx, 7)
		must(t, err)
		if len(list) != 2 || list[0].DeviceID != "dev1" || list[1].DeviceID != "dev2" || list[0].DesiredVersion != nil {
			t.Errorf("DeviceFirmwaresByProduct = %+v", list)
		}
		must(t, s.DeleteDeviceFirmware(ctx, "dev1"))
		must(t, s.DeleteDeviceFirmware(ctx, "dev1"))
		// Deleting a device forgets its firmware state.
		if _, err := s.ProvisionDevice(ctx, "dev2", "", nil, 7); err != nil {
			t.Fatal(err)
		}
		must(t, s.DeleteDevice(ctx, "dev2"))
		_, err = s.DeviceFirmware(ctx, "dev2")
		wantErr(t, "firmware state of a deleted device", err, store.ErrNotFound)
		_, err = s.DeviceFirmware(ctx, "dev1")
		wantErr(t, "after delete", err, store.ErrNotFound)
	}},
	{"StartDeviceOTAConcurrent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.StartDeviceOTA(ctx, "dev", store.DeviceOTA{Hash: string(rune('a' + i)), StaleAfter: time.Hour})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, store.ErrConflict) {
					t.Errorf("start: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d of %d concurrent starts succeeded; want 1", wins, n)
		}
	}},
	{"BinaryGC", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		put := func(b string) string {
			h, err := s.PutFirmwareBinary(ctx, []byte(b))
			must(t, err)
			return h
		}
		stored := func(h string) bool {
			_, err := s.FirmwareBinary(ctx, h)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		gc := func(g store.FirmwareGC, want int) {
			t.Helper()
			n, err := s.DeleteUnusedFirmwareBinaries(ctx, g)
			must(t, err)
			if n != want {
				t.Errorf("DeleteUnusedFirmwareBinaries(%+v) deleted %d; want %d", g, n, want)
			}
		}
		version := put("a version")
		must(t, s.CreateProductFirmware(ctx, &store.ProductFirmware{ProductID: 7, Version: 1, Hash: version, Size: 9, PlatformID: 6}))
		running := put("a running update")
		must(t, s.StartDeviceOTA(ctx, "dev1", store.DeviceOTA{Hash: running, At: base.Add(50 * time.Minute)}))
		recent := put("an update finished lately")
		must(t, s.StartDeviceOTA(ctx, "dev2", store.DeviceOTA{Hash: recent, At: base}))
		if _, err := s.FinishDeviceOTA(ctx, "dev2", recent, "", base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		old := put("an update finished long ago")
		must(t, s.StartDeviceOTA(ctx, "dev3", store.DeviceOTA{Hash: old, At: base}))
		if _, err := s.FinishDeviceOTA(ctx, "dev3", old, "boom", base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		unnamed := put("named by nothing")
		// Everything was just stored: nothing goes, whatever the updates.
		gc(store.FirmwareGC{UsedBefore: time.Now().Add(-time.Hour), UpdatesSince: base.Add(time.Hour * 24)}, 0)
		// Past the grace, with updates kept from minute 30: the unnamed
		// binary and the one of an update that ended at minute 1 go; the
		// version's, the running update's (started at minute 50) and the
		// one that ended at minute 60 stay.
		gc(store.FirmwareGC{UsedBefore: time.Now().Add(time.Hour), UpdatesSince: base.Add(30 * time.Minute)}, 2)
		for h, want := range map[string]bool{version: true, running: true, recent: true, old: false, unnamed: false} {
			if stored(h) != want {
				t.Errorf("binary %s stored = %v; want %v", h[:8], !want, want)
			}
		}
		// From minute 55 the running update is too old to count.
		gc(store.FirmwareGC{UsedBefore: time.Now().Add(time.Hour), UpdatesSince: base.Add(55 * time.Minute)}, 1)
		if stored(running) || !stored(recent) || !stored(version) {
			t.Errorf("after the second pass: running %v, recent %v, version %v", stored(running), stored(recent), stored(version))
		}
		// Storing the same bytes again renews the binary's use, so that one
		// being uploaded again is not collected before its caller names it.
		again := put("uploaded twice")
		time.Sleep(5 * time.Millisecond)
		between := time.Now()
		time.Sleep(5 * time.Millisecond)
		if h := put("uploaded twice"); h != again {
			t.Fatalf("hash changed: %s, %s", h, again)
		}
		gc(store.FirmwareGC{UsedBefore: between, UpdatesSince: base.Add(time.Hour * 24)}, 1) // the recent update's
		if !stored(again) || stored(recent) {
			t.Fatalf("stored: again %v, recent %v; a binary stored again after the cut-off must stay", stored(again), stored(recent))
		}
		// A deleted version no longer holds its binary.
		must(t, s.DeleteProductFirmware(ctx, 7, 1))
		gc(store.FirmwareGC{UsedBefore: time.Now().Add(time.Hour), UpdatesSince: base.Add(time.Hour * 24)}, 2)
		for _, h := range []string{version, again} {
			if stored(h) {
				t.Errorf("binary %s survived", h[:8])
			}
		}
	}},
	{"OTASlots", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const step = 100 * time.Millisecond
		for i, c := range []struct {
			product int64
			now     time.Duration
			want    time.Duration
		}{
			{7, 0, 0},
			{7, 0, step},
			{7, 10 * time.Millisecond, 2 * step},
			{8, 0, 0},                 // each product has its own schedule
			{7, time.Hour, time.Hour}, // no credit for idle time
			{7, time.Hour + step/2, time.Hour + step}, // a slot never before now
		} {
			got, err := s.ClaimOTASlot(ctx, c.product, base.Add(c.now), step)
			must(t, err)
			checkTime(t, fmt.Sprintf("slot %d", i), got, at(c.want))
		}
		// Concurrent claims (as from several servers) get distinct slots,
		// one step apart.
		const n = 16
		now := base.Add(2 * time.Hour)
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got = map[time.Time]bool{}
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slot, err := s.ClaimOTASlot(ctx, 9, now, step)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[slot.UTC()] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		for k := range n {
			if want := at(2*time.Hour + time.Duration(k)*step); !got[want] {
				t.Errorf("no claim got slot %v; got %v", want, got)
				break
			}
		}
	}},
}
