package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// eccKey returns a key-like byte string for an ECC key, unique to seed and
// distinct from every testKey.
func eccKey(seed int) []byte {
	return append([]byte{0x30, 0x59, 0x30, 0x13, 0x00, 0xfe}, fmt.Sprintf("ecc-%d", seed)...)
}

// addECCDevice provisions device id with eccKey(seed) and returns it.
func addECCDevice(t *testing.T, s store.Store, id string, seed int) *store.Device {
	t.Helper()
	d, err := s.ProvisionDevice(t.Context(), id, store.KeyECC, eccKey(seed), 0)
	must(t, err)
	return d
}

// byKey returns the ID of the device DeviceByPublicKey finds for key, or ""
// when it reports store.ErrNotFound.
func byKey(t *testing.T, s store.Store, key []byte) string {
	t.Helper()
	d, err := s.DeviceByPublicKey(t.Context(), key)
	if exists(t, "DeviceByPublicKey", err) {
		return d.ID
	}
	return ""
}

// cid returns an 8-byte connection ID unique to n, with a zero and a high
// byte as random IDs have.
func cid(n byte) []byte { return []byte{0x00, 0xff, 0xc1, 0xd0, 0x80, 0x01, 0x00, n} }

// sessionCIDs returns which of the connection IDs cid(1..n) have a saved
// session.
func sessionCIDs(t *testing.T, s store.Store, n byte) []string {
	t.Helper()
	var out []string
	for i := byte(1); i <= n; i++ {
		_, err := s.DTLSSession(t.Context(), cid(i))
		if exists(t, "DTLSSession", err) {
			out = append(out, fmt.Sprintf("%x", cid(i)))
		}
	}
	return out
}

// cidHex renders connection IDs as sessionCIDs does.
func cidHex(ns ...byte) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%x", cid(n)))
	}
	return out
}

// oneWins runs eight claims at once and returns the index of the one that
// won, failing the test unless exactly one did.
func oneWins(t *testing.T, what string, claim func(i int) (bool, error)) int {
	t.Helper()
	const n = 8
	var wg sync.WaitGroup
	won := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			ok, err := claim(i)
			if err != nil {
				t.Errorf("%s %d: %v", what, i, err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	winner := -1
	for i, w := range won {
		if w {
			if winner >= 0 {
				t.Fatalf("%s %d and %d both won", what, winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no %s won", what)
	}
	return winner
}

// saveSession saves a session of device on cid(n) with state "state-n".
func saveSession(t *testing.T, s store.Store, device string, n byte, updated time.Time) {
	t.Helper()
	must(t, s.SaveDTLSSession(t.Context(), store.DTLSSession{
		CID: cid(n), DeviceID: device, State: []byte(fmt.Sprintf("state-%d", n)),
		Addr: "198.51.100.7:40000", UpdatedAt: updated,
	}))
}

var deviceKeyTests = []test{
	{"FindByECCKey", func(t *testing.T, s store.Store) {
		addECCDevice(t, s, devID(1), 1)
		addECCDevice(t, s, devID(2), 2)
		d, err := s.DeviceByPublicKey(t.Context(), eccKey(2))
		must(t, err)
		checkEqual(t, "DeviceByPublicKey", d, getDevice(t, s, devID(2)))
		if got := byKey(t, s, eccKey(1)); got != devID(1) {
			t.Errorf("key 1 finds %q; want %q", got, devID(1))
		}
		for name, key := range map[string][]byte{
			"unknown key": eccKey(3),
			"prefix":      eccKey(1)[:len(eccKey(1))-1],
			"empty":       nil,
		} {
			_, err := s.DeviceByPublicKey(t.Context(), key)
			wantErr(t, name, err, store.ErrNotFound)
		}
	}},
	{"RSAKeysNotIndexed", func(t *testing.T, s store.Store) {
		// A Gen 2 device names itself in its handshake: RSA keys are not
		// in the index, and two devices may share one.
		for i := 1; i <= 2; i++ {
			_, err := s.ProvisionDevice(t.Context(), devID(i), store.KeyRSA, testKey(1), 0)
			must(t, err)
		}
		if got := byKey(t, s, testKey(1)); got != "" {
			t.Errorf("RSA key finds %q; want none", got)
		}
	}},
	{"KeyOfAnotherDevice", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		// A new device with that key is refused and not created.
		_, err := s.ProvisionDevice(ctx, devID(2), store.KeyECC, eccKey(1), 10001)
		wantErr(t, "new device with a taken key", err, store.ErrConflict)
		if _, err := s.DeviceByID(ctx, devID(2)); exists(t, "DeviceByID", err) {
			t.Error("refused device was created")
		}
		// An existing device keeps its key and product.
		_, err = s.ProvisionDevice(ctx, devID(2), store.KeyECC, eccKey(2), 0)
		must(t, err)
		_, err = s.ProvisionDevice(ctx, devID(2), store.KeyECC, eccKey(1), 10001)
		wantErr(t, "existing device with a taken key", err, store.ErrConflict)
		if d := getDevice(t, s, devID(2)); !bytes.Equal(d.PublicKey, eccKey(2)) || d.ProductID != 0 {
			t.Errorf("refused provisioning changed the device: key %q product %d", d.PublicKey, d.ProductID)
		}
		// The same key on its own device again is no conflict.
		_, err = s.ProvisionDevice(ctx, devID(1), store.KeyECC, eccKey(1), 0)
		must(t, err)
		// A new key frees the old one.
		_, err = s.ProvisionDevice(ctx, devID(1), store.KeyECC, eccKey(3), 0)
		must(t, err)
		_, err = s.ProvisionDevice(ctx, devID(2), store.KeyECC, eccKey(1), 0)
		must(t, err)
		for seed, want := range map[int]string{1: devID(2), 2: "", 3: devID(1)} {
			if got := byKey(t, s, eccKey(seed)); got != want {
				t.Errorf("key %d finds %q; want %q", seed, got, want)
			}
		}
	}},
	{"KeyIndexFollowsKey", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		// Provisioning without a key keeps the key and its index entry.
		_, err := s.ProvisionDevice(ctx, devID(1), "", nil, 10001)
		must(t, err)
		if got := byKey(t, s, eccKey(1)); got != devID(1) {
			t.Errorf("after keyless provisioning: %q; want %q", got, devID(1))
		}
		// An RSA key replaces the ECC key in the index too.
		_, err = s.ProvisionDevice(ctx, devID(1), store.KeyRSA, testKey(1), 0)
		must(t, err)
		if got := byKey(t, s, eccKey(1)); got != "" {
			t.Errorf("old ECC key finds %q after an RSA key; want none", got)
		}
		addECCDevice(t, s, devID(2), 1) // the old key is free
		// A deleted device frees its key.
		must(t, s.DeleteDevice(ctx, devID(2)))
		if got := byKey(t, s, eccKey(1)); got != "" {
			t.Errorf("deleted device's key finds %q", got)
		}
		addECCDevice(t, s, devID(3), 1)
	}},
	{"KeyRaceOneWinner", func(t *testing.T, s store.Store) {
		const n = 8
		var (
			wg   sync.WaitGroup
			errs [n]error
		)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.ProvisionDevice(t.Context(), devID(i+1), store.KeyECC, eccKey(1), 0)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			default:
				wantErr(t, fmt.Sprintf("provisioning %d", i), err, store.ErrConflict)
			}
		}
		if won != 1 {
			t.Errorf("%d devices got the key; want 1", won)
		}
		if got := byKey(t, s, eccKey(1)); got == "" {
			t.Error("the winner is not found by its key")
		}
		count, err := s.CountDevices(t.Context())
		must(t, err)
		if count != 1 {
			t.Errorf("%d devices; want only the winner", count)
		}
	}},
}

var dtlsSessionTests = []test{
	{"SaveAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		before := time.Now()
		want := store.DTLSSession{CID: cid(1), DeviceID: devID(1), State: []byte{0, 1, 0xff, 0}, Addr: "[2001:db8::1]:5684"}
		must(t, s.SaveDTLSSession(ctx, want))
		got, err := s.DTLSSession(ctx, cid(1))
		must(t, err)
		checkStamped(t, "UpdatedAt", got.UpdatedAt, before, time.Now())
		want.UpdatedAt = got.UpdatedAt
		checkEqual(t, "DTLSSession", got, &want)

		// Saving on the same CID replaces everything, with the given time
		// at the stored precision.
		want = store.DTLSSession{CID: cid(1), DeviceID: devID(1), State: []byte("next"), Addr: "203.0.113.9:1", UpdatedAt: base}
		must(t, s.SaveDTLSSession(ctx, want))
		got, err = s.DTLSSession(ctx, cid(1))
		must(t, err)
		want.UpdatedAt = at(0)
		checkEqual(t, "after replace", got, &want)

		// An empty state and address round-trip as empty.
		must(t, s.SaveDTLSSession(ctx, store.DTLSSession{CID: cid(2), DeviceID: devID(1), UpdatedAt: base}))
		got, err = s.DTLSSession(ctx, cid(2))
		must(t, err)
		if len(got.State) != 0 || got.Addr != "" {
			t.Errorf("empty session = %+v", got)
		}
		checkStrings(t, "sessions", sessionCIDs(t, s, 3), cidHex(1, 2))
	}},
	{"Missing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.DTLSSession(ctx, cid(1))
		wantErr(t, "unknown CID", err, store.ErrNotFound)
		err = s.SaveDTLSSession(ctx, store.DTLSSession{CID: cid(1), DeviceID: devID(9), State: []byte("x")})
		wantErr(t, "session of an absent device", err, store.ErrNotFound)
		addECCDevice(t, s, devID(1), 1)
		if err := s.SaveDTLSSession(ctx, store.DTLSSession{DeviceID: devID(1), State: []byte("x")}); err == nil {
			t.Error("a session without a connection ID was saved")
		}
		// Deleting what is absent is no error.
		must(t, s.DeleteDTLSSession(ctx, cid(1)))
		must(t, s.DeleteDeviceDTLSSessions(ctx, devID(9)))
		n, err := s.DeleteDTLSSessionsBefore(ctx, base)
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteDTLSSessionsBefore on none = %d", n)
		}
	}},
	{"MoveToAnotherDevice", func(t *testing.T, s store.Store) {
		// A CID is the server's choice; should it be reused, the newest
		// save owns it.
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		addECCDevice(t, s, devID(2), 2)
		saveSession(t, s, devID(1), 1, base)
		saveSession(t, s, devID(2), 1, base)
		got, err := s.DTLSSession(ctx, cid(1))
		must(t, err)
		if got.DeviceID != devID(2) {
			t.Errorf("session device = %q; want %q", got.DeviceID, devID(2))
		}
		must(t, s.DeleteDeviceDTLSSessions(ctx, devID(1)))
		checkStrings(t, "sessions", sessionCIDs(t, s, 1), cidHex(1))
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		addECCDevice(t, s, devID(2), 2)
		saveSession(t, s, devID(1), 1, base)
		saveSession(t, s, devID(1), 2, base)
		saveSession(t, s, devID(2), 3, base)
		saveSession(t, s, devID(2), 4, base)
		must(t, s.DeleteDTLSSession(ctx, cid(1)))
		checkStrings(t, "after DeleteDTLSSession", sessionCIDs(t, s, 4), cidHex(2, 3, 4))
		must(t, s.DeleteDeviceDTLSSessions(ctx, devID(2)))
		checkStrings(t, "after DeleteDeviceDTLSSessions", sessionCIDs(t, s, 4), cidHex(2))
	}},
	{"DeleteBefore", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		for i, d := range []time.Duration{-2 * time.Hour, -time.Hour, -time.Millisecond, 0, time.Hour} {
			saveSession(t, s, devID(1), byte(i+1), base.Add(d))
		}
		n, err := s.DeleteDTLSSessionsBefore(ctx, base)
		must(t, err)
		if n != 3 {
			t.Errorf("DeleteDTLSSessionsBefore = %d; want 3", n)
		}
		checkStrings(t, "kept", sessionCIDs(t, s, 5), cidHex(4, 5))
	}},
	{"DeviceDeleteRemovesSessions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		addECCDevice(t, s, devID(2), 2)
		saveSession(t, s, devID(1), 1, base)
		saveSession(t, s, devID(2), 2, base)
		must(t, s.DeleteDevice(ctx, devID(1)))
		checkStrings(t, "sessions", sessionCIDs(t, s, 2), cidHex(2))
		wantErr(t, "DeleteDevice of an absent device", s.DeleteDevice(ctx, devID(1)), store.ErrNotFound)
	}},
	{"KeyChangeRemovesSessions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		addECCDevice(t, s, devID(2), 2)
		saveSession(t, s, devID(1), 1, base)
		saveSession(t, s, devID(2), 2, base)
		// The same key, no key, or a refused key keep the sessions.
		_, err := s.ProvisionDevice(ctx, devID(1), store.KeyECC, eccKey(1), 0)
		must(t, err)
		_, err = s.ProvisionDevice(ctx, devID(1), "", nil, 10001)
		must(t, err)
		_, err = s.ProvisionDevice(ctx, devID(1), store.KeyECC, eccKey(2), 0)
		wantErr(t, "taken key", err, store.ErrConflict)
		checkStrings(t, "sessions kept", sessionCIDs(t, s, 2), cidHex(1, 2))
		// A new key ends the device's sessions, and no other's.
		_, err = s.ProvisionDevice(ctx, devID(1), store.KeyECC, eccKey(3), 0)
		must(t, err)
		checkStrings(t, "after new key", sessionCIDs(t, s, 2), cidHex(2))
	}},
	{"DeleteDeviceWhileSaving", func(t *testing.T, s store.Store) {
		// A gateway may save a session while an operator deletes the
		// device: whichever order the two take, no session of the
		// deleted device remains.
		ctx := t.Context()
		for round := range 5 {
			id := devID(100 + round)
			addECCDevice(t, s, id, 100+round)
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					err := s.SaveDTLSSession(ctx, store.DTLSSession{
						CID: []byte{byte(round), byte(i), 0, 0, 0, 0, 0, 1}, DeviceID: id, State: []byte("s"),
					})
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("save: %v", err)
					}
				})
			}
			wg.Go(func() {
				if err := s.DeleteDevice(ctx, id); err != nil {
					t.Errorf("delete: %v", err)
				}
			})
			wg.Wait()
			for i := range 6 {
				if _, err := s.DTLSSession(ctx, []byte{byte(round), byte(i), 0, 0, 0, 0, 0, 1}); exists(t, "DTLSSession", err) {
					t.Errorf("round %d: session %d of the deleted device remains", round, i)
				}
			}
		}
	}},
	{"ConcurrentSaves", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.SaveDTLSSession(ctx, store.DTLSSession{
					CID: cid(byte(i % 4)), DeviceID: devID(1), State: []byte{byte(i)}, UpdatedAt: base,
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("save %d: %v", i, err)
			}
		}
		for c := range byte(4) {
			got, err := s.DTLSSession(ctx, cid(c))
			must(t, err)
			if len(got.State) != 1 || int(got.State[0])%4 != int(c) {
				t.Errorf("session %x state = %x; want one of its own saves", cid(c), got.State)
			}
		}
	}},
	{"RecentPaged", func(t *testing.T, s store.Store) {
		ds, ok := s.(store.DeviceDTLSSessions)
		if !ok {
			t.Skip("store does not list saved sessions by device")
		}
		ctx := t.Context()
		for i := 1; i <= 6; i++ {
			addECCDevice(t, s, devID(i), i)
		}
		saveSession(t, s, devID(1), 1, at(-time.Hour)) // too old
		saveSession(t, s, devID(2), 2, at(time.Second))
		saveSession(t, s, devID(2), 3, at(3*time.Second)) // device 2's latest
		saveSession(t, s, devID(3), 4, at(2*time.Second))
		saveSession(t, s, devID(4), 5, at(2*time.Second)) // same time as cid 4: cid orders
		saveSession(t, s, devID(5), 6, at(4*time.Second)) // online below
		saveSession(t, s, devID(6), 7, at(0))             // exactly since
		_, err := s.SetDeviceOnline(ctx, devID(5), store.DeviceSession{Node: "n1", SessionID: "s5"})
		must(t, err)

		var got []string
		var after *store.DTLSSession
		for range 10 {
			page, err := ds.RecentDTLSSessions(ctx, at(0), after, 2)
			must(t, err)
			if len(page) > 2 {
				t.Fatalf("page of %d with limit 2", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, p := range page {
				if len(p.State) != 0 || p.Addr != "198.51.100.7:40000" {
					t.Errorf("listed session %x: state %q addr %q", p.CID, p.State, p.Addr)
				}
				got = append(got, fmt.Sprintf("%x %s", p.CID, p.DeviceID))
			}
			after = &page[len(page)-1]
		}
		want := []string{
			fmt.Sprintf("%x %s", cid(7), devID(6)),
			fmt.Sprintf("%x %s", cid(4), devID(3)),
			fmt.Sprintf("%x %s", cid(5), devID(4)),
			fmt.Sprintf("%x %s", cid(3), devID(2)),
		}
		checkStrings(t, "recent sessions", got, want)
		page, err := ds.RecentDTLSSessions(ctx, at(0), nil, 0)
		must(t, err)
		if len(page) != 0 {
			t.Errorf("limit 0 returned %d", len(page))
		}
	}},
	{"SaveBatch", func(t *testing.T, s store.Store) {
		bs := batchStore(t, s)
		ctx := t.Context()
		saveSession(t, s, devID(2), 2, base)
		saveSession(t, s, devID(2), 6, base)
		saved, err := bs.SaveDTLSSessions(ctx, nil, nil)
		must(t, err)
		if len(saved) != 0 {
			t.Errorf("empty batch: saved %v", saved)
		}
		batch := []store.DTLSSession{
			{CID: cid(1), DeviceID: devID(1), State: []byte("batch-1"), Addr: "203.0.113.1:1", UpdatedAt: at(time.Second)},
			{CID: cid(2), DeviceID: devID(2), State: []byte("batch-2"), Addr: "203.0.113.2:2", UpdatedAt: at(2 * time.Second)},
			{CID: cid(3), DeviceID: devID(3), State: []byte("batch-3"), Addr: "203.0.113.3:3"},  // no such device
			{CID: cid(4), DeviceID: devID(1), State: []byte("batch-4"), Addr: "203.0.113.1:4"},  // UpdatedAt now
			{CID: cid(6), DeviceID: devID(2), State: []byte("batch-6"), Addr: "203.0.113.2:6"},  // changed meanwhile
			{CID: cid(2), DeviceID: devID(2), State: []byte("batch-2b"), Addr: "203.0.113.2:7"}, // CID taken
		}
		old := [][]byte{nil, []byte("state-2"), nil, nil, []byte("state-6-before"), nil}
		before := time.Now().Add(-time.Second)
		saved, err = bs.SaveDTLSSessions(ctx, batch, old)
		must(t, err)
		if fmt.Sprint(saved) != "[true true false true false false]" {
			t.Errorf("saved %v, want [true true false true false false]", saved)
		}
		for _, i := range []int{0, 1} {
			got, err := s.DTLSSession(ctx, batch[i].CID)
			must(t, err)
			checkEqual(t, fmt.Sprintf("session %d", i), got, &batch[i])
		}
		got, err := s.DTLSSession(ctx, cid(4))
		must(t, err)
		if string(got.State) != "batch-4" || got.UpdatedAt.Before(before) {
			t.Errorf("session 4: state %q updated %v, want batch-4 at about now", got.State, got.UpdatedAt)
		}
		// A conditional row that lost is left as another process saved it.
		got, err = s.DTLSSession(ctx, cid(6))
		must(t, err)
		if string(got.State) != "state-6" {
			t.Errorf("session 6 saved from a stale state: %q", got.State)
		}
		checkStrings(t, "sessions", sessionCIDs(t, s, 6), cidHex(1, 2, 4, 6))
		// The batch's writes chain: a row saved from the state it stored.
		saved, err = bs.SaveDTLSSessions(ctx, []store.DTLSSession{
			{CID: cid(2), DeviceID: devID(2), State: []byte("batch-2c"), Addr: "203.0.113.2:8"},
		}, [][]byte{[]byte("batch-2")})
		must(t, err)
		if !saved[0] {
			t.Error("save from the state the last batch stored lost")
		}
		// An empty connection ID, or old states that do not match the
		// sessions, fail the batch: nothing of it is saved.
		_, err = bs.SaveDTLSSessions(ctx, []store.DTLSSession{
			{CID: cid(5), DeviceID: devID(1), State: []byte("x")},
			{DeviceID: devID(1), State: []byte("y")},
		}, [][]byte{nil, nil})
		if err == nil {
			t.Error("batch with an empty connection ID saved")
		}
		_, err = bs.SaveDTLSSessions(ctx, []store.DTLSSession{{CID: cid(5), DeviceID: devID(1), State: []byte("x")}}, nil)
		if err == nil {
			t.Error("batch without its old states saved")
		}
		checkStrings(t, "sessions after a failed batch", sessionCIDs(t, s, 6), cidHex(1, 2, 4, 6))
	}},
	{"SaveBatchConcurrent", func(t *testing.T, s store.Store) {
		// Batches race as single claims do: of batches claiming one
		// session from the same state exactly one wins it, and a batch of
		// new sessions saved while the device is deleted leaves none
		// behind.
		bs := batchStore(t, s)
		ctx := t.Context()
		saveSession(t, s, devID(1), 1, base)
		winner := oneWins(t, "batch claim", func(i int) (bool, error) {
			saved, err := bs.SaveDTLSSessions(ctx, []store.DTLSSession{
				{CID: cid(2), DeviceID: devID(2), State: fmt.Appendf(nil, "new-%d", i)}, // devices 2's, unrelated
				{CID: cid(1), DeviceID: devID(1), State: fmt.Appendf(nil, "claimed-%d", i)},
			}, [][]byte{nil, []byte("state-1")})
			if err != nil {
				return false, err
			}
			return saved[1], nil
		})
		got, err := s.DTLSSession(ctx, cid(1))
		must(t, err)
		if want := fmt.Sprintf("claimed-%d", winner); string(got.State) != want {
			t.Errorf("claimed session %q, want %q", got.State, want)
		}
		for round := range 5 {
			id := devID(100 + round)
			addECCDevice(t, s, id, 100+round)
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					batch := make([]store.DTLSSession, 3)
					for k := range batch {
						batch[k] = store.DTLSSession{CID: []byte{byte(round), byte(i), byte(k), 0, 0, 0, 0, 2}, DeviceID: id, State: []byte("s")}
					}
					if _, err := bs.SaveDTLSSessions(ctx, batch, make([][]byte, len(batch))); err != nil {
						t.Errorf("save batch: %v", err)
					}
				})
			}
			wg.Go(func() {
				if err := s.DeleteDevice(ctx, id); err != nil {
					t.Errorf("delete: %v", err)
				}
			})
			wg.Wait()
			for i := range 4 {
				for k := range 3 {
					if _, err := s.DTLSSession(ctx, []byte{byte(round), byte(i), byte(k), 0, 0, 0, 0, 2}); exists(t, "DTLSSession", err) {
						t.Errorf("round %d: session %d/%d of the deleted device remains", round, i, k)
					}
				}
			}
		}
	}},
	{"SaveBatchCases", func(t *testing.T, s store.Store) {
		// Each case is one batch on a store holding sessions 1 and 2 of
		// device 1 (states "state-1", "state-2") and device 2 with none;
		// device 9 is absent. want is the saved flags, states the stored
		// state of sessions 1 to 5 after it ("" none).
		bs := batchStore(t, s)
		sess := func(n byte, dev, state string) store.DTLSSession {
			return store.DTLSSession{CID: cid(n), DeviceID: dev, State: []byte(state), Addr: fmt.Sprintf("203.0.113.9:%d", n)}
		}
		b := func(s string) []byte { return []byte(s) }
		for _, tt := range []struct {
			name   string
			batch  []store.DTLSSession
			old    [][]byte
			want   string
			states [5]string
		}{
			{"stale old state refused",
				[]store.DTLSSession{sess(1, devID(1), "a")}, [][]byte{b("state-0")},
				"[false]", [5]string{"state-1", "state-2"}},
			{"another device's session refused",
				[]store.DTLSSession{sess(1, devID(2), "a")}, [][]byte{b("state-1")},
				"[false]", [5]string{"state-1", "state-2"}},
			{"absent session refused",
				[]store.DTLSSession{sess(3, devID(1), "a")}, [][]byte{b("state-3")},
				"[false]", [5]string{"state-1", "state-2"}},
			{"new on a taken CID refused",
				[]store.DTLSSession{sess(1, devID(2), "a")}, [][]byte{nil},
				"[false]", [5]string{"state-1", "state-2"}},
			{"new of an absent device refused",
				[]store.DTLSSession{sess(3, devID(9), "a"), sess(4, devID(2), "b")}, [][]byte{nil, nil},
				"[false true]", [5]string{"state-1", "state-2", "", "b"}},
			{"mixed",
				[]store.DTLSSession{sess(1, devID(1), "a"), sess(2, devID(1), "b"), sess(3, devID(2), "c"),
					sess(4, devID(9), "d"), sess(5, devID(1), "e")},
				[][]byte{b("state-1"), b("stale"), nil, nil, nil},
				"[true false true false true]", [5]string{"a", "state-2", "c", "", "e"}},
			// Sessions of one CID in a batch are claimed in order, each
			// from what the earlier ones left, as one by one.
			{"duplicates chain",
				[]store.DTLSSession{sess(1, devID(1), "a"), sess(1, devID(1), "b"), sess(1, devID(1), "c")},
				[][]byte{b("state-1"), b("a"), b("state-1")},
				"[true true false]", [5]string{"b", "state-2"}},
			{"duplicate new CIDs: the first wins",
				[]store.DTLSSession{sess(3, devID(1), "a"), sess(3, devID(2), "b"), sess(3, devID(1), "c")},
				[][]byte{nil, nil, b("a")},
				"[true false true]", [5]string{"state-1", "state-2", "c"}},
			{"duplicates: a refused first leaves the row to the next",
				[]store.DTLSSession{sess(2, devID(1), "a"), sess(2, devID(1), "b")},
				[][]byte{b("stale"), b("state-2")},
				"[false true]", [5]string{"state-1", "b"}},
			{"empty states",
				[]store.DTLSSession{{CID: cid(3), DeviceID: devID(2)}, sess(3, devID(2), "x")},
				[][]byte{nil, {}},
				"[true true]", [5]string{"state-1", "state-2", "x"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				for _, d := range []string{devID(1), devID(2)} {
					must(t, s.DeleteDeviceDTLSSessions(ctx, d))
				}
				saveSession(t, s, devID(1), 1, base)
				saveSession(t, s, devID(1), 2, base)
				saved, err := bs.SaveDTLSSessions(ctx, tt.batch, tt.old)
				must(t, err)
				if got := fmt.Sprint(saved); got != tt.want {
					t.Errorf("saved %s, want %s", got, tt.want)
				}
				for n := byte(1); n <= 5; n++ {
					got, err := s.DTLSSession(ctx, cid(n))
					if tt.states[n-1] == "" {
						wantErr(t, fmt.Sprintf("session %d", n), err, store.ErrNotFound)
						continue
					}
					must(t, err)
					if string(got.State) != tt.states[n-1] {
						t.Errorf("session %d: state %q, want %q", n, got.State, tt.states[n-1])
					}
				}
			})
		}
	}},
	{"Claim", func(t *testing.T, s store.Store) {
		ds := s
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		saveSession(t, s, devID(1), 1, base)
		next := store.DTLSSession{CID: cid(1), DeviceID: devID(1), State: []byte("claimed"), Addr: "203.0.113.1:9", UpdatedAt: at(time.Second)}
		// Of concurrent claims from the same state, exactly one wins.
		winner := oneWins(t, "claim", func(i int) (bool, error) {
			c := next
			c.State = fmt.Appendf(nil, "claimed-%d", i)
			return ds.ClaimDTLSSession(ctx, c, []byte("state-1"))
		})
		got, err := s.DTLSSession(ctx, cid(1))
		must(t, err)
		want := next
		want.State = fmt.Appendf(nil, "claimed-%d", winner)
		checkEqual(t, "claimed session", got, &want)
		// A claim from a stale state, or of an absent session, does nothing.
		ok, err := ds.ClaimDTLSSession(ctx, next, []byte("state-1"))
		must(t, err)
		if ok {
			t.Error("claim from a stale state won")
		}
		ok, err = ds.ClaimDTLSSession(ctx, store.DTLSSession{CID: cid(2), DeviceID: devID(1), State: []byte("x")}, []byte("state-2"))
		must(t, err)
		if ok {
			t.Error("claim of an absent session won")
		}
	}},
	{"ClaimNew", func(t *testing.T, s store.Store) {
		// With no old state a claim inserts a new session: once, only on
		// a free connection ID, only for a device that exists.
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		saveSession(t, s, devID(1), 1, base)
		ok, err := s.ClaimDTLSSession(ctx, store.DTLSSession{CID: cid(1), DeviceID: devID(1), State: []byte("new")}, nil)
		must(t, err)
		if ok {
			t.Error("new session over a saved one won")
		}
		got, err := s.DTLSSession(ctx, cid(1))
		must(t, err)
		if string(got.State) != "state-1" {
			t.Errorf("saved session replaced by a new one: %q", got.State)
		}
		winner := oneWins(t, "new session", func(i int) (bool, error) {
			return s.ClaimDTLSSession(ctx, store.DTLSSession{CID: cid(2), DeviceID: devID(1),
				State: fmt.Appendf(nil, "new-%d", i), UpdatedAt: at(time.Second)}, nil)
		})
		got, err = s.DTLSSession(ctx, cid(2))
		must(t, err)
		checkEqual(t, "new session", got, &store.DTLSSession{CID: cid(2), DeviceID: devID(1),
			State: fmt.Appendf(nil, "new-%d", winner), UpdatedAt: at(time.Second)})
		_, err = s.ClaimDTLSSession(ctx, store.DTLSSession{CID: cid(3), DeviceID: devID(9), State: []byte("x")}, nil)
		wantErr(t, "new session of an absent device", err, store.ErrNotFound)
		checkStrings(t, "sessions", sessionCIDs(t, s, 3), cidHex(1, 2))
	}},
	{"DeleteState", func(t *testing.T, s store.Store) {
		// A conditional delete leaves a session another process saved.
		ctx := t.Context()
		addECCDevice(t, s, devID(1), 1)
		saveSession(t, s, devID(1), 1, base)
		saveSession(t, s, devID(1), 2, base)
		for _, tt := range []struct {
			cid   []byte
			state string
			want  bool
		}{
			{cid(1), "state-0", false},
			{cid(1), "", false},
			{cid(3), "state-3", false},
			{cid(1), "state-1", true},
			{cid(1), "state-1", false},
		} {
			ok, err := s.DeleteDTLSSessionState(ctx, tt.cid, []byte(tt.state))
			must(t, err)
			if ok != tt.want {
				t.Errorf("delete %x from %q = %v; want %v", tt.cid, tt.state, ok, tt.want)
			}
		}
		checkStrings(t, "sessions", sessionCIDs(t, s, 3), cidHex(2))
	}},
}

// batchStore returns s as store.DTLSSessionBatches, with devices 1 and 2
// added, or skips the test when s does not save sessions in batches.
func batchStore(t *testing.T, s store.Store) store.DTLSSessionBatches {
	t.Helper()
	bs, ok := s.(store.DTLSSessionBatches)
	if !ok {
		t.Skip("store does not save sessions in batches")
	}
	addECCDevice(t, s, devID(1), 1)
	addECCDevice(t, s, devID(2), 2)
	return bs
}
