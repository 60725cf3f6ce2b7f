package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
)

// watchFixture is a server over an in-memory store with a user in the
// team of a product, and the access of a product stream that user opened.
func watchFixture(tb testing.TB) (*server, *streamAccess) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite::memory:", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	au := auth.New(auth.Config{Hasher: auth.TestHasher()}, db, nil)
	s := New(Config{}, Deps{Store: db, Auth: au}, nil).(*server)
	u := &store.User{Username: "dev@example.com", PasswordHash: "x"}
	if err := db.CreateUser(ctx, u); err != nil {
		tb.Fatal(err)
	}
	p := &store.Product{Slug: "fleet", Name: "Fleet", OwnerID: u.ID}
	if err := db.CreateProduct(ctx, p, u.Username); err != nil {
		tb.Fatal(err)
	}
	resp, err := au.IssueToken(ctx, auth.Issue{Kind: store.KindUser, UserID: u.ID, ClientID: "particle", Lifetime: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	pr, err := au.Authenticate(ctx, resp.AccessToken)
	if err != nil {
		tb.Fatal(err)
	}
	return s, &streamAccess{token: resp.AccessToken, p: *pr, team: p.ID, recheck: make(chan struct{}, 1)}
}

// BenchmarkStreamAccessCheck measures one stream's re-check: the cheap
// one of every StreamAuthCheck tick (expiry and the token cache) and the
// full one against the store (token row, user, team membership). With
// the defaults, 10,000 open streams cost 5,000 cheap checks and 333 full
// checks a second.
func BenchmarkStreamAccessCheck(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("full=%v", full), func(b *testing.B) {
			s, a := watchFixture(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := s.streamAllowed(ctx, a, full); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamWatchNotify measures routing one access notice to the
// streams it concerns among 10,000 open ones.
func BenchmarkStreamWatchNotify(b *testing.B) {
	w := newStreamWatch()
	for i := range 10000 {
		w.add(&streamAccess{p: auth.Principal{Kind: store.KindUser, UserID: fmt.Sprintf("u%d", i%1000),
			TokenHash: fmt.Sprintf("h%d", i)}, recheck: make(chan struct{}, 1)})
	}
	n := &accessNotice{UserID: "u7"}
	b.ReportAllocs()
	for b.Loop() {
		w.notify(n)
	}
}

// TestNoticeConcerns is the routing table of access notices.
func TestNoticeConcerns(t *testing.T) {
	user := &streamAccess{p: auth.Principal{Kind: store.KindUser, UserID: "u1", Username: "a@example.com",
		TokenHash: "h1", ClientID: "c1"}, team: 7}
	cust := &streamAccess{p: auth.Principal{Kind: store.KindCustomer, CustomerID: "c9", TokenHash: "h2", ClientID: "c2"}}
	cases := []struct {
		n          accessNotice
		user, cust bool
	}{
		{accessNotice{TokenHashes: []string{"x", "h1"}}, true, false},
		{accessNotice{TokenHashes: []string{"h2"}}, false, true},
		{accessNotice{UserID: "u1"}, true, false},
		{accessNotice{UserID: "c9"}, false, false},
		{accessNotice{CustomerID: "c9"}, false, true},
		{accessNotice{ClientID: "c1"}, true, false},
		{accessNotice{ProductID: 7, Username: "a@example.com"}, true, false},
		{accessNotice{ProductID: 7, Username: "b@example.com"}, false, false},
		{accessNotice{ProductID: 8, Username: "a@example.com"}, false, false},
		{accessNotice{}, false, false},
	}
	for _, c := range cases {
		if got := user.concerns(&c.n); got != c.user {
			t.Errorf("%+v concerns the user stream: %v", c.n, got)
		}
		if got := cust.concerns(&c.n); got != c.cust {
			t.Errorf("%+v concerns the customer stream: %v", c.n, got)
		}
	}
}

// FuzzAccessNotice feeds arbitrary bus data to the notice receiver: it
// must never panic, and a notice concerns a stream only by its fields.
func FuzzAccessNotice(f *testing.F) {
	f.Add([]byte(`{"node":"other","token_hashes":["h1"]}`))
	f.Add([]byte(`{"node":"me","user_id":"u1"}`))
	f.Add([]byte(`{"product_id":7,"username":"a@example.com"}`))
	f.Add([]byte(`{"token_hashes":null,"product_id":-1}`))
	f.Add([]byte(`not json`))
	s := &server{watch: newStreamWatch(), log: slog.New(slog.DiscardHandler)}
	a := &streamAccess{p: auth.Principal{Kind: store.KindUser, UserID: "u1", Username: "a@example.com", TokenHash: "h1"},
		team: 7, recheck: make(chan struct{}, 1)}
	s.watch.add(a)
	f.Fuzz(func(t *testing.T, data []byte) {
		s.onAccessNotice("me", data)
		select {
		case <-a.recheck:
		default:
		}
	})
}

// TestLogPath checks that an access token in a path never reaches a log.
func TestLogPath(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/access_tokens/0123456789abcdef0123456789abcdef01234567": "/v1/access_tokens/<redacted>",
		"/v1/access_tokens/current":                                  "/v1/access_tokens/current",
		"/v1/access_tokens":                                          "/v1/access_tokens",
		"/v1/devices/events":                                         "/v1/devices/events",
	} {
		r := &http.Request{URL: &url.URL{Path: path}}
		if got := logPath(r).Value.String(); got != want {
			t.Errorf("logPath(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestStreamWatchIndex checks that notify reaches exactly the streams a
// notice concerns through the index, and that remove leaves no index
// entry behind.
func TestStreamWatchIndex(t *testing.T) {
	w := newStreamWatch()
	mk := func(p auth.Principal, team int64) *streamAccess {
		a := &streamAccess{p: p, team: team, recheck: make(chan struct{}, 1)}
		w.add(a)
		return a
	}
	alice := mk(auth.Principal{Kind: store.KindUser, UserID: "u1", Username: "a@example.com", TokenHash: "h1", ClientID: "cli"}, 7)
	aliceOwn := mk(auth.Principal{Kind: store.KindUser, UserID: "u1", Username: "a@example.com", TokenHash: "h2"}, 0)
	bob := mk(auth.Principal{Kind: store.KindUser, UserID: "u2", Username: "b@example.com", TokenHash: "h3"}, 7)
	cust := mk(auth.Principal{Kind: store.KindCustomer, CustomerID: "c1", TokenHash: "h4", ClientID: "cli"}, 0)
	all := []*streamAccess{alice, aliceOwn, bob, cust}
	flagged := func() []bool {
		out := make([]bool, len(all))
		for i, a := range all {
			select {
			case <-a.recheck:
				out[i] = true
			default:
			}
		}
		return out
	}
	cases := []struct {
		n    accessNotice
		want []bool
	}{
		{accessNotice{TokenHashes: []string{"h2", "h4"}}, []bool{false, true, false, true}},
		{accessNotice{UserID: "u1"}, []bool{true, true, false, false}},
		{accessNotice{ProductID: 7, Username: "b@example.com"}, []bool{false, false, true, false}},
		{accessNotice{ProductID: 7}, []bool{true, false, true, false}},
		{accessNotice{ClientID: "cli"}, []bool{true, false, false, true}},
		{accessNotice{CustomerID: "c1"}, []bool{false, false, false, true}},
	}
	for _, c := range cases {
		w.notify(&c.n)
		if got := flagged(); !slices.Equal(got, c.want) {
			t.Errorf("%+v flagged %v, want %v", c.n, got, c.want)
		}
	}
	for _, a := range all {
		w.remove(a)
	}
	if len(w.index) != 0 {
		t.Errorf("index keeps %d keys after every stream left", len(w.index))
	}
}
