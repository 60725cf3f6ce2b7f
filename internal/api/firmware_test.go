package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/firmware"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol/module"
)

// fakeUpdater records what the API asks of the firmware service.
type fakeUpdater struct {
	mu       sync.Mutex
	flashes  []string // "device hash version"
	changed  []string // devices re-checked
	products []int64
	err      error // returned by Flash
}

func (f *fakeUpdater) Flash(_ context.Context, deviceID string, _ int64, hash string, version int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.flashes = append(f.flashes, deviceID+" "+hash+" "+itoa(int64(version)))
	return nil
}

func (f *fakeUpdater) ProductChanged(_ context.Context, productID int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.products = append(f.products, productID)
	return 3, nil
}

func (f *fakeUpdater) DeviceChanged(_ context.Context, deviceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed = append(f.changed, deviceID)
	return nil
}

// firmwareEnv is an API with a fake updater, a user with an online Argon
// (system module 3302) and a product of Argons with an online device.
type firmwareEnv struct {
	env     *apitest.Env
	h       http.Handler
	up      *fakeUpdater
	token   string
	product *store.Product
	device  string // the user's
	pdevice string // the product's
	offline string // the user's, offline
}

func newFirmwareEnv(t *testing.T) *firmwareEnv {
	t.Helper()
	env := apitest.New(t, apitest.Options{InMemory: true})
	up := &fakeUpdater{}
	h := api.New(api.Config{Now: env.Clock.Now, MaxFirmwareBytes: 64 << 10},
		api.Deps{Store: env.Store, Auth: env.Auth, Devices: apitest.NewFakeDevices(), Firmware: up}, nil)
	u := env.CreateUser("owner@example.com", "password-1")
	p := env.CreateProduct(u, "argons")
	fe := &firmwareEnv{env: env, h: h, up: up, token: env.UserToken(u), product: p,
		device: "0a0000000000000000000001", pdevice: "0a0000000000000000000002", offline: "0a0000000000000000000003"}
	ctx := context.Background()
	for _, d := range []struct {
		id      string
		product int64
		online  bool
	}{{fe.device, 0, true}, {fe.pdevice, p.ID, true}, {fe.offline, 0, false}} {
		if _, err := env.Store.ProvisionDevice(ctx, d.id, "", nil, d.product); err != nil {
			t.Fatal(err)
		}
		if d.product == 0 {
			if _, err := env.Store.ClaimDevice(ctx, d.id, u.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if d.online {
			if _, err := env.Store.SetDeviceOnline(ctx, d.id, store.DeviceSession{Node: "n", SessionID: "s" + d.id,
				PlatformID: 12, ProductID: d.product, ProductVersion: 1, SystemModuleVersion: 3302}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := env.Store.SetDeviceOnline(ctx, d.id, store.DeviceSession{Node: "n", SessionID: "x", PlatformID: 12}); err != nil {
			t.Fatal(err)
		} else if _, err := env.Store.SetDeviceOffline(ctx, d.id, "x", env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return fe
}

// userApp builds a user part for platform 12 needing system 3302, of
// product/version when product is non-zero.
func userApp(platform uint16, product int64, version uint16) []byte {
	s := module.Spec{StartAddress: 0xB4000, PlatformID: platform, Function: module.FunctionUser, Index: 1,
		Dependencies: []module.Dependency{{Function: module.FunctionSystem, Index: 1, Version: 3302}},
		Code:         bytes.Repeat([]byte{0x5a}, 4000)}
	if product != 0 {
		s.Product, s.ProductID, s.ProductVersion = true, uint16(product), version
	}
	return module.Build(s)
}

// send makes a request with a multipart body of fields and, when bin is
// not nil, the file "file".
func (fe *firmwareEnv) send(t *testing.T, method, path string, fields map[string]string, bin []byte) (int, map[string]any, []byte) {
	t.Helper()
	var body bytes.Buffer
	ct := ""
	if fields != nil || bin != nil {
		mw := multipart.NewWriter(&body)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if bin != nil {
			fw, _ := mw.CreateFormFile("file", "firmware.bin")
			fw.Write(bin)
		}
		mw.Close()
		ct = mw.FormDataContentType()
	}
	return fe.do(t, method, path, ct, body.Bytes())
}

func (fe *firmwareEnv) do(t *testing.T, method, path, ct string, body []byte) (int, map[string]any, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bearer "+fe.token)
	rec := httptest.NewRecorder()
	fe.h.ServeHTTP(rec, req)
	var m map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		json.Unmarshal(rec.Body.Bytes(), &m)
	}
	return rec.Code, m, rec.Body.Bytes()
}

func (fe *firmwareEnv) json(t *testing.T, method, path string, v any) (int, map[string]any, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	return fe.do(t, method, path, "application/json", b)
}

func TestFlashDevice(t *testing.T) {
	fe := newFirmwareEnv(t)
	good := userApp(12, 0, 0)
	sum := sha256.Sum256(good)
	badCRC := append([]byte(nil), good...)
	badCRC[200] ^= 1
	tests := []struct {
		name     string
		device   string
		fields   map[string]string
		bin      []byte
		err      error
		status   int
		contains string
	}{
		{"wrong platform", fe.device, nil, userApp(13, 0, 0), nil, 400, "platform 13"},
		{"bad CRC", fe.device, nil, badCRC, nil, 400, "CRC-32"},
		{"truncated", fe.device, nil, good[:len(good)/2], nil, 400, "truncated"},
		{"not a module", fe.device, nil, []byte("int main() { return 0; }"), nil, 400, "Invalid firmware binary"},
		{"too large", fe.device, nil, make([]byte, 65<<10), nil, 413, "too large"},
		{"source, not a binary", fe.device, map[string]string{"build_target_version": "6.2.0"}, nil, nil, 400, "does not compile"},
		{"offline", fe.offline, nil, good, nil, 400, "Device is offline"},
		{"update running", fe.device, nil, good, firmware.ErrInProgress, 409, "in progress"},
		{"device refuses", fe.device, nil, good, firmware.ErrRefused, 400, "refused"},
		{"device gone", fe.device, nil, good, bus.ErrDeviceOffline, 400, "Device is offline"},
		{"started", fe.device, map[string]string{"latest": "true"}, good, nil, 200, "Update started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe.up.err = tc.err
			code, m, body := fe.send(t, "PUT", "/v1/devices/"+tc.device, tc.fields, tc.bin)
			if code != tc.status || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("status %d %s; want %d containing %q", code, body, tc.status, tc.contains)
			}
			if code == 200 && (m["id"] != tc.device || m["status"] != "Update started") {
				t.Errorf("answer %v", m)
			}
		})
	}
	want := fe.device + " " + hex.EncodeToString(sum[:]) + " 0"
	if len(fe.up.flashes) != 1 || fe.up.flashes[0] != want {
		t.Errorf("flashes = %q; want [%q]", fe.up.flashes, want)
	}
	stored, err := fe.env.Store.FirmwareBinary(context.Background(), hex.EncodeToString(sum[:]))
	if err != nil || !bytes.Equal(stored, good) {
		t.Errorf("stored binary: %d bytes, %v", len(stored), err)
	}

	// The product route flashes a product binary with its version.
	fe.up.err = nil
	pbin := userApp(12, fe.product.ID, 5)
	code, _, body := fe.send(t, "PUT", "/v1/products/"+itoa(fe.product.ID)+"/devices/"+fe.pdevice, nil, pbin)
	if code != 200 {
		t.Fatalf("product flash: %d %s", code, body)
	}
	if last := fe.up.flashes[len(fe.up.flashes)-1]; !strings.HasSuffix(last, " 5") {
		t.Errorf("product flash recorded %q; want version 5", last)
	}
}

func TestProductFirmwareAPI(t *testing.T) {
	fe := newFirmwareEnv(t)
	base := "/v1/products/" + itoa(fe.product.ID) + "/firmware"
	v2 := userApp(12, fe.product.ID, 2)
	upload := func(version string, bin []byte) (int, map[string]any, []byte) {
		return fe.send(t, "POST", base, map[string]string{"version": version, "title": "v" + version, "description": "d"}, bin)
	}
	for _, tc := range []struct {
		name, version string
		bin           []byte
		contains      string
	}{
		{"other product", "2", userApp(12, fe.product.ID+1, 2), "is for product"},
		{"other version", "3", v2, "is version 2"},
		{"no product data", "2", userApp(12, 0, 0), "names no product"},
		{"other platform", "2", userApp(13, fe.product.ID, 2), "platform 13"},
		{"bad version", "x", v2, "version must be"},
		{"no file", "2", nil, "multipart file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := upload(tc.version, tc.bin)
			if code != 400 || !strings.Contains(string(body), tc.contains) {
				t.Errorf("upload: %d %s; want 400 containing %q", code, body, tc.contains)
			}
		})
	}
	code, m, body := upload("2", v2)
	if code != 201 || m["version"] != float64(2) || m["title"] != "v2" || m["size"] != float64(len(v2)) || m["current"] != false {
		t.Fatalf("upload: %d %s", code, body)
	}
	if code, _, body := upload("2", v2); code != 400 || !strings.Contains(string(body), "already exists") {
		t.Errorf("duplicate upload: %d %s", code, body)
	}
	code, _, body = fe.do(t, "GET", base, "", nil)
	var list []map[string]any
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list) != 1 || list[0]["version"] != float64(2) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, m, body := fe.json(t, "PUT", base+"/2", map[string]string{"title": "two"}); code != 200 || m["title"] != "two" || m["description"] != "d" {
		t.Errorf("update: %d %s", code, body)
	}
	if code, _, _ := fe.do(t, "GET", base+"/9", "", nil); code != 404 {
		t.Errorf("get absent: %d", code)
	}
	code, _, body = fe.do(t, "GET", base+"/2/binary", "", nil)
	if code != 200 || !bytes.Equal(body, v2) {
		t.Errorf("download: %d, %d bytes", code, len(body))
	}
	if code, _, body := fe.json(t, "PUT", base+"/release", map[string]any{"version": 2, "groups": []string{"beta"}}); code != 400 || !strings.Contains(string(body), "groups") {
		t.Errorf("release to groups: %d %s", code, body)
	}
	code, m, body = fe.json(t, "PUT", base+"/release", map[string]any{"version": 2, "product_default": true})
	if code != 200 || m["ok"] != true || m["product_default"] != true || m["devices_queued"] != float64(3) {
		t.Fatalf("release: %d %s", code, body)
	}
	if len(fe.up.products) != 1 || fe.up.products[0] != fe.product.ID {
		t.Errorf("ProductChanged calls = %v", fe.up.products)
	}
	if code, m, _ := fe.do(t, "GET", base+"/2", "", nil); code != 200 || m["current"] != true {
		t.Errorf("get after release: %v", m)
	}
	if code, _, body := fe.do(t, "DELETE", base+"/2", "", nil); code != 400 || !strings.Contains(string(body), "default") {
		t.Errorf("delete released: %d %s", code, body)
	}

	// Lock a product device to version 2 and flash it now; unlock.
	dev := "/v1/products/" + itoa(fe.product.ID) + "/devices/" + fe.pdevice
	if code, m, body := fe.do(t, "GET", dev, "", nil); code != 200 || m["targeted_firmware_release_version"] != float64(2) || m["desired_firmware_version"] != nil {
		t.Errorf("device after release: %d %s", code, body)
	}
	if code, _, body := fe.json(t, "PUT", dev, map[string]any{"desired_firmware_version": 7}); code != 400 || !strings.Contains(string(body), "does not exist") {
		t.Errorf("lock to absent version: %d %s", code, body)
	}
	code, m, body = fe.json(t, "PUT", dev, map[string]any{"desired_firmware_version": 2, "flash": true})
	if code != 200 || m["desired_firmware_version"] != float64(2) {
		t.Fatalf("lock: %d %s", code, body)
	}
	if code, m, body := fe.do(t, "GET", dev, "", nil); code != 200 || m["desired_firmware_version"] != float64(2) {
		t.Errorf("device after lock: %d %s", code, body)
	}
	df, err := fe.env.Store.DeviceFirmware(context.Background(), fe.pdevice)
	if err != nil || df.DesiredVersion == nil || *df.DesiredVersion != 2 {
		t.Errorf("stored lock = %+v, %v", df, err)
	}
	if len(fe.up.changed) != 1 || fe.up.changed[0] != fe.pdevice {
		t.Errorf("DeviceChanged calls = %v", fe.up.changed)
	}
	code, m, body = fe.json(t, "PUT", dev, map[string]any{"desired_firmware_version": nil})
	if code != 200 || m["desired_firmware_version"] != nil {
		t.Fatalf("unlock: %d %s", code, body)
	}
	if df, _ := fe.env.Store.DeviceFirmware(context.Background(), fe.pdevice); df.DesiredVersion != nil {
		t.Errorf("lock after unlock = %v", *df.DesiredVersion)
	}
	// Withdraw the release, then delete the version.
	if code, m, body := fe.json(t, "PUT", base+"/release", map[string]any{"version": 2, "product_default": false}); code != 200 || m["product_default"] != false {
		t.Errorf("withdraw: %d %s", code, body)
	}
	if code, _, body := fe.do(t, "DELETE", base+"/2", "", nil); code != 200 {
		t.Errorf("delete: %d %s", code, body)
	}
	if !errors.Is(func() error {
		_, err := fe.env.Store.ProductFirmware(context.Background(), fe.product.ID, 2)
		return err
	}(), store.ErrNotFound) {
		t.Error("version 2 still stored after delete")
	}
}
