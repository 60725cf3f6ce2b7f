package api_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/storetest"
)

// BenchmarkProductDevicePages measures GET /v1/products/{p}/devices pages
// in a product of 100,000 devices (WICK_BENCH_PRODUCT_DEVICES changes it):
// the first, middle and last pages of 25 and 100, filtered pages (name, ID,
// quarantined), pages right after a change that moves the product's order
// (a handshake, a rename), and, as the
// reference, the same pages counted and sorted by the store per request.
// The paired/ cases alternate the API with a second one that reaches the
// store as before store.ProductDevicePageAccess (the team check,
// store.TeamAccess, in a round trip of its own before the page's) and
// before ProductDevicePageRead.Owners (a read of each owner's account on
// the page), page by page in one loop, so that both see the same load:
// base-p50-ms and base-p99-ms are the second one's. A quarter of the
// devices belong to one of 2,000 customers. It runs on a SQLite file and, when
// WICK_TEST_POSTGRES_URL is set, on a fresh PostgreSQL schema, analyzed
// after the insert. Each reports p50-ms and p99-ms per page.
func BenchmarkProductDevicePages(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("WICK_BENCH_PRODUCT_DEVICES")); err == nil && v > 0 {
		n = v
	}
	b.Run("sqlite", func(b *testing.B) { benchProductPages(b, n, apitest.Options{}) })
	if os.Getenv("WICK_TEST_POSTGRES_URL") != "" {
		b.Run("postgres", func(b *testing.B) { benchProductPages(b, n, apitest.Options{DSN: postgresSchema(b)}) })
	}
}

// postgresSchema creates a schema dropped at the end of the test or
// benchmark and returns a DSN that uses it.
func postgresSchema(b testing.TB) string {
	base := os.Getenv("WICK_TEST_POSTGRES_URL")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	var r [6]byte
	rand.Read(r[:])
	schema := "wick_bench_" + hex.EncodeToString(r[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func benchProductPages(b *testing.B, n int, opts apitest.Options) {
	opts.Config.GlobalRate = 1 << 30 // the benchmark's clock stands still
	env := apitest.New(b, opts)
	owner := env.CreateUser("fleet@example.com", "pw")
	prod := env.CreateProduct(owner, "fleet")
	tok := env.UserToken(owner)
	ctx := context.Background()
	start := time.Now()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One device in 4 belongs to one of 2,000 customers, one in 50 to
	// the owner (the caller): a page shows up to 25 or 100 owners.
	customers := storetest.FleetCustomers(b, env.DB, prod.ID, 2000)
	const chunk = 10000
	for lo := 0; lo < n; lo += chunk {
		devs := make([]store.Device, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			d := storetest.FleetDevice(i, n, prod.ID, customers, owner.ID, base)
			devs = append(devs, d)
		}
		if err := env.DB.InsertDevices(ctx, devs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d devices inserted in %v", n, time.Since(start).Round(time.Millisecond))
	if opts.DSN != "" {
		// The statistics autovacuum would have gathered by now (the test
		// server may run without it): PostgreSQL plans by them.
		if err := env.DB.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
	}
	ref := api.New(api.Config{Now: env.Clock.Now, GlobalRate: 1 << 30}, api.Deps{Store: plainStore{env.DB}, Auth: env.Auth}, nil)
	// apart checks the team (store.TeamAccess) before it reads the page,
	// instead of with it (store.ProductDevicePageAccess), and reads each
	// owner's account apart.
	apart := api.New(api.Config{Now: env.Clock.Now, GlobalRate: 1 << 30},
		api.Deps{Store: pagesApartNoOwners{newPagesApart(env.DB)}, Auth: env.Auth}, nil)
	path := "/v1/products/" + strconv.FormatInt(prod.ID, 10) + "/devices"
	get := func(h http.Handler, q string) {
		r := httptest.NewRequest(http.MethodGet, path+q, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", q, w.Code, w.Body)
		}
	}
	last25, last100 := (n+24)/25, (n+99)/100
	pages := []struct{ name, q string }{
		{"start-25", "?perPage=25"},
		{"middle-25", "?perPage=25&page=" + strconv.Itoa(last25/2)},
		{"end-25", "?perPage=25&page=" + strconv.Itoa(last25)},
		{"start-100", "?perPage=100"},
		{"middle-100", "?perPage=100&page=" + strconv.Itoa(last100/2)},
		{"end-100", "?perPage=100&page=" + strconv.Itoa(last100)},
		{"middle-100-by-id-asc", "?perPage=100&sortAttr=deviceId&sortDir=asc&page=" + strconv.Itoa(last100/2)},
		{"filter-name", "?perPage=25&deviceName=dev-99"},
		{"filter-name-last", "?perPage=25&deviceName=dev-99&page=45"},
		{"filter-name-broad-100", "?perPage=100&deviceName=dev-1&sortAttr=firmwareVersion&page=50"},
		{"filter-id", "?perPage=25&deviceId=ab1"},
		{"filter-quarantined", "?perPage=25&quarantined=true&page=20"},
		{"filter-none-match", "?perPage=25&deviceName=zz"},
	}
	run := func(b *testing.B, each func(), prep func()) {
		var lat []time.Duration
		b.ReportAllocs()
		for b.Loop() {
			if prep != nil {
				b.StopTimer()
				prep()
				b.StartTimer()
			}
			t0 := time.Now()
			each()
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	get(env.Handler, "") // the first page builds the product's order
	get(apart, "")
	// paired alternates env.Handler and apart page by page (each
	// iteration one of each, after one change when prep is set, the first
	// of the two alternating), so that the two see the same load: p50-ms
	// and p99-ms are env.Handler's, base-p50-ms and base-p99-ms apart's.
	paired := func(b *testing.B, q string, prep func()) {
		var lat [2][]time.Duration
		hs := [2]http.Handler{env.Handler, apart}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if prep != nil {
				b.StopTimer()
				prep()
				b.StartTimer()
			}
			for j := range 2 {
				k := (i + j) % 2
				t0 := time.Now()
				get(hs[k], q)
				lat[k] = append(lat[k], time.Since(t0))
			}
		}
		for k, unit := range []string{"", "base-"} {
			slices.Sort(lat[k])
			b.ReportMetric(float64(lat[k][len(lat[k])/2].Microseconds())/1000, unit+"p50-ms")
			b.ReportMetric(float64(lat[k][len(lat[k])*99/100].Microseconds())/1000, unit+"p99-ms")
		}
	}
	for i, p := range pages {
		get(env.Handler, p.q) // the page's devices rendered once: the steady state
		b.Run("cached/"+p.name, func(b *testing.B) { run(b, func() { get(env.Handler, p.q) }, nil) })
		if i == 0 || i == 3 || i == 6 {
			get(apart, p.q)
			b.Run("paired/"+p.name, func(b *testing.B) { paired(b, p.q, nil) })
		}
	}
	// A change that moves the order before every page: a new handshake
	// (a device moves to the front of the default order), or a rename (a
	// device's name filter match changes).
	sid := 0
	handshake := func() {
		sid++
		id := fmt.Sprintf("d0%022x", sid*7%n)
		_, err := env.DB.SetDeviceOnline(ctx, id, store.DeviceSession{Node: "n", SessionID: strconv.Itoa(sid), PlatformID: 12})
		if err != nil {
			b.Fatal(err)
		}
	}
	rename := func() {
		sid++
		d, err := env.DB.DeviceByID(ctx, fmt.Sprintf("d0%022x", sid*13%n))
		if err != nil {
			b.Fatal(err)
		}
		d.Name = "dev-99-renamed-" + strconv.Itoa(sid)
		if err := env.DB.UpdateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		page   int
		change func()
	}{
		{"after-handshake-start-25", 0, handshake},
		{"after-handshake-middle-25", 1, handshake},
		{"after-handshake-by-id-100", 6, handshake},
		{"after-handshake-start-100", 3, handshake},
		{"after-rename-filter-name", 7, rename},
	} {
		b.Run("cached/"+c.name, func(b *testing.B) { run(b, func() { get(env.Handler, pages[c.page].q) }, c.change) })
		if c.page != 7 {
			b.Run("paired/"+c.name, func(b *testing.B) { paired(b, pages[c.page].q, c.change) })
		}
	}
	for _, p := range []int{0, 1, 2} {
		b.Run("store-sorted/"+pages[p].name, func(b *testing.B) { run(b, func() { get(ref, pages[p].q) }, nil) })
	}
}
