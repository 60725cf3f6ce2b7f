package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// An open event stream keeps the access it was opened with only while
// that access lasts (docs/security.md, Streams end with access). Each
// stream re-checks it on a ticker of Config.StreamAuthCheck: the token's
// expiry and auth.Service.Authenticate, which answers from the token
// cache, so that a token revoked in this process (the revocation drops
// it from the cache) or expired ends its streams within one tick. Every
// StreamAuthRecheck, and at once when an access notice concerns it, a
// stream checks against the store itself: the token row, and for a team
// route its user's membership. Notices are sent by the API whenever it
// revokes tokens, removes a team member or deletes an account, and
// travel over the bus to every process (bus.PublishNotice), so that a
// change made on one process reaches streams held by another promptly;
// the store check bounds the delay for changes that send no notice
// (a command-line tool, a lost notice).

// accessTopic is the bus notice topic of access changes.
const accessTopic = "access"

// accessNotice says whose access changed. Every field is optional; a
// stream is concerned when any field matches it.
type accessNotice struct {
	// Node is the sending process (bus node), so that it skips its own
	// notice when the bus echoes it.
	Node string `json:"node,omitempty"`
	// TokenHashes are access tokens revoked.
	TokenHashes []string `json:"token_hashes,omitempty"`
	// UserID is a user whose tokens, account or name changed.
	UserID string `json:"user_id,omitempty"`
	// CustomerID is a customer whose tokens or account changed.
	CustomerID string `json:"customer_id,omitempty"`
	// ClientID is an OAuth client whose tokens were revoked.
	ClientID string `json:"client_id,omitempty"`
	// ProductID and Username: Username left the team of ProductID.
	ProductID int64  `json:"product_id,omitempty"`
	Username  string `json:"username,omitempty"`
}

// streamAccess is the access one open stream was admitted with.
type streamAccess struct {
	token string         // the access token, "" when it came in a body
	p     auth.Principal // the principal at admission
	// team is the product of a team route opened by a user: membership
	// is part of the access. 0 otherwise.
	team int64
	// recheck is signalled (never blocking) when a notice concerns the
	// stream.
	recheck chan struct{}
}

// concerns reports whether n may have changed a's access.
func (a *streamAccess) concerns(n *accessNotice) bool {
	p := &a.p
	switch {
	case slices.Contains(n.TokenHashes, p.TokenHash):
	case n.UserID != "" && p.Kind == store.KindUser && n.UserID == p.UserID:
	case n.CustomerID != "" && p.Kind == store.KindCustomer && n.CustomerID == p.CustomerID:
	case n.ClientID != "" && n.ClientID == p.ClientID:
	case n.ProductID != 0 && a.team == n.ProductID && (n.Username == "" || n.Username == p.Username):
	default:
		return false
	}
	return true
}

// streamWatch knows every open stream's access, indexed by what a
// notice can name, so that routing a notice costs the streams it may
// concern, not every open stream.
type streamWatch struct {
	mu    sync.Mutex
	index map[string]map[*streamAccess]struct{} // guarded by mu
}

func newStreamWatch() *streamWatch {
	return &streamWatch{index: map[string]map[*streamAccess]struct{}{}}
}

// Index keys: a kind letter and a value.
func tokenKey(hash string) string  { return "t:" + hash }
func userKey(id string) string     { return "u:" + id }
func customerKey(id string) string { return "c:" + id }
func clientKey(id string) string   { return "k:" + id }
func teamKey(product int64) string { return "p:" + strconv.FormatInt(product, 10) }

// keys lists the index keys of a stream.
func (a *streamAccess) keys() []string {
	p := &a.p
	keys := []string{tokenKey(p.TokenHash)}
	switch p.Kind {
	case store.KindUser:
		keys = append(keys, userKey(p.UserID))
	case store.KindCustomer:
		keys = append(keys, customerKey(p.CustomerID))
	}
	if p.ClientID != "" {
		keys = append(keys, clientKey(p.ClientID))
	}
	if a.team != 0 {
		keys = append(keys, teamKey(a.team))
	}
	return keys
}

func (w *streamWatch) add(a *streamAccess) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range a.keys() {
		set := w.index[k]
		if set == nil {
			set = map[*streamAccess]struct{}{}
			w.index[k] = set
		}
		set[a] = struct{}{}
	}
}

func (w *streamWatch) remove(a *streamAccess) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range a.keys() {
		if set := w.index[k]; set != nil {
			delete(set, a)
			if len(set) == 0 {
				delete(w.index, k)
			}
		}
	}
}

// notify asks every stream n concerns to re-check its access now.
func (w *streamWatch) notify(n *accessNotice) {
	var keys []string
	for _, h := range n.TokenHashes {
		keys = append(keys, tokenKey(h))
	}
	if n.UserID != "" {
		keys = append(keys, userKey(n.UserID))
	}
	if n.CustomerID != "" {
		keys = append(keys, customerKey(n.CustomerID))
	}
	if n.ClientID != "" {
		keys = append(keys, clientKey(n.ClientID))
	}
	if n.ProductID != 0 {
		keys = append(keys, teamKey(n.ProductID))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		for a := range w.index[k] {
			if a.concerns(n) {
				select {
				case a.recheck <- struct{}{}:
				default: // a re-check is already due
				}
			}
		}
	}
}

// subscribeAccessNotices makes notices from other processes reach this
// process's streams.
func (s *server) subscribeAccessNotices() {
	if s.bus == nil {
		return
	}
	node := s.bus.Node()
	_, err := s.bus.SubscribeNotices(accessTopic, func(data []byte) { s.onAccessNotice(node, data) })
	if err != nil {
		s.log.Warn("api: access notices unavailable; streams rely on their periodic check", "err", err)
	}
}

// onAccessNotice routes a notice received over the bus to this
// process's streams, unless this process (node) sent it.
func (s *server) onAccessNotice(node string, data []byte) {
	var n accessNotice
	if err := json.Unmarshal(data, &n); err != nil {
		s.log.Warn("api: malformed access notice", "err", err)
		return
	}
	if n.Node != node {
		s.watch.notify(&n)
	}
}

// accessChanged tells the streams of this process and, over the bus, of
// every other that n's subjects lost some access.
func (s *server) accessChanged(ctx context.Context, n accessNotice) {
	s.watch.notify(&n)
	if s.bus == nil {
		return
	}
	n.Node = s.bus.Node()
	data, err := json.Marshal(n)
	if err == nil {
		err = s.bus.PublishNotice(accessTopic, data)
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "api: access notice not sent; other processes' streams rely on their periodic check",
			slog.Any("err", err))
	}
}

// newStreamAccess records the access of the stream rq opens. The caller
// registers it with s.watch.
func (s *server) newStreamAccess(rq *request) *streamAccess {
	a := &streamAccess{token: bearerToken(rq.r, rq.params), recheck: make(chan struct{}, 1)}
	if rq.principal != nil {
		a.p = *rq.principal
	}
	if rq.route.policy == team && a.p.Kind == store.KindUser && rq.product != nil {
		a.team = rq.product.ID
	}
	return a
}

// errAccessEnded reports that a stream's access is gone.
var errAccessEnded = errors.New("api: stream access ended")

// streamAllowed re-checks a stream's access: cheaply (expiry and the
// token cache), or with full set against the store. It returns
// errAccessEnded when the access is gone; other errors (a store that
// cannot answer) leave the stream open, to be checked again.
func (s *server) streamAllowed(ctx context.Context, a *streamAccess, full bool) error {
	p := &a.p
	if p.ExpiresAt != nil && !s.cfg.Now().Before(*p.ExpiresAt) {
		return errAccessEnded
	}
	if a.token == "" {
		full = true
	} else if _, err := s.auth.Authenticate(ctx, a.token); err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			return errAccessEnded
		}
		return err
	}
	if !full {
		return nil
	}
	t, err := s.store.TokenByHash(ctx, p.TokenHash)
	if errors.Is(err, store.ErrNotFound) {
		return errAccessEnded
	}
	if err != nil {
		return err
	}
	if t.ExpiresAt != nil && !s.cfg.Now().Before(*t.ExpiresAt) {
		return errAccessEnded
	}
	if a.team == 0 {
		return nil
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return errAccessEnded
	}
	if err != nil {
		return err
	}
	_, err = s.store.TeamMember(ctx, a.team, u.Username)
	if errors.Is(err, store.ErrNotFound) {
		return errAccessEnded
	}
	return err
}

// accessTicker drives one stream's re-checks: C ticks every
// StreamAuthCheck, and full says whether this tick also checks the store
// (one tick in StreamAuthRecheck/StreamAuthCheck, at a random phase so
// that streams opened together do not check together).
type accessTicker struct {
	*time.Ticker
	n, every int
}

func (s *server) newAccessTicker() *accessTicker {
	every := max(int(s.cfg.StreamAuthRecheck/s.cfg.StreamAuthCheck), 1)
	return &accessTicker{Ticker: time.NewTicker(s.cfg.StreamAuthCheck), n: rand.IntN(every), every: every}
}

// tick counts one tick and reports whether it is a full check.
func (t *accessTicker) tick() (full bool) {
	t.n++
	return t.n%t.every == 0
}
