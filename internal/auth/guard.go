package auth

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
)

// Limits bounds guessing and hashing (docs/security.md, Limits and
// Passwords, second factors and lockout). Zero fields take the defaults
// written beside them; a negative count disables that limit.
type Limits struct {
	// IPFailures wrong credentials (passwords, client secrets, OTP and
	// recovery codes) from one client address within IPLockout lock that
	// address out of every credential check for IPLockout (default 10
	// within 30 minutes). Successes do not reset an address's count.
	IPFailures int
	IPLockout  time.Duration
	// AccountFailures wrong passwords or codes for one account, from any
	// addresses, within AccountLockout lock the account for AccountLockout
	// (default 20 within 15 minutes), except from an address that logged
	// into it in the last KnownAddressTTL. Only a success for that account
	// resets its count.
	AccountFailures int
	AccountLockout  time.Duration
	// KnownAddressTTL is how long an address that logged into an account
	// stays exempt from that account's lockout (default 30 days).
	KnownAddressTTL time.Duration
	// OTPAttempts wrong codes destroy an mfa_token (default 5).
	OTPAttempts int
	// HashConcurrency bounds the argon2id hashes computed at once (default
	// GOMAXPROCS); HashQueue requests may wait for one (default 16), for
	// at most HashWait (default 2 s). Beyond either the check fails with
	// ErrBusy (HTTP 503, Retry-After) before any memory is spent.
	HashConcurrency int
	HashQueue       int
	HashWait        time.Duration
	// Keys bounds the addresses and accounts each limit tracks (default
	// 100000); the least recently seen are forgotten first.
	Keys int
	// Shared, when set, also keeps the failure counts, lockouts and known
	// addresses in counters every server of a cluster shares (the
	// PostgreSQL store), so that spreading guesses over the servers gains
	// nothing (docs/scaling.md, Limits). Each server's own counts still
	// apply, and still protect when the shared store fails.
	Shared store.Counters
}

// Defaults of Limits.
const (
	DefaultIPFailures      = 10
	DefaultIPLockout       = 30 * time.Minute
	DefaultAccountFailures = 20
	DefaultAccountLockout  = 15 * time.Minute
	DefaultKnownAddressTTL = 30 * 24 * time.Hour
	DefaultOTPAttempts     = 5
	DefaultHashQueue       = 16
	DefaultHashWait        = 2 * time.Second
	DefaultLimitKeys       = 100000
)

// withDefaults returns l with its zero fields set.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.IPFailures, DefaultIPFailures)
	defDur(&l.IPLockout, DefaultIPLockout)
	def(&l.AccountFailures, DefaultAccountFailures)
	defDur(&l.AccountLockout, DefaultAccountLockout)
	defDur(&l.KnownAddressTTL, DefaultKnownAddressTTL)
	def(&l.OTPAttempts, DefaultOTPAttempts)
	if l.HashConcurrency <= 0 {
		l.HashConcurrency = runtime.GOMAXPROCS(0)
	}
	if l.HashQueue < 0 {
		l.HashQueue = 0
	} else if l.HashQueue == 0 {
		l.HashQueue = DefaultHashQueue
	}
	defDur(&l.HashWait, DefaultHashWait)
	if l.Keys <= 0 {
		l.Keys = DefaultLimitKeys
	}
	return l
}

// LimitError is a refusal by a limit: too many failures (429) or too many
// hashes waiting (503). The API answers it with a Retry-After header.
type LimitError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.Status == http.StatusServiceUnavailable {
		return "auth: too many password checks in progress"
	}
	return fmt.Sprintf("auth: too many failed attempts; retry in %v", e.RetryAfter)
}

// ErrBusy is the LimitError of a full hash queue.
var ErrBusy = &LimitError{Status: http.StatusServiceUnavailable, RetryAfter: time.Second}

// clientAddrKey is the context key of the client address.
type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the client address (the API's
// rate-limit key) that credential checks count failures against.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// clientAddr returns the address set by WithClientAddr, or "".
func clientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}

// guard counts wrong credentials per client address and per account.
type guard struct {
	now     func() time.Time
	ip      *ratelimit.Lockout
	account *ratelimit.Lockout
	known   *ratelimit.Recent // account + "\x00" + address of past logins
	shared  *sharedGuard      // nil on a single server
}

// newGuard returns the guard of l (already defaulted).
func newGuard(l Limits, now func() time.Time) *guard {
	g := &guard{
		now:     now,
		ip:      ratelimit.NewLockout(l.IPFailures, l.IPLockout, l.Keys),
		account: ratelimit.NewLockout(l.AccountFailures, l.AccountLockout, l.Keys),
		known:   ratelimit.NewRecent(l.KnownAddressTTL, l.Keys),
	}
	if l.Shared != nil {
		g.shared = &sharedGuard{c: l.Shared, l: l}
	}
	return g
}

// Account keys: one namespace per kind of credential holder.
func userAccount(username string) string { return "u:" + normalizeUsername(username) }
func customerAccount(productID int64, email string) string {
	return "c:" + strconv.FormatInt(productID, 10) + ":" + normalizeUsername(email)
}

// check refuses a credential check for account ("" for none) from the
// context's address when either is locked out. An address that logged into
// the account recently is let through an account lockout, so that an
// attacker cannot lock the owner out of their usual place.
func (g *guard) check(ctx context.Context, account string) error {
	now, ip := g.now(), clientAddr(ctx)
	if ip != "" {
		if locked, retry := g.ip.Locked(ip, now); locked {
			return &LimitError{Status: http.StatusTooManyRequests, RetryAfter: retry}
		}
		if locked, retry := g.shared.locked(ctx, sharedIP, ip, now); locked {
			return &LimitError{Status: http.StatusTooManyRequests, RetryAfter: retry}
		}
	}
	if account != "" {
		locked, retry := g.account.Locked(account, now)
		if !locked {
			locked, retry = g.shared.locked(ctx, sharedAccount, account, now)
		}
		if locked && !g.known.Has(account+"\x00"+ip, now) && !g.shared.known(ctx, account, ip, now) {
			return &LimitError{Status: http.StatusTooManyRequests, RetryAfter: retry}
		}
	}
	return nil
}

// fail counts a wrong credential for the context's address and account.
func (g *guard) fail(ctx context.Context, account string) {
	now, ip := g.now(), clientAddr(ctx)
	if ip != "" {
		g.ip.Fail(ip, now)
		g.shared.fail(ctx, sharedIP, ip, now)
	}
	if account != "" {
		g.account.Fail(account, now)
		g.shared.fail(ctx, sharedAccount, account, now)
	}
}

// succeed records a complete login to account (every factor passed): its
// count is reset and the address remembered. The address's own count is
// not reset: a success for another account must not hide guesses.
func (g *guard) succeed(ctx context.Context, account string) {
	if account == "" {
		return
	}
	g.account.Reset(account)
	ip := clientAddr(ctx)
	if ip != "" {
		g.known.Add(account+"\x00"+ip, g.now())
	}
	g.shared.succeed(ctx, account, ip, g.now())
}

// Kinds of shared guard keys.
const (
	sharedIP      = "ip"
	sharedAccount = "acct"
	// sharedPruneEvery is how often a server deletes expired counters.
	sharedPruneEvery = 10 * time.Minute
)

// sharedGuard keeps the guard's counts in store.Counters shared by the
// servers of a cluster: "guard/fail/<kind>/<key>" counts failures in a
// window of the lockout's length, "guard/lock/<kind>/<key>" is a lockout
// until its expiry, and "guard/known/<account>\x00<address>" a recent
// login. Errors of the store are ignored: the caller's own counts apply.
// A nil *sharedGuard does nothing.
type sharedGuard struct {
	c store.Counters
	l Limits

	mu       sync.Mutex
	prunedAt time.Time // guarded by mu
}

// limit returns the failures and lockout length of kind (max <= 0: off).
func (s *sharedGuard) limit(kind string) (max int, dur time.Duration) {
	if kind == sharedIP {
		return s.l.IPFailures, s.l.IPLockout
	}
	return s.l.AccountFailures, s.l.AccountLockout
}

// locked reports whether key of kind is locked out cluster-wide.
func (s *sharedGuard) locked(ctx context.Context, kind, key string, now time.Time) (bool, time.Duration) {
	if s == nil {
		return false, 0
	}
	if max, _ := s.limit(kind); max <= 0 {
		return false, 0
	}
	n, exp, err := s.c.Counter(ctx, "guard/lock/"+kind+"/"+key, now)
	if err != nil || n == 0 {
		return false, 0
	}
	return true, exp.Sub(now)
}

// fail counts a failure of key of kind and locks it out cluster-wide at
// the limit.
func (s *sharedGuard) fail(ctx context.Context, kind, key string, now time.Time) {
	if s == nil {
		return
	}
	max, dur := s.limit(kind)
	if max <= 0 {
		return
	}
	s.prune(ctx, now)
	n, _, err := s.c.AddCounter(ctx, "guard/fail/"+kind+"/"+key, now, dur)
	if err != nil || n < int64(max) {
		return
	}
	if s.c.SetCounter(ctx, "guard/lock/"+kind+"/"+key, 1, now.Add(dur)) == nil {
		s.c.DeleteCounter(ctx, "guard/fail/"+kind+"/"+key)
	}
}

// known reports whether address logged into account recently, on any
// server.
func (s *sharedGuard) known(ctx context.Context, account, ip string, now time.Time) bool {
	if s == nil || ip == "" {
		return false
	}
	n, _, err := s.c.Counter(ctx, "guard/known/"+account+"\x00"+ip, now)
	return err == nil && n > 0
}

// succeed resets account's count and lockout and remembers the address.
func (s *sharedGuard) succeed(ctx context.Context, account, ip string, now time.Time) {
	if s == nil {
		return
	}
	s.c.DeleteCounter(ctx, "guard/fail/"+sharedAccount+"/"+account)
	s.c.DeleteCounter(ctx, "guard/lock/"+sharedAccount+"/"+account)
	if ip != "" {
		s.c.SetCounter(ctx, "guard/known/"+account+"\x00"+ip, 1, now.Add(s.l.KnownAddressTTL))
	}
}

// prune deletes expired counters, at most every sharedPruneEvery per
// server.
func (s *sharedGuard) prune(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.prunedAt) >= sharedPruneEvery
	if due {
		s.prunedAt = now
	}
	s.mu.Unlock()
	if due {
		s.c.DeleteExpiredCounters(ctx, now)
	}
}
