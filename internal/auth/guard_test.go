package auth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// from returns the fixture's context as seen from client address ip.
func (f *fixture) from(ip string) context.Context { return WithClientAddr(f.ctx, ip) }

// wantLimited fails unless err is a 429 *LimitError.
func wantLimited(t testing.TB, what string, err error) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Status != http.StatusTooManyRequests || le.RetryAfter <= 0 {
		t.Fatalf("%s: err = %v; want a 429 LimitError with a Retry-After", what, err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	if l.IPFailures != DefaultIPFailures || l.AccountFailures != DefaultAccountFailures ||
		l.OTPAttempts != DefaultOTPAttempts || l.HashConcurrency < 1 || l.HashQueue != DefaultHashQueue ||
		l.IPLockout != DefaultIPLockout || l.AccountLockout != DefaultAccountLockout || l.Keys != DefaultLimitKeys {
		t.Errorf("defaults = %+v", l)
	}
	if l := (Limits{IPFailures: -1, AccountFailures: -1, HashQueue: -1}).withDefaults(); l.IPFailures != -1 || l.AccountFailures != -1 || l.HashQueue != 0 {
		t.Errorf("negative values must stay (disabled): %+v", l)
	}
}

// TestIPLockoutNotResetByOtherAccount: a success for one account does not
// clear the failures an address made against another.
func TestIPLockoutNotResetByOtherAccount(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits = Limits{IPFailures: 4, AccountFailures: 100} })
	ctx := f.from("198.51.100.7")
	for round := range 4 {
		_, err := f.svc.CheckUserPassword(ctx, userEmail, "wrong")
		if err != ErrBadUserCreds {
			t.Fatalf("round %d: wrong password: %v", round, err)
		}
		if round == 3 {
			break
		}
		// The attacker logs into their own account (a customer here):
		// under the old rules this cleared the address's count.
		if _, err := f.svc.checkCustomerPassword(ctx, f.product.ID, customerEmail, customerPassword); err != nil {
			t.Fatalf("round %d: own login: %v", round, err)
		}
	}
	_, err := f.svc.CheckUserPassword(ctx, userEmail, userPassword)
	wantLimited(t, "right password after 4 failures from the address", err)
	// Another address is not affected, and the account is not locked.
	if _, err := f.svc.CheckUserPassword(f.from("198.51.100.8"), userEmail, userPassword); err != nil {
		t.Fatalf("other address: %v", err)
	}
	// The lockout ends.
	f.clock.Advance(DefaultIPLockout)
	if _, err := f.svc.CheckUserPassword(ctx, userEmail, userPassword); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}

// TestAccountLockoutAcrossAddresses: guesses spread over many addresses
// still lock the account, except for an address it logged in from.
func TestAccountLockoutAcrossAddresses(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits = Limits{IPFailures: 9, AccountFailures: 20} })
	home := f.from("203.0.113.1")
	if _, err := f.svc.CheckUserPassword(home, userEmail, userPassword); err != nil {
		t.Fatal(err)
	}
	guesses, limited := 0, false
	for ip := 0; ip < 20 && !limited; ip++ {
		ctx := f.from("192.0.2." + strconv.Itoa(ip))
		for range 9 {
			_, err := f.svc.CheckUserPassword(ctx, userEmail, "wrong")
			if err == ErrBadUserCreds {
				guesses++
				continue
			}
			wantLimited(t, "guess", err)
			limited = true
			break
		}
	}
	if !limited || guesses != 20 {
		t.Fatalf("limited %v after %d guesses; want a 429 after 20", limited, guesses)
	}
	// Even the right password from a new address is refused...
	_, err := f.svc.CheckUserPassword(f.from("192.0.2.200"), userEmail, userPassword)
	wantLimited(t, "right password from a new address", err)
	// ...but the owner's known address gets through, and its success
	// resets the account.
	if _, err := f.svc.CheckUserPassword(home, userEmail, userPassword); err != nil {
		t.Fatalf("owner from a known address: %v", err)
	}
	if _, err := f.svc.CheckUserPassword(f.from("192.0.2.201"), userEmail, userPassword); err != nil {
		t.Fatalf("after the owner's success: %v", err)
	}
	// Unknown usernames are limited the same way (no oracle).
	for range 20 {
		f.svc.CheckUserPassword(f.from("192.0.2."+strconv.Itoa(f.clock.Now().Second())), "ghost@example.com", "x")
		f.clock.Advance(time.Second)
	}
	_, err = f.svc.CheckUserPassword(f.from("192.0.2.250"), "ghost@example.com", "x")
	wantLimited(t, "unknown account", err)
}

// TestCancelledCheckIsNotAFailure: a check whose client went away is not a
// wrong password.
func TestCancelledCheckIsNotAFailure(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits = Limits{IPFailures: 2, HashConcurrency: 1, HashWait: time.Minute} })
	// Fill the one hash slot so that the checks wait, then cancel them.
	if err := f.svc.gate.acquire(f.ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		ctx, cancel := context.WithCancel(f.from("198.51.100.9"))
		cancel()
		_, err := f.svc.CheckUserPassword(ctx, userEmail, userPassword)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled check: %v; want context.Canceled", err)
		}
		_, err = f.svc.Token(ctx, passwordReq("particle", "particle", userEmail, "wrong"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled grant: %v; want context.Canceled", err)
		}
	}
	f.svc.gate.release()
	if _, err := f.svc.CheckUserPassword(f.from("198.51.100.9"), userEmail, userPassword); err != nil {
		t.Fatalf("right password after cancelled checks: %v", err)
	}
}

// TestOTPAttemptsAndReplayAtTokenGrant: a code logs in once, and wrong
// codes are capped per mfa_token and per account.
func TestOTPAttemptsAndReplayAtTokenGrant(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits = Limits{IPFailures: -1, AccountFailures: 8, OTPAttempts: 3} })
	secret, _ := f.enrol(t)
	login := passwordReq("particle", "particle", userEmail, userPassword)

	mfaToken := f.mfaLogin(t, login)
	code := codeAt(t, secret, f.clock.Now())
	f.token(t, otpReq("particle", mfaToken, code))
	// The same code with a fresh mfa_token (the password is known) fails.
	mfaToken = f.mfaLogin(t, login)
	f.clock.Advance(-2 * time.Minute) // back to the step just spent
	_, err := f.svc.Token(f.ctx, otpReq("particle", mfaToken, code))
	wantError(t, err, ErrInvalidOTP)
	f.clock.Advance(2 * time.Minute)

	// Three wrong codes destroy the mfa_token.
	mfaToken = f.mfaLogin(t, login)
	for range 3 {
		_, err := f.svc.Token(f.ctx, otpReq("particle", mfaToken, wrongCodeAt(t, secret, f.clock.Now())))
		wantError(t, err, ErrInvalidOTP)
	}
	_, err = f.svc.Token(f.ctx, otpReq("particle", mfaToken, codeAt(t, secret, f.clock.Now())))
	wantError(t, err, ErrInvalidOTP)

	// Knowing the password does not buy more guesses: the account's count
	// (1 replay + 3 + 4 wrong codes = 8) is not reset by password successes.
	mfaToken = f.mfaLogin(t, login)
	for range 2 {
		_, err := f.svc.Token(f.ctx, otpReq("particle", mfaToken, wrongCodeAt(t, secret, f.clock.Now())))
		wantError(t, err, ErrInvalidOTP)
	}
	mfaToken = f.mfaLogin(t, login)
	for range 2 {
		_, err := f.svc.Token(f.ctx, otpReq("particle", mfaToken, wrongCodeAt(t, secret, f.clock.Now())))
		wantError(t, err, ErrInvalidOTP)
	}
	_, err = f.svc.Token(f.ctx, login)
	wantLimited(t, "password step after 8 wrong codes", err)
	u, _ := f.st.UserByID(f.ctx, f.user.ID)
	wantLimited(t, "CheckOTP while locked", f.svc.CheckOTP(f.ctx, u, codeAt(t, secret, f.clock.Now())))
}

// TestHashGateBound: concurrent checks never run more hashes at once than
// the bound, and beyond the queue they fail fast with ErrBusy.
func TestHashGateBound(t *testing.T) {
	const bound, queue, callers = 2, 3, 40
	f := newFixture(t, func(c *Config) {
		c.Hasher = &Hasher{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}
		c.Limits = Limits{IPFailures: -1, AccountFailures: -1, HashConcurrency: bound, HashQueue: queue, HashWait: time.Minute}
	})
	var (
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		busy, wrong, others int
	)
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := f.svc.CheckUserPassword(f.from("192.0.2."+strconv.Itoa(i)), userEmail, "wrong")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrBusy):
				busy++
			case err == ErrBadUserCreds:
				wrong++
			default:
				others++
			}
		}()
	}
	close(start)
	wg.Wait()
	st := f.svc.HashStats()
	if st.Peak > bound || st.Limit != bound {
		t.Errorf("peak %d hashes at once, limit %d; want at most %d", st.Peak, st.Limit, bound)
	}
	if st.InFlight != 0 || st.Waiting != 0 {
		t.Errorf("after the burst: %+v", st)
	}
	if busy+wrong != callers || others != 0 || wrong < bound || uint64(busy) != st.Rejected {
		t.Errorf("%d busy, %d wrong, %d other, stats %+v", busy, wrong, others, st)
	}
	if busy == 0 {
		t.Error("no check was refused: the queue is not bounded")
	}
}

func TestClientSecretHashes(t *testing.T) {
	f := newFixture(t)
	// New secrets get the fast hash; a right one verifies, a wrong one not.
	secret, h, err := f.svc.NewClientSecret()
	if err != nil || !isSecretHash(h) || !verifySecretHash(h, secret) || verifySecretHash(h, secret+"x") {
		t.Fatalf("NewClientSecret = %q, %q, %v", secret, h, err)
	}
	// A client whose secret was hashed with argon2id by an older version
	// still authenticates.
	old, _ := NewToken()
	oldHash, err := f.svc.HashPassword(old)
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Client{ID: "legacy-1", Name: "legacy", Type: store.ClientInstalled, SecretHash: oldHash, OwnerID: f.user.ID}
	if err := f.st.CreateClient(f.ctx, c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, secret string
		ok         bool
	}{
		{"legacy-1", old, true},
		{"legacy-1", old + "0", false},
		{f.userClient.ID, f.userSecret, true},
		{f.userClient.ID, old, false},
		{"nobody", old, false},
	}
	for _, tt := range tests {
		_, err := f.svc.CheckClient(f.ctx, tt.id, tt.secret)
		if (err == nil) != tt.ok || (err != nil && err != ErrBadClient) {
			t.Errorf("CheckClient(%s) = %v; want ok %v", tt.id, err, tt.ok)
		}
	}
}
