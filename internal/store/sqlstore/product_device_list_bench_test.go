package sqlstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/storetest"
)

// productFleet is a product filled by seedProductFleet.
type productFleet struct {
	product store.ProductRef
	userID  string
	ids     []string
}

// seedProductFleet fills db with a product of n devices as
// BenchmarkProductDevicePages in internal/api does: one device in 4
// belongs to one of 2,000 customers (fewer below 16,000 devices), one in
// 50 to the product's owner, a tenth never connected.
func seedProductFleet(tb testing.TB, db *DB, n int) productFleet {
	tb.Helper()
	ctx := context.Background()
	u := &store.User{Username: "fleet@example.com", PasswordHash: "x"}
	if err := db.CreateUser(ctx, u); err != nil {
		tb.Fatal(err)
	}
	p := &store.Product{Slug: "fleet", Name: "fleet", PlatformID: 12}
	if err := db.CreateProduct(ctx, p, u.Username); err != nil {
		tb.Fatal(err)
	}
	customers := storetest.FleetCustomers(tb, db, p.ID, max(1, min(2000, n/8)))
	f := productFleet{product: store.ProductRef{ID: p.ID}, userID: u.ID, ids: make([]string, 0, n)}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const chunk = 10000
	for lo := 0; lo < n; lo += chunk {
		devs := make([]store.Device, 0, chunk)
		for i := lo; i < min(lo+chunk, n); i++ {
			d := storetest.FleetDevice(i, n, p.ID, customers, u.ID, base)
			devs = append(devs, d)
			f.ids = append(f.ids, d.ID)
		}
		if err := db.InsertDevices(ctx, devs); err != nil {
			tb.Fatal(err)
		}
	}
	// Statistics as autovacuum keeps them (the test server may run
	// without it); only this schema's tables.
	if err := db.Analyze(ctx); err != nil {
		tb.Fatal(err)
	}
	return f
}

// BenchmarkProductDevicePageRead measures the store's read of a product
// device page on PostgreSQL (ReadProductDevicePageFor: the team check,
// the list's changes, the page's versions and owners, in one batch) in a
// product of 100,000 devices (WICK_BENCH_PRODUCT_DEVICES changes it), for
// pages of 25 and 100 random devices with nothing changed since the
// version asked about. Each case alternates two ways page by page, the
// same page for both, so that they see the same load: p50-ms and p99-ms
// are the first's, base-p50-ms and base-p99-ms the second's.
//
//   - now-vs-before: today's statements against those of before
//     pageVersionsArrayQuery and changesQueryPostgres (pageIDsList and
//     pageCustomPlans), both on the URL's connections, as are the next
//     two;
//   - ids-array-vs-list: the IDs in one text[] parameter
//     (pageVersionsArrayQuery) against one parameter per ID
//     (pageVersionsQuery);
//   - generic-vs-custom-plans: changesQueryPostgres and
//     changedRowsQueryPostgres, planned once, against changesQuery and
//     changedRowsQuery, planned for each page;
//   - nossl-vs-url: the array on connections with sslmode=disable against
//     the URL's as given (the test server negotiates TLS with the default
//     sslmode=prefer);
//   - socket-vs-url: with WICK_BENCH_POSTGRES_SOCKET naming the server's
//     Unix socket directory, the array over that socket against the URL's
//     connections.
func BenchmarkProductDevicePageRead(b *testing.B) {
	dsn := freshSchema(b)
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("WICK_BENCH_PRODUCT_DEVICES")); err == nil && v > 0 {
		n = v
	}
	db := openDSN(b, dsn)
	start := time.Now()
	f := seedProductFleet(b, db, n)
	b.Logf("%d devices inserted in %v", n, time.Since(start).Round(time.Millisecond))
	l, err := db.ProductDeviceListState(b.Context(), f.product.ID)
	if err != nil {
		b.Fatal(err)
	}
	type way struct {
		db     *DB
		before pageStatements
	}
	cases := []struct {
		name     string
		new, old way
	}{
		{"now-vs-before", way{db, 0}, way{db, pageIDsList | pageCustomPlans}},
		{"ids-array-vs-list", way{db, 0}, way{db, pageIDsList}},
		{"generic-vs-custom-plans", way{db, 0}, way{db, pageCustomPlans}},
		{"nossl-vs-url", way{openDSN(b, withQuery(b, dsn, "sslmode", "disable")), 0}, way{db, 0}},
	}
	if dir := os.Getenv("WICK_BENCH_POSTGRES_SOCKET"); dir != "" {
		cases = append(cases, struct {
			name     string
			new, old way
		}{"socket-vs-url", way{openDSN(b, withQuery(b, dsn, "host", dir)), 0}, way{db, 0}})
	}
	for _, c := range cases {
		for _, size := range []int{25, 100} {
			b.Run(fmt.Sprintf("%s/%d", c.name, size), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, uint64(size)))
				page := make([]string, size)
				ways := [2]way{c.new, c.old}
				var lat [2][]time.Duration
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					for j := range page {
						page[j] = f.ids[rng.IntN(len(f.ids))]
					}
					for j := range 2 {
						k := (i + j) % 2
						t0 := time.Now()
						a, r, err := ways[k].db.readProductDevicePageFor(b.Context(), f.product, f.userID, f.product.ID,
							l.Version, page, ways[k].before)
						lat[k] = append(lat[k], time.Since(t0))
						if err != nil || !a.Granted(f.product.ID) || len(r.Versions) == 0 {
							b.Fatalf("page read: %v, %+v, %d versions", err, a, len(r.Versions))
						}
					}
				}
				for k, unit := range []string{"", "base-"} {
					slices.Sort(lat[k])
					b.ReportMetric(float64(lat[k][len(lat[k])/2].Microseconds())/1000, unit+"p50-ms")
					b.ReportMetric(float64(lat[k][len(lat[k])*99/100].Microseconds())/1000, unit+"p99-ms")
				}
			})
		}
	}
}

// openDSN opens a store on dsn, closed when the benchmark ends.
func openDSN(tb testing.TB, dsn string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dsn, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// withQuery returns the URL dsn with its query parameter key set to v.
func withQuery(tb testing.TB, dsn, key, v string) string {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set(key, v)
	u.RawQuery = q.Encode()
	return u.String()
}
