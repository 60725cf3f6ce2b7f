package auth

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wick-cloud/wick/internal/store"
)

// codeAt returns the TOTP code of secret at t.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongCodeAt returns a six-digit code that no step within the skew accepts.
func wrongCodeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		valid[codeAt(t, secret, at.Add(d))] = true
	}
	for _, c := range []string{"000000", "123456", "999999", "424242"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// enrol turns MFA on for the fixture user and returns the plain secret and
// the recovery codes.
func (f *fixture) enrol(t testing.TB) (string, []string) {
	t.Helper()
	u, err := f.st.UserByID(f.ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	en, err := f.svc.BeginMFA(f.ctx, u)
	if err != nil {
		t.Fatalf("BeginMFA: %v", err)
	}
	codes, err := f.svc.ConfirmMFA(f.ctx, u, en.MFAToken, codeAt(t, en.Secret, f.clock.Now()))
	if err != nil {
		t.Fatalf("ConfirmMFA: %v", err)
	}
	f.clock.Advance(2 * time.Minute) // the enrolment code's step is spent
	return en.Secret, codes
}

// mfaLogin runs a password grant expected to stop at mfa_required and
// returns the mfa_token. It first moves the clock on two minutes, so that
// the codes of the new login's steps were never spent (each TOTP step works
// once).
func (f *fixture) mfaLogin(t testing.TB, req TokenRequest) string {
	t.Helper()
	f.clock.Advance(2 * time.Minute)
	_, err := f.svc.Token(f.ctx, req)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Code != "mfa_required" ||
		e.Description != "Multifactor authentication required" || !ValidTokenFormat(e.MFAToken) {
		t.Fatalf("password grant with MFA on: err = %v; want 403 mfa_required with an mfa_token", err)
	}
	return e.MFAToken
}

func otpReq(clientID, mfaToken, otp string) TokenRequest {
	return TokenRequest{GrantType: GrantMFAOTP, ClientID: clientID, ClientSecret: "client_secret_here", ClientSecretSet: true,
		MFAToken: mfaToken, OTP: otp}
}

func recoveryReq(mfaToken, code string) TokenRequest {
	return TokenRequest{GrantType: GrantRecoveryCode, ClientID: "particle", ClientSecret: "particle", ClientSecretSet: true,
		MFAToken: mfaToken, RecoveryCode: code}
}

func TestMFAEndToEnd(t *testing.T) {
	f := newFixture(t)
	u, _ := f.st.UserByID(f.ctx, f.user.ID)

	en, err := f.svc.BeginMFA(f.ctx, u)
	if err != nil {
		t.Fatalf("BeginMFA: %v", err)
	}
	q, err := url.Parse(en.QRURL)
	if err != nil || q.Scheme != "otpauth" || q.Host != "totp" || q.Path != "/Wick:"+userEmail ||
		q.Query().Get("secret") != en.Secret || q.Query().Get("issuer") != "Wick" {
		t.Fatalf("qr_url = %q", en.QRURL)
	}

	// Enrolment: a wrong code is refused and leaves the enrolment pending.
	_, err = f.svc.ConfirmMFA(f.ctx, u, en.MFAToken, wrongCodeAt(t, en.Secret, f.clock.Now()))
	wantError(t, err, ErrInvalidOTP)
	_, err = f.svc.ConfirmMFA(f.ctx, u, en.MFAToken, "")
	wantError(t, err, ErrInvalidReqOTP)
	f.clock.Advance(10 * time.Second)
	codes, err := f.svc.ConfirmMFA(f.ctx, u, en.MFAToken, codeAt(t, en.Secret, f.clock.Now()))
	if err != nil {
		t.Fatalf("ConfirmMFA: %v", err)
	}
	if len(codes) != recoveryCodeCount || !u.MFAEnabled {
		t.Fatalf("codes = %v, enabled = %v", codes, u.MFAEnabled)
	}
	stored, _ := f.st.UserByID(f.ctx, f.user.ID)
	if !stored.MFAEnabled || len(stored.MFARecoveryHashes) != recoveryCodeCount ||
		bytes.Contains(stored.MFASecret, []byte(en.Secret)) || len(stored.MFASecret) == 0 {
		t.Fatalf("stored user: enabled %v, %d hashes, secret sealed %v", stored.MFAEnabled, len(stored.MFARecoveryHashes),
			!bytes.Contains(stored.MFASecret, []byte(en.Secret)))
	}
	for i, c := range codes {
		if stored.MFARecoveryHashes[i] != hashRecoveryCode(c) || strings.Contains(strings.Join(stored.MFARecoveryHashes, ""), c) {
			t.Errorf("recovery code %d is not stored as its hash", i)
		}
	}
	// The enrolment token is spent.
	_, err = f.svc.ConfirmMFA(f.ctx, u, en.MFAToken, codeAt(t, en.Secret, f.clock.Now()))
	wantError(t, err, ErrInvalidOTP)
	if _, err := f.svc.BeginMFA(f.ctx, u); err != ErrMFAEnabled {
		t.Errorf("BeginMFA with MFA on = %v", err)
	}

	// Login: the password grant now stops at mfa_required.
	login := passwordReq("CLI2", "client_secret_here", userEmail, userPassword)
	login.ExpiresIn = ptr(int64(3600))
	mfaToken := f.mfaLogin(t, login)
	_, err = f.svc.Token(f.ctx, otpReq("CLI2", mfaToken, wrongCodeAt(t, en.Secret, f.clock.Now())))
	wantError(t, err, &Error{Status: 400, Code: "invalid_grant", Description: "Invalid OTP code"})
	resp := f.token(t, otpReq("CLI2", mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	if resp.ExpiresIn != 3600 || resp.RefreshToken == "" {
		t.Errorf("otp grant resp = %+v; want the remembered expires_in 3600", resp)
	}
	p := f.authenticate(t, resp.AccessToken)
	if p.Kind != store.KindUser || p.UserID != f.user.ID || p.ClientID != "CLI2" {
		t.Errorf("principal = %+v", p)
	}
	// The mfa_token is single use.
	_, err = f.svc.Token(f.ctx, otpReq("CLI2", mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	wantError(t, err, ErrInvalidOTP)

	// The previous and next 30-second steps are accepted too (skew 1).
	mfaToken = f.mfaLogin(t, login)
	f.token(t, otpReq("CLI2", mfaToken, codeAt(t, en.Secret, f.clock.Now().Add(-30*time.Second))))

	// The remembered client wins over the OTP request's.
	mfaToken = f.mfaLogin(t, passwordReq("particle-cli", "x", userEmail, userPassword))
	resp = f.token(t, otpReq("other", mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	if p := f.authenticate(t, resp.AccessToken); p.ClientID != "particle-cli" {
		t.Errorf("ClientID = %q; want particle-cli", p.ClientID)
	}

	// Recovery codes work once each.
	mfaToken = f.mfaLogin(t, login)
	resp = f.token(t, recoveryReq(mfaToken, strings.ToUpper(codes[3])))
	if resp.ExpiresIn != 3600 {
		t.Errorf("recovery grant expires_in = %d", resp.ExpiresIn)
	}
	mfaToken = f.mfaLogin(t, login)
	_, err = f.svc.Token(f.ctx, recoveryReq(mfaToken, codes[3]))
	wantError(t, err, ErrInvalidRecoveryCode)
	f.token(t, recoveryReq(mfaToken, strings.ReplaceAll(codes[4], "-", "")))
	stored, _ = f.st.UserByID(f.ctx, f.user.ID)
	if len(stored.MFARecoveryHashes) != recoveryCodeCount-2 {
		t.Errorf("%d recovery codes left; want %d", len(stored.MFARecoveryHashes), recoveryCodeCount-2)
	}

	// An mfa_token expires.
	mfaToken = f.mfaLogin(t, login)
	f.clock.Advance(defaultMFATokenLifetime)
	_, err = f.svc.Token(f.ctx, otpReq("CLI2", mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	wantError(t, err, ErrInvalidOTP)

	// Too many wrong codes destroy the mfa_token.
	mfaToken = f.mfaLogin(t, login)
	for range DefaultOTPAttempts {
		_, err = f.svc.Token(f.ctx, otpReq("CLI2", mfaToken, wrongCodeAt(t, en.Secret, f.clock.Now())))
		wantError(t, err, ErrInvalidOTP)
	}
	_, err = f.svc.Token(f.ctx, otpReq("CLI2", mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	wantError(t, err, ErrInvalidOTP)

	// A registered client must still prove itself in the OTP step.
	mfaToken = f.mfaLogin(t, login)
	_, err = f.svc.Token(f.ctx, otpReq(f.userClient.ID, mfaToken, codeAt(t, en.Secret, f.clock.Now())))
	wantError(t, err, ErrBadClient)

	// Disabling needs the password, then the password grant succeeds again.
	if err := f.svc.DisableMFA(f.ctx, u, "wrong"); err != ErrBadUserCreds {
		t.Fatalf("DisableMFA(wrong) = %v", err)
	}
	if err := f.svc.DisableMFA(f.ctx, u, userPassword); err != nil {
		t.Fatalf("DisableMFA: %v", err)
	}
	stored, _ = f.st.UserByID(f.ctx, f.user.ID)
	if stored.MFAEnabled || stored.MFASecret != nil || len(stored.MFARecoveryHashes) != 0 || u.MFAEnabled {
		t.Errorf("after DisableMFA: %+v", stored)
	}
	f.login(t)

	// Neither the TOTP secret, the password nor recovery codes reach the log.
	logs := f.logs.String()
	for _, secret := range []string{en.Secret, userPassword, codes[0], codes[3], resp.AccessToken, mfaToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains the secret %q", secret)
		}
	}
	if !strings.Contains(logs, "token issued") {
		t.Error("grants are not logged at Debug")
	}
}

func TestCheckOTP(t *testing.T) {
	f := newFixture(t)
	secret, _ := f.enrol(t)
	u, _ := f.st.UserByID(f.ctx, f.user.ID)
	now := f.clock.Now()
	// The cases run in order: each accepted code spends its time step, so
	// that step and every older one are refused afterwards.
	tests := []struct {
		name string
		u    *store.User
		code string
		want bool
	}{
		{"wrong", u, wrongCodeAt(t, secret, now), false},
		{"empty", u, "", false},
		{"letters", u, "abcdef", false},
		{"two steps old", u, codeAt(t, secret, now.Add(-90*time.Second)), codeAt(t, secret, now.Add(-90*time.Second)) == codeAt(t, secret, now)},
		{"other user's seal", &store.User{ID: "someone-else", MFAEnabled: true, MFASecret: u.MFASecret}, codeAt(t, secret, now), false},
		{"mfa off", &store.User{ID: u.ID, MFASecret: u.MFASecret}, codeAt(t, secret, now), false},
		{"previous step", u, codeAt(t, secret, now.Add(-30*time.Second)), true},
		{"previous step replayed", u, codeAt(t, secret, now.Add(-30*time.Second)), false},
		{"current", u, codeAt(t, secret, now), true},
		{"current replayed", u, codeAt(t, secret, now), false},
		{"previous after current", u, codeAt(t, secret, now.Add(-30*time.Second)), false},
		{"next step", u, codeAt(t, secret, now.Add(30*time.Second)), true},
		{"next step replayed", u, codeAt(t, secret, now.Add(30*time.Second)), false},
	}
	for _, tt := range tests {
		err := f.svc.CheckOTP(f.ctx, tt.u, tt.code)
		if got := err == nil; got != tt.want {
			t.Errorf("%s: CheckOTP(%q) = %v; want ok %v", tt.name, tt.code, err, tt.want)
		}
		if err != nil && err != ErrInvalidOTP {
			t.Errorf("%s: CheckOTP error %v; want ErrInvalidOTP", tt.name, err)
		}
	}
}

func TestMFAWithoutKey(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SecretKey = nil })
	if _, err := f.svc.BeginMFA(f.ctx, f.user); err != ErrMFAUnavailable {
		t.Errorf("BeginMFA without a key = %v", err)
	}
}

func TestPasswordReset(t *testing.T) {
	f := newFixture(t)
	if tok, err := f.svc.BeginPasswordReset(f.ctx, "ghost@example.com"); tok != "" || err != nil {
		t.Fatalf("BeginPasswordReset(unknown) = %q, %v", tok, err)
	}
	old := f.login(t)
	f.authenticate(t, old.AccessToken) // cached

	tok, err := f.svc.BeginPasswordReset(f.ctx, "Dev@Example.com")
	if err != nil || !ValidTokenFormat(tok) {
		t.Fatalf("BeginPasswordReset = %q, %v", tok, err)
	}
	wantError(t, f.svc.FinishPasswordReset(f.ctx, strings.Repeat("0", 40), "new password"), ErrInvalidResetToken)
	wantError(t, f.svc.FinishPasswordReset(f.ctx, "short", "new password"), ErrInvalidResetToken)
	wantError(t, f.svc.FinishPasswordReset(f.ctx, tok, ""), ErrMissingPassword)
	if err := f.svc.FinishPasswordReset(f.ctx, tok, "new password"); err != nil {
		t.Fatalf("FinishPasswordReset: %v", err)
	}
	if _, err := f.svc.Authenticate(f.ctx, old.AccessToken); err != ErrTokenInvalid {
		t.Errorf("old token after reset: %v; want ErrTokenInvalid", err)
	}
	if _, err := f.svc.CheckUserPassword(f.ctx, userEmail, userPassword); err != ErrBadUserCreds {
		t.Errorf("old password still works: %v", err)
	}
	f.token(t, passwordReq("particle", "particle", userEmail, "new password"))
	wantError(t, f.svc.FinishPasswordReset(f.ctx, tok, "again"), ErrInvalidResetToken)

	// Reset tokens live one hour.
	tok, _ = f.svc.BeginPasswordReset(f.ctx, userEmail)
	f.clock.Advance(time.Hour)
	wantError(t, f.svc.FinishPasswordReset(f.ctx, tok, "late"), ErrInvalidResetToken)
}
