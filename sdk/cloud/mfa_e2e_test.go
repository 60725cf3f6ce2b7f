package cloud_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wick-cloud/wick/sdk/cloud"
)

// totpCode is the RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32
// secret for time step step.
func totpCode(t *testing.T, secret string, step int64) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	m := hmac.New(sha1.New, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}

func TestLoginMFA(t *testing.T) {
	w := startWick(t)
	owner, _ := login(t, w)
	ctx := within(t, 30*time.Second)
	en, err := owner.BeginMFA(ctx)
	if err != nil || en.MFAToken == "" || en.Secret == "" {
		t.Fatalf("BeginMFA = %+v, %v", en, err)
	}
	step := time.Now().Unix() / 30
	codes, err := owner.ConfirmMFA(ctx, en.MFAToken, totpCode(t, en.Secret, step))
	if err != nil || len(codes) == 0 {
		t.Fatalf("ConfirmMFA = %v, %v", codes, err)
	}

	anon := cloud.New(w.api, "")
	_, err = anon.Login(ctx, ownerEmail, ownerPassword, nil)
	mfaToken, ok := cloud.IsMFARequired(err)
	if !ok || !cloud.IsForbidden(err) {
		t.Fatalf("Login with MFA on: %v; want 403 mfa_required with an mfa_token", err)
	}
	if _, err := anon.LoginMFA(ctx, mfaToken, "000000", nil); err == nil {
		t.Fatalf("LoginMFA with a wrong code succeeded")
	}
	// Each code works once: the next time step's code (within the
	// server's one-step skew) finishes the login.
	tok, err := anon.LoginMFA(ctx, mfaToken, totpCode(t, en.Secret, step+1), nil)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("LoginMFA = %+v, %v", tok, err)
	}
	mfaOwner := anon.WithToken(tok.AccessToken)
	if u, err := mfaOwner.GetUser(ctx); err != nil || !u.MFA.Enabled {
		t.Fatalf("GetUser = %+v, %v; want MFA enabled", u, err)
	}
	if err := mfaOwner.DisableMFA(ctx, ownerPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctx, ownerEmail, ownerPassword, nil); err != nil {
		t.Fatalf("Login after DisableMFA: %v", err)
	}
}
