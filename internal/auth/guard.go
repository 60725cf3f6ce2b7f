package auth

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/wick-cloud/wick/internal/ratelimit"
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
}

// newGuard returns the guard of l (already defaulted).
func newGuard(l Limits, now func() time.Time) *guard {
	return &guard{
		now:     now,
		ip:      ratelimit.NewLockout(l.IPFailures, l.IPLockout, l.Keys),
		account: ratelimit.NewLockout(l.AccountFailures, l.AccountLockout, l.Keys),
		known:   ratelimit.NewRecent(l.KnownAddressTTL, l.Keys),
	}
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
	}
	if account != "" {
		if locked, retry := g.account.Locked(account, now); locked && !g.known.Has(account+"\x00"+ip, now) {
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
	}
	if account != "" {
		g.account.Fail(account, now)
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
	if ip := clientAddr(ctx); ip != "" {
		g.known.Add(account+"\x00"+ip, g.now())
	}
}
