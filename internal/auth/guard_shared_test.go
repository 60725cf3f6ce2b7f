package auth

import (
	"context"
	"sync"
	"testing"
	"time"
)

// memCounters is an in-memory store.Counters with the store's semantics.
type memCounters struct {
	mu sync.Mutex
	m  map[string]memCounter
}

type memCounter struct {
	n   int64
	exp time.Time
}

func (c *memCounters) AddCounter(_ context.Context, key string, now time.Time, window time.Duration) (int64, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memCounter{}
	}
	v := c.m[key]
	if !v.exp.After(now) {
		v = memCounter{exp: now.Add(window)}
	}
	v.n++
	c.m[key] = v
	return v.n, v.exp, nil
}

func (c *memCounters) Counter(_ context.Context, key string, now time.Time) (int64, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok || !v.exp.After(now) {
		return 0, time.Time{}, nil
	}
	return v.n, v.exp, nil
}

func (c *memCounters) SetCounter(_ context.Context, key string, n int64, exp time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]memCounter{}
	}
	c.m[key] = memCounter{n: n, exp: exp}
	return nil
}

func (c *memCounters) DeleteCounter(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}

func (c *memCounters) DeleteExpiredCounters(_ context.Context, now time.Time) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.m {
		if !v.exp.After(now) {
			delete(c.m, k)
			n++
		}
	}
	return n, nil
}

// TestSharedGuardAcrossServers plays two servers sharing counters: guesses
// spread over both count once toward each lockout, a lockout made on one
// holds on the other, and a login on one exempts its address on the other.
func TestSharedGuardAcrossServers(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	shared := &memCounters{}
	lim := Limits{IPFailures: 4, IPLockout: time.Minute, AccountFailures: 6, AccountLockout: time.Minute, Shared: shared}.withDefaults()
	a, b := newGuard(lim, now), newGuard(lim, now)
	servers := []*guard{a, b}
	attacker := WithClientAddr(context.Background(), "203.0.113.9")
	for i := range 3 {
		g := servers[i%2]
		if err := g.check(attacker, ""); err != nil {
			t.Fatalf("failure %d refused early: %v", i, err)
		}
		g.fail(attacker, "")
	}
	b.fail(attacker, "") // the 4th failure in all, 2nd on b
	for i, g := range servers {
		err := g.check(attacker, "")
		le, ok := err.(*LimitError)
		if !ok || le.RetryAfter <= 0 || le.RetryAfter > time.Minute {
			t.Errorf("server %d after 4 failures across servers: %v; want a lockout", i, err)
		}
	}

	// Account lockout from many addresses spread over both servers; the
	// owner's address, known from a login on a, still gets in on b.
	owner := WithClientAddr(context.Background(), "198.51.100.1")
	acct := userAccount("owner@example.com")
	a.succeed(owner, acct)
	for i := range 6 {
		ctx := WithClientAddr(context.Background(), "192.0.2."+string(rune('1'+i)))
		servers[i%2].fail(ctx, acct)
	}
	stranger := WithClientAddr(context.Background(), "192.0.2.200")
	for i, g := range servers {
		if err := g.check(stranger, acct); err == nil {
			t.Errorf("server %d: account not locked after 6 failures across servers", i)
		}
	}
	if err := b.check(owner, acct); err != nil {
		t.Errorf("owner's known address refused on the other server: %v", err)
	}
	// A login resets the account everywhere; the lockout ends with time.
	b.succeed(owner, acct)
	if err := a.check(stranger, acct); err != nil {
		t.Errorf("account still locked after a login: %v", err)
	}
	clock = clock.Add(2 * time.Minute)
	if err := a.check(attacker, ""); err != nil {
		t.Errorf("address still locked after the lockout: %v", err)
	}
	clock = clock.Add(sharedPruneEvery)
	a.fail(attacker, "") // prunes expired counters
	shared.mu.Lock()
	_, kept := shared.m["guard/lock/ip/203.0.113.9"]
	shared.mu.Unlock()
	if kept {
		t.Error("expired lockout not pruned")
	}
}

// TestSharedGuardOff: without Shared the guard keeps no shared state.
func TestSharedGuardOff(t *testing.T) {
	g := newGuard(Limits{}.withDefaults(), time.Now)
	if g.shared != nil {
		t.Fatal("shared guard without a store")
	}
	ctx := WithClientAddr(context.Background(), "203.0.113.1")
	g.fail(ctx, "u:x") // a nil sharedGuard must not panic
	if err := g.check(ctx, "u:x"); err != nil {
		t.Fatal(err)
	}
}

// TestOTPAttemptsAcrossServers: wrong codes for one mfa_token tried on two
// servers sharing counters add up to Limits.OTPAttempts, after which the
// token is gone on both, even for the right code.
func TestOTPAttemptsAcrossServers(t *testing.T) {
	shared := &memCounters{}
	f := newFixture(t, func(c *Config) {
		c.Limits = Limits{IPFailures: -1, AccountFailures: -1, OTPAttempts: 4, Shared: shared}
	})
	secret, _ := f.enrol(t)
	other := New(f.svc.cfg, f.st, nil) // a second server on the same store
	servers := []*Service{f.svc, other}
	mfaToken := f.mfaLogin(t, passwordReq("particle", "particle", userEmail, userPassword))
	for i := range 4 { // 2 wrong codes on each server: neither reaches 4 alone
		_, err := servers[i%2].Token(f.ctx, otpReq("particle", mfaToken, wrongCodeAt(t, secret, f.clock.Now())))
		wantError(t, err, ErrInvalidOTP)
	}
	for i, s := range servers {
		_, err := s.Token(f.ctx, otpReq("particle", mfaToken, codeAt(t, secret, f.clock.Now())))
		if err == nil {
			t.Fatalf("server %d took the right code after 4 wrong ones across servers", i)
		}
		wantError(t, err, ErrInvalidOTP)
	}
	shared.mu.Lock()
	n := shared.m["otp/fail/"+HashToken(mfaToken)].n
	shared.mu.Unlock()
	if n != 4 {
		t.Errorf("shared count = %d, want 4", n)
	}
}
