package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// presenceTests check what presence writes (online, offline one by one
// and in batches, last heard, node resets) do to the versions callers
// cache by: every write that applies gives its device a row version no
// device ever had, one that does not apply (a session that is no longer
// the device's) leaves it, a list's stamp moves exactly when one of its
// devices was written, and a product's list version moves only for a
// new last handshake (a sort key), by one per device.
var presenceTests = []test{
	{"Versions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		lists, ok := s.(store.DeviceLists)
		if !ok {
			t.Skip("store keeps no row versions")
		}
		owner := addUser(t, s, "presence@example.com")
		p := addProduct(t, s, "presence", owner)
		c := addCustomer(t, s, p.ID, "customer@example.com")
		// 1, 2 and 7 are the user's, 3 and 4 the customer's, 5 and 6
		// no one's; all but 7 are in the product.
		var ids []string
		for i := 1; i <= 7; i++ {
			pid := p.ID
			if i == 7 {
				pid = 0
			}
			_, err := s.ProvisionDevice(ctx, devID(i), store.KeyECC, testKey(i), pid)
			must(t, err)
			switch i {
			case 1, 2, 7:
				_, err = s.ClaimDevice(ctx, devID(i), owner.ID, "")
			case 3, 4:
				_, err = s.ClaimDevice(ctx, devID(i), "", c.ID)
			}
			must(t, err)
			ids = append(ids, devID(i))
		}
		versions := func() map[string]int64 {
			t.Helper()
			list, err := lists.DevicesByIDs(ctx, ids)
			must(t, err)
			out := make(map[string]int64, len(list))
			for _, d := range list {
				out[d.ID] = d.Version
			}
			if len(out) != len(ids) {
				t.Fatalf("DevicesByIDs returned %d of %d devices", len(out), len(ids))
			}
			if rv, ok := s.(store.DeviceRowVersions); ok {
				for id, v := range out {
					got, err := rv.DeviceVersion(ctx, id)
					if err != nil || got != v {
						t.Fatalf("DeviceVersion(%s) = %d, %v; DevicesByIDs says %d", id, got, err, v)
					}
				}
				if _, err := rv.DeviceVersion(ctx, devID(99)); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("DeviceVersion of an unknown device: err = %v; want ErrNotFound", err)
				}
			}
			return out
		}
		productVersion := func() int64 {
			t.Helper()
			pl, ok := s.(store.ProductDeviceLists)
			if !ok {
				return 0
			}
			st, err := pl.ProductDeviceListState(ctx, p.ID)
			must(t, err)
			return st.Version
		}
		stamps, _ := s.(store.DeviceListStamps)
		stamp := func(customer bool) (store.DeviceListStamp, bool) {
			t.Helper()
			if stamps == nil {
				return store.DeviceListStamp{}, false
			}
			var (
				st    store.DeviceListStamp
				exact bool
				err   error
			)
			if customer {
				st, exact, err = stamps.DeviceListStampByCustomer(ctx, c.ID)
			} else {
				st, exact, err = stamps.DeviceListStampByOwner(ctx, owner.ID)
			}
			must(t, err)
			return st, exact
		}
		cur := versions()
		seen := map[int64]string{}
		for id, v := range cur {
			seen[v] = "provisioning " + id
		}
		owned := map[string]bool{devID(1): true, devID(2): true, devID(7): true}
		customers := map[string]bool{devID(3): true, devID(4): true}
		// step runs write, which must write exactly the devices changed
		// and move the product's list version by productMoves.
		step := func(name string, changed []string, productMoves int64, write func() error) {
			t.Helper()
			pv := productVersion()
			ownerStamp, ownerExact := stamp(false)
			customerStamp, customerExact := stamp(true)
			if err := write(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			now := versions()
			var ownerMoved, customerMoved bool
			for _, id := range ids {
				if !slices.Contains(changed, id) {
					if now[id] != cur[id] {
						t.Errorf("%s: device %s not written, but its version moved %d -> %d", name, id, cur[id], now[id])
					}
					continue
				}
				if prev, dup := seen[now[id]]; dup {
					t.Errorf("%s: device %s has version %d, as after %s", name, id, now[id], prev)
				}
				seen[now[id]] = name + " " + id
				ownerMoved = ownerMoved || owned[id]
				customerMoved = customerMoved || customers[id]
			}
			cur = now
			if got := productVersion() - pv; got != productMoves {
				t.Errorf("%s: product list version moved by %d; want %d", name, got, productMoves)
			}
			for _, l := range []struct {
				who          string
				before       store.DeviceListStamp
				exact, moved bool
				customer     bool
			}{{"user", ownerStamp, ownerExact, ownerMoved, false}, {"customer", customerStamp, customerExact, customerMoved, true}} {
				if !l.exact {
					continue
				}
				after, _ := stamp(l.customer)
				if (after != l.before) != l.moved {
					t.Errorf("%s: %s list stamp %+v -> %+v; want it moved: %v", name, l.who, l.before, after, l.moved)
				}
			}
		}
		applied := func(what string, got, want []bool) error {
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s applied %v; want %v", what, got, want)
			}
			return nil
		}

		step("online", ids, 6, func() error {
			for i, id := range ids {
				if _, err := s.SetDeviceOnline(ctx, id, store.DeviceSession{
					Node: "node-a", SessionID: fmt.Sprintf("s%d", i+1), At: at(time.Minute), PlatformID: 12,
				}); err != nil {
					return err
				}
			}
			return nil
		})
		step("last heard", []string{devID(1)}, 0, func() error {
			return s.TouchDevices(ctx, map[string]time.Time{devID(1): at(2 * time.Minute)})
		})
		step("offline of another session", nil, 0, func() error {
			ok, err := s.SetDeviceOffline(ctx, devID(2), "s1", at(3*time.Minute))
			if err == nil && ok {
				err = fmt.Errorf("offline of another session applied")
			}
			return err
		})
		step("offline", []string{devID(2)}, 0, func() error {
			ok, err := s.SetDeviceOffline(ctx, devID(2), "s2", at(3*time.Minute))
			if err == nil && !ok {
				err = fmt.Errorf("offline not applied")
			}
			return err
		})
		step("offline batch", []string{devID(3), devID(5), devID(7)}, 0, func() error {
			got, err := s.SetDevicesOffline(ctx, []store.DeviceOffline{
				{ID: devID(3), SessionID: "s3", At: at(4 * time.Minute)},
				{ID: devID(4), SessionID: "s3", At: at(4 * time.Minute)},
				{ID: devID(5), SessionID: "s5", At: at(4 * time.Minute)},
				{ID: devID(7), SessionID: "s7", At: at(4 * time.Minute)},
				{ID: devID(2), SessionID: "s2", At: at(4 * time.Minute)},
			})
			if err != nil {
				return err
			}
			return applied("SetDevicesOffline", got, []bool{true, false, true, true, false})
		})
		if b, ok := s.(store.PresenceBatcher); ok {
			// Device 1 comes back with a new handshake (the product's
			// order moves once), 4 goes offline after an offline of a
			// session that is not its, 6 is heard.
			step("presence batch", []string{devID(1), devID(4), devID(6)}, 1, func() error {
				got, err := b.ApplyPresence(ctx, []store.PresenceUpdate{
					{DeviceID: devID(1), Online: &store.DeviceSession{Node: "node-a", SessionID: "s1b", At: at(5 * time.Minute), PlatformID: 12}},
					{DeviceID: devID(4), OfflineSession: "s1b", OfflineAt: at(5 * time.Minute)},
					{DeviceID: devID(4), OfflineSession: "s4", OfflineAt: at(5 * time.Minute)},
					{DeviceID: devID(6), LastHeard: at(6 * time.Minute)},
					{DeviceID: devID(5), OfflineSession: "s5", OfflineAt: at(5 * time.Minute)},
				})
				if err != nil {
					return err
				}
				return applied("ApplyPresence", got, []bool{false, false, true, false, false})
			})
		}
		// Left online on node-a: 1 and 6 (and 4 without a batcher).
		var left []string
		for _, id := range ids {
			if getDevice(t, s, id).Online {
				left = append(left, id)
			}
		}
		step("node reset", left, 0, func() error {
			got, err := s.ResetNodeBatch(ctx, "node-a", at(time.Hour), 10)
			if err == nil && !slices.Equal(got, left) {
				err = fmt.Errorf("ResetNodeBatch reset %q; want %q", got, left)
			}
			return err
		})
		step("empty node reset", nil, 0, func() error {
			got, err := s.ResetNode(ctx, "node-a", at(time.Hour))
			if err == nil && len(got) != 0 {
				err = fmt.Errorf("ResetNode reset %q; want none", got)
			}
			return err
		})
		step("online again at the same handshake", []string{devID(5)}, 0, func() error {
			_, err := s.SetDeviceOnline(ctx, devID(5), store.DeviceSession{
				Node: "node-b", SessionID: "s5b", At: at(time.Minute), PlatformID: 12,
			})
			return err
		})
	}},
}
