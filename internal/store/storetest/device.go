package storetest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// generatedNameRE is the shape of store.DeviceNames' names.
var generatedNameRE = regexp.MustCompile(`^[a-z]{3,8}_[a-z]{3,8}(_[0-9]{4})?$`)

// generatedName reports whether name has the shape of a generated name.
func generatedName(name string) bool { return generatedNameRE.MatchString(name) }

// devID returns the device ID whose last hex digits spell n.
func devID(n int) string { return fmt.Sprintf("%024x", n) }

// testKey returns a key-like byte string unique to seed, with a zero byte
// and high bytes, as a DER key has.
func testKey(seed int) []byte {
	return append([]byte{0x30, 0x81, 0x9f, 0x00, 0xff}, fmt.Sprintf("key-%d", seed)...)
}

// addDevice provisions device id with an RSA key and no product, and
// returns it as stored.
func addDevice(t *testing.T, s store.Store, id string) *store.Device {
	t.Helper()
	d, err := s.ProvisionDevice(t.Context(), id, store.KeyRSA, testKey(len(id)), 0)
	must(t, err)
	return d
}

// getDevice returns the stored device, failing the test if absent.
func getDevice(t *testing.T, s store.Store, id string) *store.Device {
	t.Helper()
	d, err := s.DeviceByID(t.Context(), id)
	must(t, err)
	return d
}

// editDevice reads the device, applies edit and stores it with
// UpdateDevice, returning UpdateDevice's error.
func editDevice(t *testing.T, s store.Store, id string, edit func(*store.Device)) error {
	t.Helper()
	d := getDevice(t, s, id)
	edit(d)
	d.UpdatedAt = time.Time{}
	return s.UpdateDevice(t.Context(), d)
}

// goOnline records a session of device id on node, with a handshake at
// base+offset.
func goOnline(t *testing.T, s store.Store, id, node, session string, offset time.Duration) *store.Device {
	t.Helper()
	d, err := s.SetDeviceOnline(t.Context(), id, store.DeviceSession{
		Node: node, SessionID: session, IP: "192.0.2.1", At: base.Add(offset), PlatformID: 6,
	})
	must(t, err)
	return d
}

// deviceIDs returns the IDs of a device list.
func deviceIDs(list []store.Device) []string {
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	return ids
}

// checkIDs fails the test unless got lists exactly the IDs of want, in
// order.
func checkIDs(t *testing.T, what string, got []store.Device, want ...string) {
	t.Helper()
	if ids := deviceIDs(got); !slices.Equal(ids, want) {
		t.Errorf("%s = %q; want %q", what, ids, want)
	}
}

// boolPtr returns a pointer to b.
func boolPtr(b bool) *bool { return &b }

var deviceTests = []test{
	{"ProvisionAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		id := devID(1)
		before := time.Now()
		d, err := s.ProvisionDevice(ctx, id, store.KeyRSA, testKey(1), 0)
		must(t, err)
		after := time.Now()
		checkStamped(t, "CreatedAt", d.CreatedAt, before, after)
		checkStamped(t, "UpdatedAt", d.UpdatedAt, before, after)
		want := &store.Device{
			ID: id, PublicKey: testKey(1), KeyAlgorithm: store.KeyRSA,
			Status: store.DeviceStatusNormal, FirmwareUpdatesEnabled: true,
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		}
		checkEqual(t, "ProvisionDevice", d, want)
		checkEqual(t, "DeviceByID", getDevice(t, s, id), want)

		// Again, with another key and a product: key and product replaced,
		// creation kept.
		before = time.Now()
		d, err = s.ProvisionDevice(ctx, id, store.KeyECC, testKey(2), 10001)
		must(t, err)
		checkStamped(t, "UpdatedAt after new key", d.UpdatedAt, before, time.Now())
		want.PublicKey, want.KeyAlgorithm, want.ProductID, want.UpdatedAt = testKey(2), store.KeyECC, 10001, d.UpdatedAt
		checkEqual(t, "after new key", getDevice(t, s, id), want)

		// No key and no product: both kept.
		d, err = s.ProvisionDevice(ctx, id, store.KeyRSA, nil, 0)
		must(t, err)
		want.UpdatedAt = d.UpdatedAt
		checkEqual(t, "after empty provisioning", getDevice(t, s, id), want)

		// A product alone moves the device.
		d, err = s.ProvisionDevice(ctx, id, "", nil, 10002)
		must(t, err)
		want.ProductID, want.UpdatedAt = 10002, d.UpdatedAt
		checkEqual(t, "after product only", getDevice(t, s, id), want)

		// A device known by ID only, as when added to a product before it
		// was provisioned.
		bare, err := s.ProvisionDevice(ctx, devID(2), store.KeyRSA, nil, 10001)
		must(t, err)
		checkEqual(t, "bare device", getDevice(t, s, devID(2)), &store.Device{
			ID: devID(2), ProductID: 10001, Status: store.DeviceStatusNormal, FirmwareUpdatesEnabled: true,
			CreatedAt: bare.CreatedAt, UpdatedAt: bare.UpdatedAt,
		})
		// Its key arrives later.
		_, err = s.ProvisionDevice(ctx, devID(2), store.KeyECC, testKey(3), 0)
		must(t, err)
		got := getDevice(t, s, devID(2))
		if string(got.PublicKey) != string(testKey(3)) || got.KeyAlgorithm != store.KeyECC || got.ProductID != 10001 {
			t.Errorf("bare device after key = key %q alg %q product %d; want %q ecc 10001",
				got.PublicKey, got.KeyAlgorithm, got.ProductID, testKey(3))
		}
		n, err := s.CountDevices(ctx)
		must(t, err)
		if n != 2 {
			t.Errorf("CountDevices = %d; want 2", n)
		}
	}},
	{"RoundTrip", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(7))
		upd := *d
		upd.Name, upd.Notes = "Kitchen Lamp", "Ünïcode — and 'quotes'; \"more\""
		upd.OwnerID, upd.ProductID = "0123456789abcdef01234567", 10001
		upd.Development, upd.Quarantined, upd.Denied, upd.FirmwareUpdatesForced = true, true, true, true
		upd.UpdatedAt = base
		must(t, s.UpdateDevice(ctx, &upd))
		_, err := s.SetDeviceOnline(ctx, d.ID, store.DeviceSession{
			Node: "node-a", SessionID: "session-1", IP: "203.0.113.7", At: base.Add(time.Minute),
			PlatformID: 32, ProductVersion: 3, SystemModuleVersion: 3302,
		})
		must(t, err)
		must(t, s.SetDeviceDescribe(ctx, d.ID, store.Describe{
			Parts:         store.DescribeSystem | store.DescribeApplication,
			Functions:     []string{"led", "reset", "dïgit"},
			Variables:     map[string]string{"temp": "double", "count": "int32", "label": "string", "on": "bool"},
			SystemVersion: "3.3.1", Status: store.DeviceStatusSafeMode,
		}))
		subs := []store.Subscription{
			{Prefix: "spark", Scope: store.ScopeMine},
			{Prefix: "temp/room 1", Scope: store.ScopeDevicePrefix + devID(8)},
			{Prefix: "", Scope: store.ScopeAll},
		}
		must(t, s.SetDeviceSubscriptions(ctx, d.ID, subs))
		must(t, s.SetFirmwareUpdatesEnabled(ctx, d.ID, false))

		want := &store.Device{
			ID: d.ID, Name: "Kitchen Lamp", OwnerID: "0123456789abcdef01234567", ProductID: 10001,
			PlatformID: 32, PublicKey: d.PublicKey, KeyAlgorithm: store.KeyRSA,
			Notes: "Ünïcode — and 'quotes'; \"more\"", Online: true, Node: "node-a", SessionID: "session-1",
			LastHeard: ptr(at(time.Minute)), LastHandshakeAt: ptr(at(time.Minute)), LastIP: "203.0.113.7",
			SystemVersion: "3.3.1", SystemModuleVersion: 3302, ProductVersion: 3,
			Functions:     []string{"led", "reset", "dïgit"},
			Variables:     map[string]string{"temp": "double", "count": "int32", "label": "string", "on": "bool"},
			Subscriptions: subs, Status: store.DeviceStatusSafeMode, FirmwareUpdatesEnabled: false,
			Development: true, Quarantined: true, Denied: true, FirmwareUpdatesForced: true,
			// Connection state, Describe and subscriptions leave UpdatedAt.
			CreatedAt: d.CreatedAt, UpdatedAt: at(0),
		}
		checkEqual(t, "DeviceByID", getDevice(t, s, d.ID), want)
		got, err := s.DeviceByOwnerName(ctx, want.OwnerID, "kitchen LAMP")
		must(t, err)
		checkEqual(t, "DeviceByOwnerName", got, want)
		list, err := s.DevicesByOwner(ctx, want.OwnerID)
		must(t, err)
		checkList(t, "DevicesByOwner", list, []store.Device{*want})
		list, total, err := s.DevicesByProduct(ctx, 10001, store.DeviceFilter{})
		must(t, err)
		if total != 1 {
			t.Errorf("DevicesByProduct total = %d; want 1", total)
		}
		checkList(t, "DevicesByProduct", list, []store.Device{*want})
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		addDevice(t, s, devID(1))
		missing := devID(0xfff)
		_, err := s.DeviceByID(ctx, missing)
		wantErr(t, "DeviceByID", err, store.ErrNotFound)
		_, err = s.DeviceByOwnerName(ctx, "user", "nothing")
		wantErr(t, "DeviceByOwnerName", err, store.ErrNotFound)
		_, err = s.DeviceByCustomerName(ctx, "customer", "nothing")
		wantErr(t, "DeviceByCustomerName", err, store.ErrNotFound)
		wantErr(t, "UpdateDevice", s.UpdateDevice(ctx, &store.Device{ID: missing, Name: "x"}), store.ErrNotFound)
		_, err = s.ClaimDevice(ctx, missing, "user", "")
		wantErr(t, "ClaimDevice", err, store.ErrNotFound)
		wantErr(t, "UnclaimDevice", s.UnclaimDevice(ctx, missing), store.ErrNotFound)
		_, err = s.SetDeviceOnline(ctx, missing, store.DeviceSession{Node: "n", SessionID: "s"})
		wantErr(t, "SetDeviceOnline", err, store.ErrNotFound)
		applied, err := s.SetDeviceOffline(ctx, missing, "s", base)
		if applied || err != nil {
			t.Errorf("SetDeviceOffline(missing) = %v, %v; want false, nil", applied, err)
		}
		err = s.SetDeviceDescribe(ctx, missing, store.Describe{Parts: store.DescribeApplication, Functions: []string{"f"}})
		wantErr(t, "SetDeviceDescribe", err, store.ErrNotFound)
		err = s.SetDeviceSubscriptions(ctx, missing, []store.Subscription{{Prefix: "p", Scope: store.ScopeAll}})
		wantErr(t, "SetDeviceSubscriptions", err, store.ErrNotFound)
		wantErr(t, "SetFirmwareUpdatesEnabled", s.SetFirmwareUpdatesEnabled(ctx, missing, true), store.ErrNotFound)
		wantErr(t, "DeleteDevice", s.DeleteDevice(ctx, missing), store.ErrNotFound)
		// Nothing was created on the way.
		n, err := s.CountDevices(ctx)
		must(t, err)
		if n != 1 {
			t.Errorf("CountDevices = %d; want 1", n)
		}
	}},
	{"NamesUniquePerOwner", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const u1, u2, k1 = "user-one", "user-two", "customer-one"
		for i := 1; i <= 8; i++ {
			addDevice(t, s, devID(i))
		}
		for id, owner := range map[int][2]string{1: {u1, ""}, 2: {u1, ""}, 3: {u2, ""}, 4: {"", k1}, 5: {"", k1}} {
			_, err := s.ClaimDevice(ctx, devID(id), owner[0], owner[1])
			must(t, err)
		}
		rename := func(n int, name string) error {
			return editDevice(t, s, devID(n), func(d *store.Device) { d.Name = name })
		}
		must(t, rename(1, "Lamp"))
		named2 := getDevice(t, s, devID(2)).Name // generated by the claim
		wantErr(t, "rename to a user's name in other case", rename(2, "LAMP"), store.ErrConflict)
		if got := getDevice(t, s, devID(2)); got.Name != named2 {
			t.Errorf("name after a refused rename = %q; want unchanged %q", got.Name, named2)
		}
		must(t, rename(3, "lamp"))                                                      // another user
		must(t, rename(4, "lamp"))                                                      // a customer
		wantErr(t, "rename to a customer's name", rename(5, "Lamp"), store.ErrConflict) // same customer
		must(t, rename(6, "lamp"))                                                      // unclaimed devices may share
		must(t, rename(7, "lamp"))
		must(t, rename(1, "lAmP")) // the device itself, in other case
		must(t, rename(2, ""))     // unnamed devices of one owner may share ""
		must(t, rename(5, ""))

		for _, tc := range []struct {
			what     string
			lookup   func() (*store.Device, error)
			wantID   string
			wantName string
		}{
			{"user one", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, u1, "LAMP") }, devID(1), "lAmP"},
			{"user two", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, u2, "Lamp") }, devID(3), "lamp"},
			{"customer", func() (*store.Device, error) { return s.DeviceByCustomerName(ctx, k1, "LAMP") }, devID(4), "lamp"},
			{"customer ID as user", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, k1, "lamp") }, "", ""},
			{"user ID as customer", func() (*store.Device, error) { return s.DeviceByCustomerName(ctx, u1, "lamp") }, "", ""},
			{"unclaimed", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, "", "lamp") }, "", ""},
			{"unclaimed customer", func() (*store.Device, error) { return s.DeviceByCustomerName(ctx, "", "lamp") }, "", ""},
			{"empty name", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, u1, "") }, "", ""},
			{"other name", func() (*store.Device, error) { return s.DeviceByOwnerName(ctx, u1, "lamp2") }, "", ""},
		} {
			d, err := tc.lookup()
			if tc.wantID == "" {
				wantErr(t, tc.what, err, store.ErrNotFound)
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tc.what, err)
				continue
			}
			if d.ID != tc.wantID || d.Name != tc.wantName {
				t.Errorf("%s = %s %q; want %s %q", tc.what, d.ID, d.Name, tc.wantID, tc.wantName)
			}
		}

		// Case folding covers more than ASCII.
		must(t, rename(2, "Éclair"))
		wantErr(t, "rename to a non-ASCII name in other case", rename(1, "ÉCLAIR"), store.ErrConflict)
		if d, err := s.DeviceByOwnerName(ctx, u1, "éCLAIR"); err != nil || d.ID != devID(2) {
			t.Errorf("DeviceByOwnerName(éCLAIR) = %v, %v; want device 2", d, err)
		}

		// Moving a device to an owner with that name through UpdateDevice
		// fails and changes nothing.
		err := editDevice(t, s, devID(6), func(d *store.Device) { d.OwnerID, d.Notes = u1, "changed" })
		wantErr(t, "UpdateDevice(onto a taken name)", err, store.ErrConflict)
		if got := getDevice(t, s, devID(6)); got.OwnerID != "" || got.Notes != "" || got.Name != "lamp" {
			t.Errorf("after a refused move: owner %q notes %q name %q; want unchanged", got.OwnerID, got.Notes, got.Name)
		}
		// Claiming it instead succeeds; the device trades the clashing
		// name for a generated one.
		d, err := s.ClaimDevice(ctx, devID(6), u1, "")
		must(t, err)
		if d.OwnerID != u1 || !generatedName(d.Name) {
			t.Errorf("claimed onto a taken name: owner %q name %q; want %q and a generated name", d.OwnerID, d.Name, u1)
		}
		checkEqual(t, "claimed device", getDevice(t, s, devID(6)), d)
		// Without a clash the name stays, for users and customers.
		d, err = s.ClaimDevice(ctx, devID(7), "user-three", "")
		must(t, err)
		if d.Name != "lamp" {
			t.Errorf("claimed without clash: name %q; want lamp", d.Name)
		}
		d, err = s.ClaimDevice(ctx, devID(7), "", "customer-two")
		must(t, err)
		if d.Name != "lamp" || d.CustomerID != "customer-two" || d.OwnerID != "" {
			t.Errorf("claimed by a customer without clash: %q %q %q", d.Name, d.OwnerID, d.CustomerID)
		}
		d, err = s.ClaimDevice(ctx, devID(7), "", k1) // k1 has "lamp"
		must(t, err)
		if !generatedName(d.Name) || d.CustomerID != k1 {
			t.Errorf("claimed by a customer with clash: name %q customer %q; want a generated name, %q", d.Name, d.CustomerID, k1)
		}
	}},
	{"ClaimGivesNames", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 60
		for i := 1; i <= n; i++ {
			addDevice(t, s, devID(i))
		}
		// Every device claimed without a name gets one, unique for its
		// owner, user or customer, even when many are claimed at once.
		var wg sync.WaitGroup
		for i := 1; i <= n; i++ {
			wg.Go(func() {
				user, customer := "user-1", ""
				if i%2 == 0 {
					user, customer = "", "customer-1"
				}
				if _, err := s.ClaimDevice(ctx, devID(i), user, customer); err != nil {
					t.Errorf("ClaimDevice(%d): %v", i, err)
				}
			})
		}
		wg.Wait()
		users, err := s.DevicesByOwner(ctx, "user-1")
		must(t, err)
		customers, err := s.DevicesByCustomer(ctx, "customer-1")
		must(t, err)
		for what, list := range map[string][]store.Device{"user": users, "customer": customers} {
			if len(list) != n/2 {
				t.Errorf("%s owns %d devices; want %d", what, len(list), n/2)
			}
			seen := map[string]string{}
			for _, d := range list {
				if !generatedName(d.Name) {
					t.Errorf("%s's device %s: name %q; want a generated name", what, d.ID, d.Name)
				}
				if other, dup := seen[d.Name]; dup {
					t.Errorf("%s's devices %s and %s share the name %q", what, other, d.ID, d.Name)
				}
				seen[d.Name] = d.ID
				if got, err := s.DeviceByOwnerName(ctx, d.OwnerID, d.Name); d.OwnerID != "" && (err != nil || got.ID != d.ID) {
					t.Errorf("DeviceByOwnerName(%q) = %v, %v; want %s", d.Name, got, err, d.ID)
				}
			}
		}

		// A rename sticks: claiming again, by the same owner or, after an
		// unclaim, by another one without that name, keeps it.
		must(t, editDevice(t, s, devID(1), func(d *store.Device) { d.Name = "porch" }))
		for _, owner := range []string{"user-1", "user-2"} {
			if owner == "user-2" {
				must(t, s.UnclaimDevice(ctx, devID(1)))
				if got := getDevice(t, s, devID(1)); got.Name != "porch" {
					t.Errorf("unclaimed device's name = %q; want porch", got.Name)
				}
			}
			d, err := s.ClaimDevice(ctx, devID(1), owner, "")
			must(t, err)
			if d.Name != "porch" || d.OwnerID != owner {
				t.Errorf("claimed by %s: name %q owner %q; want porch, %s", owner, d.Name, d.OwnerID, owner)
			}
		}
		// A generated name stays across a transfer too.
		d3 := getDevice(t, s, devID(3))
		d, err := s.ClaimDevice(ctx, devID(3), "", "customer-2")
		must(t, err)
		if d.Name != d3.Name {
			t.Errorf("transferred device's name = %q; want kept %q", d.Name, d3.Name)
		}
		_, err = s.ClaimDevice(ctx, devID(0xfff), "user-1", "")
		wantErr(t, "ClaimDevice(missing)", err, store.ErrNotFound)
	}},
	{"NameOwnedDevices", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i := 1; i <= 5; i++ {
			addDevice(t, s, devID(i))
		}
		// Owned devices left without a name, as before names were
		// generated: a user's, a customer's; one unowned, one named.
		_, err := s.ClaimDevice(ctx, devID(1), "user-1", "")
		must(t, err)
		_, err = s.ClaimDevice(ctx, devID(2), "", "customer-1")
		must(t, err)
		_, err = s.ClaimDevice(ctx, devID(4), "user-1", "")
		must(t, err)
		for _, id := range []string{devID(1), devID(2)} {
			must(t, editDevice(t, s, id, func(d *store.Device) { d.Name = "" }))
		}
		must(t, editDevice(t, s, devID(4), func(d *store.Device) { d.Name = "kept" }))
		n, err := s.NameOwnedDevices(ctx)
		must(t, err)
		if n != 2 {
			t.Errorf("NameOwnedDevices = %d; want 2", n)
		}
		for _, tc := range []struct {
			id        string
			generated bool
			name      string
		}{
			{devID(1), true, ""}, {devID(2), true, ""}, {devID(3), false, ""}, {devID(4), false, "kept"},
		} {
			got := getDevice(t, s, tc.id)
			if tc.generated && !generatedName(got.Name) || !tc.generated && got.Name != tc.name {
				t.Errorf("device %s: name %q; want generated %v or %q", tc.id, got.Name, tc.generated, tc.name)
			}
		}
		n, err = s.NameOwnedDevices(ctx)
		must(t, err)
		if n != 0 {
			t.Errorf("NameOwnedDevices again = %d; want 0", n)
		}
	}},
	{"Update", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		goOnline(t, s, d.ID, "node", "session", time.Minute)
		must(t, s.SetDeviceDescribe(ctx, d.ID, store.Describe{Parts: store.DescribeApplication, Functions: []string{"f"}}))
		orig := getDevice(t, s, d.ID)

		upd := store.Device{
			ID: d.ID, Name: "new name", Notes: "notes", CustomerID: "customer", ProductID: 10007,
			Development: true, Quarantined: true, Denied: true, FirmwareUpdatesForced: true,
			UpdatedAt: base.Add(time.Hour),
			// Not editable: ignored.
			PlatformID: 99, PublicKey: []byte("other"), KeyAlgorithm: store.KeyECC, Online: false,
			Node: "elsewhere", LastIP: "x", Functions: []string{"g"}, Status: store.DeviceStatusSafeMode,
			FirmwareUpdatesEnabled: false, CreatedAt: base,
		}
		must(t, s.UpdateDevice(ctx, &upd))
		want := *orig
		want.Name, want.Notes, want.CustomerID, want.ProductID = "new name", "notes", "customer", 10007
		want.Development, want.Quarantined, want.Denied, want.FirmwareUpdatesForced = true, true, true, true
		want.UpdatedAt = at(time.Hour)
		checkEqual(t, "after update", getDevice(t, s, d.ID), &want)

		// A device has one owner, a user or a customer.
		both := upd
		both.OwnerID = "user"
		if err := s.UpdateDevice(ctx, &both); err == nil {
			t.Error("UpdateDevice(owned by a user and a customer) succeeded")
		}
		checkEqual(t, "after a refused update", getDevice(t, s, d.ID), &want)

		// All back off, with a zero UpdatedAt: now.
		before := time.Now()
		back := store.Device{ID: d.ID}
		must(t, s.UpdateDevice(ctx, &back))
		got := getDevice(t, s, d.ID)
		checkStamped(t, "UpdatedAt (zero given)", got.UpdatedAt, before, time.Now())
		checkTime(t, "UpdatedAt set in the argument", back.UpdatedAt, got.UpdatedAt)
		want = *orig
		want.UpdatedAt = got.UpdatedAt
		checkEqual(t, "after clearing", got, &want)
	}},
	{"ClaimAndUnclaim", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		must(t, editDevice(t, s, d.ID, func(d *store.Device) { d.Name, d.Notes, d.ProductID = "kept", "kept notes", 10001 }))
		addDevice(t, s, devID(2))

		before := time.Now()
		got, err := s.ClaimDevice(ctx, d.ID, "user-1", "")
		must(t, err)
		checkStamped(t, "UpdatedAt after claim", got.UpdatedAt, before, time.Now())
		if got.OwnerID != "user-1" || got.CustomerID != "" {
			t.Errorf("claimed by user: owner %q customer %q", got.OwnerID, got.CustomerID)
		}
		checkEqual(t, "ClaimDevice's result", got, getDevice(t, s, d.ID))
		list, err := s.DevicesByOwner(ctx, "user-1")
		must(t, err)
		checkIDs(t, "DevicesByOwner", list, d.ID)

		// A customer takes it over: the user no longer owns it.
		got, err = s.ClaimDevice(ctx, d.ID, "", "customer-1")
		must(t, err)
		if got.OwnerID != "" || got.CustomerID != "customer-1" {
			t.Errorf("claimed by customer: owner %q customer %q", got.OwnerID, got.CustomerID)
		}
		list, err = s.DevicesByOwner(ctx, "user-1")
		must(t, err)
		checkIDs(t, "DevicesByOwner after transfer", list)
		list, err = s.DevicesByCustomer(ctx, "customer-1")
		must(t, err)
		checkIDs(t, "DevicesByCustomer", list, d.ID)

		// And back to a user.
		got, err = s.ClaimDevice(ctx, d.ID, "user-2", "")
		must(t, err)
		if got.OwnerID != "user-2" || got.CustomerID != "" {
			t.Errorf("claimed back by user: owner %q customer %q", got.OwnerID, got.CustomerID)
		}

		for _, owners := range [][2]string{{"", ""}, {"user-1", "customer-1"}} {
			_, err := s.ClaimDevice(ctx, d.ID, owners[0], owners[1])
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("ClaimDevice(user %q, customer %q) = %v; want an argument error", owners[0], owners[1], err)
			}
		}

		before = time.Now()
		must(t, s.UnclaimDevice(ctx, d.ID))
		got = getDevice(t, s, d.ID)
		checkStamped(t, "UpdatedAt after unclaim", got.UpdatedAt, before, time.Now())
		if got.OwnerID != "" || got.CustomerID != "" {
			t.Errorf("unclaimed: owner %q customer %q", got.OwnerID, got.CustomerID)
		}
		if got.Name != "kept" || got.Notes != "kept notes" || got.ProductID != 10001 {
			t.Errorf("unclaimed: name %q notes %q product %d; want kept", got.Name, got.Notes, got.ProductID)
		}
		list, err = s.DevicesByOwner(ctx, "user-2")
		must(t, err)
		checkIDs(t, "DevicesByOwner after unclaim", list)
		must(t, s.UnclaimDevice(ctx, d.ID)) // unclaiming twice is fine
	}},
	{"ListOrder", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		// Handshakes, by device number: nil means never connected.
		handshakes := map[int]*time.Duration{
			1: durPtr(time.Hour), 2: durPtr(3 * time.Hour), 3: nil,
			4: durPtr(3 * time.Hour), 5: nil, 6: durPtr(2 * time.Hour),
		}
		for _, who := range []struct{ user, customer string }{{"user-1", ""}, {"", "customer-1"}} {
			for n, hs := range handshakes {
				id := devID(n)
				if who.customer != "" {
					id = devID(n + 0x100)
				}
				addDevice(t, s, id)
				if hs != nil {
					goOnline(t, s, id, "node", "s", *hs)
				}
				_, err := s.ClaimDevice(ctx, id, who.user, who.customer)
				must(t, err)
			}
		}
		addDevice(t, s, devID(0x200))
		_, err := s.ClaimDevice(ctx, devID(0x200), "user-2", "")
		must(t, err)
		addDevice(t, s, devID(0x201)) // unclaimed

		// Latest handshake first, ties by ID, the never connected last.
		order := []int{2, 4, 6, 1, 3, 5}
		var wantUser, wantCustomer []string
		for _, n := range order {
			wantUser = append(wantUser, devID(n))
			wantCustomer = append(wantCustomer, devID(n+0x100))
		}
		list, err := s.DevicesByOwner(ctx, "user-1")
		must(t, err)
		checkIDs(t, "DevicesByOwner", list, wantUser...)
		list, err = s.DevicesByCustomer(ctx, "customer-1")
		must(t, err)
		checkIDs(t, "DevicesByCustomer", list, wantCustomer...)
		list, err = s.DevicesByOwner(ctx, "")
		must(t, err)
		checkIDs(t, "DevicesByOwner(\"\")", list)
		list, err = s.DevicesByCustomer(ctx, "")
		must(t, err)
		checkIDs(t, "DevicesByCustomer(\"\")", list)
		list, err = s.DevicesByOwner(ctx, "nobody")
		must(t, err)
		checkIDs(t, "DevicesByOwner(nobody)", list)
	}},
	{"ProductFilterSortPage", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		p1, p2, p3, p4, p5 := devID(0xa1), devID(0xa2), devID(0xb3), devID(0xb4), devID(0xc5)
		for _, d := range []struct {
			id          string
			name        string
			handshake   time.Duration // 0: never
			version     int
			quarantined bool
		}{
			{p1, "Alpha_1", time.Hour, 3, false},
			{p2, "alpha%2", 2 * time.Hour, 1, true},
			{p3, "Beta", 0, 0, false},
			{p4, "", 3 * time.Hour, 2, false},
			{p5, "gamma", 0, 0, true},
		} {
			_, err := s.ProvisionDevice(ctx, d.id, store.KeyRSA, testKey(1), 10001)
			must(t, err)
			if d.handshake != 0 {
				_, err := s.SetDeviceOnline(ctx, d.id, store.DeviceSession{
					Node: "n", SessionID: "s", At: base.Add(d.handshake), ProductVersion: d.version,
				})
				must(t, err)
			}
			must(t, editDevice(t, s, d.id, func(dev *store.Device) { dev.Name, dev.Quarantined = d.name, d.quarantined }))
		}
		// Elsewhere: another product (its ID contains "a"), and no product.
		_, err := s.ProvisionDevice(ctx, devID(0xa9), store.KeyRSA, testKey(1), 10002)
		must(t, err)
		addDevice(t, s, devID(0xaa))

		for _, tc := range []struct {
			name  string
			f     store.DeviceFilter
			want  []string
			total int
		}{
			{"default", store.DeviceFilter{}, []string{p4, p2, p1, p3, p5}, 5},
			{"last connection ascending", store.DeviceFilter{Ascending: true}, []string{p1, p2, p4, p3, p5}, 5},
			{"ID descending", store.DeviceFilter{Sort: store.SortByID}, []string{p5, p4, p3, p2, p1}, 5},
			{"ID ascending", store.DeviceFilter{Sort: store.SortByID, Ascending: true}, []string{p1, p2, p3, p4, p5}, 5},
			{"firmware descending", store.DeviceFilter{Sort: store.SortByFirmwareVersion}, []string{p1, p4, p2, p3, p5}, 5},
			{"firmware ascending", store.DeviceFilter{Sort: store.SortByFirmwareVersion, Ascending: true}, []string{p3, p5, p2, p4, p1}, 5},
			{"ID contains, any case", store.DeviceFilter{IDContains: "A", Sort: store.SortByID, Ascending: true}, []string{p1, p2}, 2},
			{"ID contains b", store.DeviceFilter{IDContains: "0b"}, []string{p4, p3}, 2},
			{"name contains, any case", store.DeviceFilter{NameContains: "ALPHA"}, []string{p2, p1}, 2},
			{"name contains %", store.DeviceFilter{NameContains: "%"}, []string{p2}, 1},
			{"name contains _", store.DeviceFilter{NameContains: "_"}, []string{p1}, 1},
			{"name contains backslash", store.DeviceFilter{NameContains: `\`}, nil, 0},
			{"no name matches", store.DeviceFilter{NameContains: "delta"}, nil, 0},
			{"quarantined", store.DeviceFilter{Quarantined: boolPtr(true)}, []string{p2, p5}, 2},
			{"not quarantined", store.DeviceFilter{Quarantined: boolPtr(false)}, []string{p4, p1, p3}, 3},
			{"page 1", store.DeviceFilter{Page: store.Page{Number: 1, Size: 2}}, []string{p4, p2}, 5},
			{"page 2", store.DeviceFilter{Page: store.Page{Number: 2, Size: 2}}, []string{p1, p3}, 5},
			{"page 3", store.DeviceFilter{Page: store.Page{Number: 3, Size: 2}}, []string{p5}, 5},
			{"page 4", store.DeviceFilter{Page: store.Page{Number: 4, Size: 2}}, nil, 5},
			{"page 0 is the first", store.DeviceFilter{Page: store.Page{Number: 0, Size: 3}}, []string{p4, p2, p1}, 5},
			{"filtered page", store.DeviceFilter{Quarantined: boolPtr(true), Page: store.Page{Number: 2, Size: 1}}, []string{p5}, 2},
			{"everything combined", store.DeviceFilter{IDContains: "a", NameContains: "alpha", Quarantined: boolPtr(false)}, []string{p1}, 1},
		} {
			got, total, err := s.DevicesByProduct(ctx, 10001, tc.f)
			must(t, err)
			checkIDs(t, tc.name, got, tc.want...)
			if total != tc.total {
				t.Errorf("%s: total = %d; want %d", tc.name, total, tc.total)
			}
		}
		got, total, err := s.DevicesByProduct(ctx, 10009, store.DeviceFilter{})
		must(t, err)
		if len(got) != 0 || total != 0 {
			t.Errorf("DevicesByProduct(empty product) = %d devices, total %d; want none", len(got), total)
		}
	}},
	{"OnlineOfflineSessions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		got, err := s.SetDeviceOnline(ctx, d.ID, store.DeviceSession{
			Node: "node-1", SessionID: "s1", IP: "198.51.100.1", At: base.Add(time.Minute),
			PlatformID: 6, ProductVersion: 2, SystemModuleVersion: 3302,
		})
		must(t, err)
		want := *d
		want.Online, want.Node, want.SessionID, want.LastIP = true, "node-1", "s1", "198.51.100.1"
		want.LastHandshakeAt, want.LastHeard = ptr(at(time.Minute)), ptr(at(time.Minute))
		want.PlatformID, want.ProductVersion, want.SystemModuleVersion = 6, 2, 3302
		checkEqual(t, "SetDeviceOnline's result", got, &want)
		checkEqual(t, "online", getDevice(t, s, d.ID), &want)

		applied, err := s.SetDeviceOffline(ctx, d.ID, "s1", base.Add(3*time.Minute))
		must(t, err)
		if !applied {
			t.Error("SetDeviceOffline(current session) did not apply")
		}
		want.Online, want.Node, want.SessionID, want.LastHeard = false, "", "", ptr(at(3*time.Minute))
		checkEqual(t, "offline", getDevice(t, s, d.ID), &want)
		applied, err = s.SetDeviceOffline(ctx, d.ID, "s1", base.Add(4*time.Minute))
		must(t, err)
		if applied {
			t.Error("SetDeviceOffline applied twice")
		}
		checkEqual(t, "offline twice", getDevice(t, s, d.ID), &want)

		// A second connection replaces the first before the first notices.
		goOnline(t, s, d.ID, "node-1", "s2", 4*time.Minute)
		goOnline(t, s, d.ID, "node-2", "s3", 5*time.Minute)
		applied, err = s.SetDeviceOffline(ctx, d.ID, "s2", base.Add(6*time.Minute))
		must(t, err)
		if applied {
			t.Error("SetDeviceOffline(replaced session) applied")
		}
		got = getDevice(t, s, d.ID)
		if !got.Online || got.Node != "node-2" || got.SessionID != "s3" || !got.LastHeard.Equal(at(5*time.Minute)) {
			t.Errorf("after the replaced session ended: online %v node %q session %q heard %v; want the new session untouched",
				got.Online, got.Node, got.SessionID, got.LastHeard)
		}
		// The current session ends with an older time: LastHeard stays.
		applied, err = s.SetDeviceOffline(ctx, d.ID, "s3", base.Add(4*time.Minute))
		must(t, err)
		if !applied {
			t.Error("SetDeviceOffline(s3) did not apply")
		}
		got = getDevice(t, s, d.ID)
		if got.Online || got.SessionID != "" || !got.LastHeard.Equal(at(5*time.Minute)) {
			t.Errorf("after s3 ended: online %v session %q heard %v; want offline, heard %v", got.Online, got.SessionID, got.LastHeard, at(5*time.Minute))
		}
		// A device that is offline has no session to match "".
		applied, err = s.SetDeviceOffline(ctx, d.ID, "", base.Add(time.Hour))
		if applied || err != nil {
			t.Errorf("SetDeviceOffline(empty session) = %v, %v; want false, nil", applied, err)
		}

		// The Hello's product moves the device; none keeps it. A zero At is
		// now.
		got, err = s.SetDeviceOnline(ctx, d.ID, store.DeviceSession{Node: "n", SessionID: "s4", PlatformID: 12, ProductID: 10001, At: base.Add(time.Hour)})
		must(t, err)
		if got.ProductID != 10001 || got.PlatformID != 12 {
			t.Errorf("product %d platform %d; want 10001 12", got.ProductID, got.PlatformID)
		}
		before := time.Now()
		got, err = s.SetDeviceOnline(ctx, d.ID, store.DeviceSession{Node: "n", SessionID: "s5", PlatformID: 0})
		must(t, err)
		if got.ProductID != 10001 || got.PlatformID != 0 {
			t.Errorf("product %d platform %d; want 10001 kept, platform 0 (Core)", got.ProductID, got.PlatformID)
		}
		checkStamped(t, "LastHandshakeAt (zero At)", *got.LastHandshakeAt, before, time.Now())
		checkStamped(t, "LastHeard (zero At)", *got.LastHeard, before, time.Now())
		if !got.UpdatedAt.Equal(d.UpdatedAt) {
			t.Errorf("UpdatedAt = %v; want %v: connection state is not an edit", got.UpdatedAt, d.UpdatedAt)
		}
	}},
	{"ConcurrentSessions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		const n = 12
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, err := s.SetDeviceOnline(ctx, d.ID, store.DeviceSession{Node: "node", SessionID: fmt.Sprintf("s%d", i), At: base})
				if err != nil {
					t.Errorf("session %d online: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		holder := getDevice(t, s, d.ID).SessionID
		// Every session ends at once; only the holder's end applies.
		var (
			mu      sync.Mutex
			applied []string
		)
		start = make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				sid := fmt.Sprintf("s%d", i)
				ok, err := s.SetDeviceOffline(ctx, d.ID, sid, base.Add(time.Minute))
				if err != nil {
					t.Errorf("session %d offline: %v", i, err)
				}
				if ok {
					mu.Lock()
					applied = append(applied, sid)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(applied) != 1 || applied[0] != holder {
			t.Errorf("offline applied for %q; want only the holder %q", applied, holder)
		}
		if got := getDevice(t, s, d.ID); got.Online {
			t.Error("device still online after every session ended")
		}
	}},
	{"Describe", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		want := *d
		for _, step := range []struct {
			name string
			desc store.Describe
			set  func(*store.Device)
		}{
			{"application", store.Describe{
				Parts: store.DescribeApplication, Functions: []string{"led"}, Variables: map[string]string{"temp": "double"},
				SystemVersion: "ignored", Status: store.DeviceStatusSafeMode,
			}, func(d *store.Device) {
				d.Functions, d.Variables = []string{"led"}, map[string]string{"temp": "double"}
			}},
			{"system", store.Describe{
				Parts: store.DescribeSystem, SystemVersion: "3.3.1", Status: store.DeviceStatusSafeMode,
				Functions: []string{"ignored"},
			}, func(d *store.Device) { d.SystemVersion, d.Status = "3.3.1", store.DeviceStatusSafeMode }},
			{"system, empty status", store.Describe{Parts: store.DescribeSystem, SystemVersion: "6.2.0"},
				func(d *store.Device) { d.SystemVersion, d.Status = "6.2.0", store.DeviceStatusNormal }},
			{"both", store.Describe{
				Parts:     store.DescribeSystem | store.DescribeApplication,
				Functions: []string{"a", "b"}, Variables: map[string]string{"x": "int32", "y": "string"},
				SystemVersion: "5.8.0", Status: store.DeviceStatusNormal,
			}, func(d *store.Device) {
				d.Functions, d.Variables = []string{"a", "b"}, map[string]string{"x": "int32", "y": "string"}
				d.SystemVersion = "5.8.0"
			}},
			{"application, empty", store.Describe{Parts: store.DescribeApplication, Functions: []string{}, Variables: map[string]string{}},
				func(d *store.Device) { d.Functions, d.Variables = nil, nil }},
			{"no part", store.Describe{Functions: []string{"ignored"}, SystemVersion: "ignored"}, func(*store.Device) {}},
		} {
			must(t, s.SetDeviceDescribe(ctx, d.ID, step.desc))
			step.set(&want)
			checkEqual(t, step.name, getDevice(t, s, d.ID), &want)
		}
	}},
	{"SubscriptionsAndUpdateFlag", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		d := addDevice(t, s, devID(1))
		subs := []store.Subscription{{Prefix: "spark", Scope: store.ScopeMine}, {Prefix: "particle", Scope: store.ScopeMine}}
		must(t, s.SetDeviceSubscriptions(ctx, d.ID, subs))
		// Kept across connections.
		goOnline(t, s, d.ID, "n", "s1", time.Minute)
		_, err := s.SetDeviceOffline(ctx, d.ID, "s1", base.Add(2*time.Minute))
		must(t, err)
		goOnline(t, s, d.ID, "n", "s2", 3*time.Minute)
		if got := getDevice(t, s, d.ID).Subscriptions; !slices.Equal(got, subs) {
			t.Errorf("subscriptions after reconnecting = %+v; want %+v", got, subs)
		}
		subs = append(subs, store.Subscription{Prefix: "temp", Scope: store.ScopeDevicePrefix + devID(2)})
		must(t, s.SetDeviceSubscriptions(ctx, d.ID, subs))
		if got := getDevice(t, s, d.ID).Subscriptions; !slices.Equal(got, subs) {
			t.Errorf("subscriptions after replacing = %+v; want %+v", got, subs)
		}
		must(t, s.SetDeviceSubscriptions(ctx, d.ID, nil))
		if got := getDevice(t, s, d.ID).Subscriptions; got != nil {
			t.Errorf("subscriptions after clearing = %+v; want nil", got)
		}

		for _, enabled := range []bool{false, true, false} {
			must(t, s.SetFirmwareUpdatesEnabled(ctx, d.ID, enabled))
			if got := getDevice(t, s, d.ID).FirmwareUpdatesEnabled; got != enabled {
				t.Errorf("FirmwareUpdatesEnabled = %v; want %v", got, enabled)
			}
		}
		if got := getDevice(t, s, d.ID).UpdatedAt; !got.Equal(d.UpdatedAt) {
			t.Errorf("UpdatedAt = %v; want %v unchanged", got, d.UpdatedAt)
		}
	}},
	{"TouchDevices", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 40
		heard := map[string]time.Time{}
		for i := range n {
			id := devID(i)
			addDevice(t, s, id)
			heard[id] = base.Add(30*time.Minute + time.Duration(i)*time.Second)
		}
		// Device 0 was heard later than the batch says; device 1 earlier.
		goOnline(t, s, devID(0), "n", "s", time.Hour)
		goOnline(t, s, devID(1), "n", "s", time.Minute)
		heard[devID(0xfff)] = base // unknown: ignored
		must(t, s.TouchDevices(ctx, heard))
		for i := range n {
			want := at(30*time.Minute + time.Duration(i)*time.Second)
			if i == 0 {
				want = at(time.Hour)
			}
			got := getDevice(t, s, devID(i)).LastHeard
			if got == nil || !got.Equal(want) {
				t.Errorf("device %d LastHeard = %v; want %v", i, fmtTimePtr(got), want)
			}
		}
		_, err := s.DeviceByID(ctx, devID(0xfff))
		wantErr(t, "DeviceByID(touched unknown)", err, store.ErrNotFound)
		must(t, s.TouchDevices(ctx, nil))
		must(t, s.TouchDevices(ctx, map[string]time.Time{}))
	}},
	{"ResetNode", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i := 1; i <= 5; i++ {
			addDevice(t, s, devID(i))
		}
		goOnline(t, s, devID(1), "node-a", "s1", time.Minute)
		goOnline(t, s, devID(2), "node-a", "s2", 2*time.Minute)
		goOnline(t, s, devID(3), "node-a", "s3", 10*time.Minute) // after the restart
		goOnline(t, s, devID(4), "node-b", "s4", time.Minute)
		before1, before2 := getDevice(t, s, devID(1)), getDevice(t, s, devID(2))

		ids, err := s.ResetNode(ctx, "node-a", base.Add(5*time.Minute))
		must(t, err)
		if want := []string{devID(1), devID(2)}; !slices.Equal(ids, want) {
			t.Errorf("ResetNode = %q; want %q", ids, want)
		}
		for _, b := range []*store.Device{before1, before2} {
			want := *b
			want.Online, want.Node, want.SessionID = false, "", ""
			checkEqual(t, "reset device", getDevice(t, s, b.ID), &want)
		}
		for id, node := range map[string]string{devID(3): "node-a", devID(4): "node-b"} {
			if got := getDevice(t, s, id); !got.Online || got.Node != node {
				t.Errorf("device %s: online %v node %q; want online on %s", id, got.Online, got.Node, node)
			}
		}
		ids, err = s.ResetNode(ctx, "node-a", base.Add(5*time.Minute))
		must(t, err)
		if len(ids) != 0 {
			t.Errorf("ResetNode again = %q; want none", ids)
		}
		ids, err = s.ResetNode(ctx, "", base.Add(time.Hour))
		must(t, err)
		if len(ids) != 0 {
			t.Errorf("ResetNode(\"\") = %q; want none", ids)
		}
	}},
	{"ResetNodeBatch", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 7
		for i := 1; i <= n; i++ {
			addDevice(t, s, devID(i))
			goOnline(t, s, devID(i), "node-a", fmt.Sprintf("s%d", i), time.Minute)
		}
		addDevice(t, s, devID(20))
		goOnline(t, s, devID(20), "node-a", "later", 10*time.Minute) // after the restart
		addDevice(t, s, devID(21))
		goOnline(t, s, devID(21), "node-b", "other", time.Minute)
		var all []string
		for chunk := 0; ; chunk++ {
			ids, err := s.ResetNodeBatch(ctx, "node-a", base.Add(5*time.Minute), 3)
			must(t, err)
			if len(ids) > 3 || !slices.IsSorted(ids) {
				t.Fatalf("chunk %d: %q; want at most 3, sorted", chunk, ids)
			}
			all = append(all, ids...)
			if len(ids) < 3 {
				break
			}
			if chunk > n {
				t.Fatal("ResetNodeBatch does not run out")
			}
		}
		slices.Sort(all)
		var want []string
		for i := 1; i <= n; i++ {
			want = append(want, devID(i))
			if d := getDevice(t, s, devID(i)); d.Online || d.Node != "" || d.SessionID != "" {
				t.Errorf("device %d: online %v node %q session %q; want reset", i, d.Online, d.Node, d.SessionID)
			}
		}
		if !slices.Equal(all, want) {
			t.Errorf("reset in chunks %q; want %q", all, want)
		}
		for id, node := range map[string]string{devID(20): "node-a", devID(21): "node-b"} {
			if got := getDevice(t, s, id); !got.Online || got.Node != node {
				t.Errorf("device %s: online %v node %q; want online on %s", id, got.Online, got.Node, node)
			}
		}
		for _, limit := range []int{0, -1} {
			ids, err := s.ResetNodeBatch(ctx, "node-b", base.Add(time.Hour), limit)
			must(t, err)
			if len(ids) != 0 {
				t.Errorf("limit %d reset %q", limit, ids)
			}
		}
		ids, err := s.ResetNodeBatch(ctx, "", base.Add(time.Hour), 10)
		must(t, err)
		if len(ids) != 0 {
			t.Errorf("ResetNodeBatch(\"\") = %q; want none", ids)
		}
	}},
	{"SetDevicesOffline", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i := 1; i <= 6; i++ {
			addDevice(t, s, devID(i))
			goOnline(t, s, devID(i), "node-a", fmt.Sprintf("s%d", i), time.Minute)
		}
		before := getDevice(t, s, devID(1))
		applied, err := s.SetDevicesOffline(ctx, nil)
		must(t, err)
		if len(applied) != 0 {
			t.Errorf("empty batch applied %v", applied)
		}
		offs := []store.DeviceOffline{
			{ID: devID(1), SessionID: "s1", At: base.Add(30 * time.Minute)}, // later than stored
			{ID: devID(2), SessionID: "s2", At: base},                       // earlier: keeps the stored time
			{ID: devID(3), SessionID: "old"},                                // replaced session
			{ID: devID(0xfff), SessionID: "s9", At: base.Add(time.Hour)},    // unknown device
			{ID: devID(4), SessionID: "", At: base.Add(time.Hour)},          // no session
			{ID: devID(5), SessionID: "s5"},                                 // zero time: now
		}
		applied, err = s.SetDevicesOffline(ctx, offs)
		must(t, err)
		if want := []bool{true, true, false, false, false, true}; !slices.Equal(applied, want) {
			t.Errorf("applied %v; want %v", applied, want)
		}
		want := *before
		want.Online, want.Node, want.SessionID = false, "", ""
		heard := at(30 * time.Minute)
		want.LastHeard = &heard
		checkEqual(t, "device 1 offline", getDevice(t, s, devID(1)), &want)
		if d := getDevice(t, s, devID(2)); d.Online || d.LastHeard == nil || !d.LastHeard.Equal(at(time.Minute)) {
			t.Errorf("device 2: online %v last heard %v; want offline, last heard %v", d.Online, fmtTimePtr(d.LastHeard), at(time.Minute))
		}
		for _, i := range []int{3, 4, 6} {
			if d := getDevice(t, s, devID(i)); !d.Online || d.SessionID != fmt.Sprintf("s%d", i) {
				t.Errorf("device %d: online %v session %q; want still online", i, d.Online, d.SessionID)
			}
		}
		if d := getDevice(t, s, devID(5)); d.Online || d.LastHeard == nil || d.LastHeard.Before(at(time.Minute)) {
			t.Errorf("device 5: online %v last heard %v; want offline, heard now", d.Online, fmtTimePtr(d.LastHeard))
		}
		_, err = s.DeviceByID(ctx, devID(0xfff))
		wantErr(t, "DeviceByID(unknown set offline)", err, store.ErrNotFound)
		// Again: nothing applies, the sessions are gone.
		applied, err = s.SetDevicesOffline(ctx, offs[:2])
		must(t, err)
		if slices.Contains(applied, true) {
			t.Errorf("second offline applied %v", applied)
		}
		// A chunk of many.
		var many []store.DeviceOffline
		for i := 100; i < 1100; i++ {
			addDevice(t, s, devID(i))
			goOnline(t, s, devID(i), "node-a", fmt.Sprintf("m%d", i), time.Minute)
			many = append(many, store.DeviceOffline{ID: devID(i), SessionID: fmt.Sprintf("m%d", i), At: base.Add(time.Hour)})
		}
		applied, err = s.SetDevicesOffline(ctx, many)
		must(t, err)
		for i, ok := range applied {
			if !ok {
				t.Fatalf("device %d of 1000 not applied", i)
			}
		}
		if d := getDevice(t, s, devID(777)); d.Online || d.LastHeard == nil || !d.LastHeard.Equal(at(time.Hour)) {
			t.Errorf("device 777: online %v last heard %v", d.Online, fmtTimePtr(d.LastHeard))
		}
	}},
	{"DeleteAndCount", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		count := func(want int) {
			t.Helper()
			n, err := s.CountDevices(ctx)
			must(t, err)
			if n != want {
				t.Errorf("CountDevices = %d; want %d", n, want)
			}
		}
		count(0)
		for i := 1; i <= 3; i++ {
			addDevice(t, s, devID(i))
		}
		must(t, editDevice(t, s, devID(2), func(d *store.Device) { d.Name, d.OwnerID = "gone", "user" }))
		count(3)
		must(t, s.DeleteDevice(ctx, devID(2)))
		count(2)
		_, err := s.DeviceByID(ctx, devID(2))
		wantErr(t, "DeviceByID(deleted)", err, store.ErrNotFound)
		wantErr(t, "DeleteDevice(again)", s.DeleteDevice(ctx, devID(2)), store.ErrNotFound)
		_, err = s.DeviceByOwnerName(ctx, "user", "gone")
		wantErr(t, "DeviceByOwnerName(deleted)", err, store.ErrNotFound)
		// Provisioning it again starts afresh.
		d := addDevice(t, s, devID(2))
		if d.Name != "" || d.OwnerID != "" {
			t.Errorf("re-provisioned device: name %q owner %q; want a fresh device", d.Name, d.OwnerID)
		}
		count(3)
	}},
	{"OwnerDeletionUnclaims", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		gone, kept := addUser(t, s, "gone@example.com"), addUser(t, s, "kept@example.com")
		goneC, keptC := addCustomer(t, s, 10001, "gone-c@example.com"), addCustomer(t, s, 10001, "kept-c@example.com")
		owners := map[string][2]string{
			devID(1): {gone.ID, ""}, devID(2): {kept.ID, ""},
			devID(3): {"", goneC.ID}, devID(4): {"", keptC.ID},
		}
		for id, o := range owners {
			_, err := s.ProvisionDevice(ctx, id, store.KeyRSA, testKey(1), 10001)
			must(t, err)
			_, err = s.ClaimDevice(ctx, id, o[0], o[1])
			must(t, err)
			must(t, editDevice(t, s, id, func(d *store.Device) { d.Name, d.Notes = "lamp", "notes" }))
		}
		for hash, c := range map[string]store.ClaimCode{
			"cc-gone":   {UserID: gone.ID},
			"cc-kept":   {UserID: kept.ID},
			"cc-gone-c": {CustomerID: goneC.ID, ProductID: 10001},
			"cc-kept-c": {CustomerID: keptC.ID, ProductID: 10001},
		} {
			c.Hash, c.ExpiresAt = hash, time.Now().Add(time.Hour)
			must(t, s.CreateClaimCode(ctx, &c))
		}

		before := time.Now()
		must(t, s.DeleteUser(ctx, gone.ID))
		must(t, s.DeleteCustomer(ctx, goneC.ID))
		after := time.Now()

		for id, wantOwner := range map[string][2]string{
			devID(1): {"", ""}, devID(2): {kept.ID, ""}, devID(3): {"", ""}, devID(4): {"", keptC.ID},
		} {
			d := getDevice(t, s, id)
			if d.OwnerID != wantOwner[0] || d.CustomerID != wantOwner[1] {
				t.Errorf("device %s: owner %q customer %q; want %q %q", id, d.OwnerID, d.CustomerID, wantOwner[0], wantOwner[1])
			}
			// Unclaimed devices keep their name, notes and product.
			if d.Name != "lamp" || d.Notes != "notes" || d.ProductID != 10001 {
				t.Errorf("device %s: name %q notes %q product %d; want kept", id, d.Name, d.Notes, d.ProductID)
			}
			if wantOwner == [2]string{} {
				checkStamped(t, "UpdatedAt of unclaimed "+id, d.UpdatedAt, before, after)
			}
		}
		list, err := s.DevicesByOwner(ctx, gone.ID)
		must(t, err)
		checkIDs(t, "DevicesByOwner(deleted user)", list)
		list, err = s.DevicesByCustomer(ctx, goneC.ID)
		must(t, err)
		checkIDs(t, "DevicesByCustomer(deleted customer)", list)
		checkPresence(t, "claim code", claimCodeExists, s, map[string]bool{
			"cc-gone": false, "cc-kept": true, "cc-gone-c": false, "cc-kept-c": true,
		})
	}},
}

// durPtr returns a pointer to d.
func durPtr(d time.Duration) *time.Duration { return &d }
