package api_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/mail"
	"github.com/wick-cloud/wick/internal/mail/mailtest"
)

// TestInviteGrantsNothingUntilAccepted is the attack of issue 10: with
// sign-up open, an invitation to an address nobody has registered must
// not make whoever signs up with it first a member (let alone an
// administrator who mints a full-scope product client); nor may an
// account that existed before the invitation use it without accepting.
// Only the invitation's token, presented while logged in as the address,
// makes a member.
func TestInviteGrantsNothingUntilAccepted(t *testing.T) {
	w := newWorld(t, api.Config{Signup: true})
	var token, squatToken string
	w.Run(t, []apitest.Scenario{
		{Name: "invite an unregistered address", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/team",
			Token: w.ownerToken, JSON: map[string]any{"username": "victim@example.com"}},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) { token = r.String(tb, "invite_token") }},
		{Name: "attacker signs up with the address", Req: apitest.Req{Method: "POST", Path: "/v1/users",
			JSON: map[string]any{"username": "victim@example.com", "password": "squatter-pass"}}, Status: 200},
	})
	r := w.login("victim@example.com", "squatter-pass", "particle", "particle")
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	squatToken = r.String(t, "access_token")
	w.Run(t, []apitest.Scenario{
		{Name: "squatter is not a member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: squatToken},
			Status: 403},
		{Name: "squatter cannot mint a product client", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/clients",
			Token: squatToken, Form: form("name", "evil", "type", "installed")}, Status: 403},
		{Name: "squatter sees the invitation", Req: apitest.Req{Method: "GET", Path: "/v1/user/team-invites", Token: squatToken},
			Status: 200, Want: `{"ok":true,"invites":[{"product":{"id":"<number>","slug":"widget","name":"widget"},
				"role":{"id":"administrator","name":"Administrator"},"invited_by":"owner@example.com",
				"created_at":"<iso>","expires_at":"<iso>"}]}`},
		{Name: "squatter cannot accept without the token", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: squatToken}, Status: 400, Want: `{"ok":false,"error":"Invalid or expired team invitation"}`},
		{Name: "nor with a guessed token", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: squatToken, JSON: map[string]any{"token": "0123456789abcdef0123456789abcdef01234567"}},
			Status: 400, Want: `{"ok":false,"error":"Invalid or expired team invitation"}`},
		{Name: "the team sees it pending", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/team/invites", Token: w.ownerToken},
			Status: 200, Want: `{"ok":true,"invites":[{"username":"victim@example.com","role":{"id":"administrator","name":"Administrator"},
				"invited_by":"owner@example.com","created_at":"<iso>","expires_at":"<iso>"}]}`},
		{Name: "not listed as a member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/team", Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				for _, m := range r.Map(tb)["team"].([]any) {
					if m.(map[string]any)["username"] == "victim@example.com" {
						tb.Error("pending invitee listed in the team")
					}
				}
			}},
		{Name: "the owner withdraws the invitation", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/victim@example.com",
			Token: w.ownerToken}, Status: 200},
		{Name: "a withdrawn token is dead", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: squatToken, JSON: map[string]any{"token": &token}}, Status: 400},
		{Name: "nothing left to withdraw", Req: apitest.Req{Method: "DELETE", Path: "/v1/products/widget/team/victim@example.com",
			Token: w.ownerToken}, Status: 404, Want: `{"ok":false,"error":"User is not a team member"}`},
	})
}

// TestInviteAccept covers the path of an account that existed before the
// invitation: pending until accepted with the token while logged in as
// the invited address, refused to any other account, expiry, declining.
func TestInviteAccept(t *testing.T) {
	w := newWorld(t, api.Config{})
	invite := func(username, role string) string {
		t.Helper()
		r := w.Do(apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w.ownerToken,
			JSON: map[string]any{"username": username, "role": role}})
		if r.Status != 200 {
			t.Fatalf("invite: %d %s", r.Status, r.Body)
		}
		return r.String(t, "invite_token")
	}
	tok := invite(otherName, "Support")
	renewed := invite(otherName, "Developer") // a second invitation replaces the first
	w.Run(t, []apitest.Scenario{
		{Name: "existing account is not a member yet", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken},
			Status: 403},
		{Name: "the replaced token is dead", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.otherToken, JSON: map[string]any{"token": tok}}, Status: 400},
		{Name: "another account cannot use the token", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.ownerToken, JSON: map[string]any{"token": renewed}},
			Status: 403, Want: `{"ok":false,"error":"This invitation is for another e-mail address: log in as the invited address to accept it"}`},
		{Name: "nor a customer", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.customerToken, JSON: map[string]any{"token": renewed}}, Status: 403},
		{Name: "the invitee accepts", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.otherToken, Form: form("token", renewed)},
			Status: 200, Want: `{"ok":true,"product":{"id":"<number>","slug":"widget","name":"widget"},"role":{"id":"developer","name":"Developer"}}`},
		{Name: "now a member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken}, Status: 200},
		{Name: "listed with its role", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/team", Token: w.ownerToken},
			Status: 200, Check: func(tb testing.TB, r *apitest.Resp) {
				found := false
				for _, m := range r.Map(tb)["team"].([]any) {
					m := m.(map[string]any)
					if m["username"] == otherName {
						found = m["role"].(map[string]any)["name"] == "Developer" && m["_id"] == w.other.ID
					}
				}
				if !found {
					tb.Errorf("member not listed as a Developer: %s", r.Body)
				}
			}},
		{Name: "a token works once", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.otherToken, JSON: map[string]any{"token": renewed}}, Status: 400},
		{Name: "no pending invitations left", Req: apitest.Req{Method: "GET", Path: "/v1/user/team-invites", Token: w.otherToken},
			Status: 200, Want: `{"ok":true,"invites":[]}`},
	})

	// Declining, and expiry.
	w2 := newWorld(t, api.Config{InviteLifetime: time.Hour})
	tok2 := func() string {
		r := w2.Do(apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w2.ownerToken,
			JSON: map[string]any{"username": otherName}})
		return r.String(t, "invite_token")
	}
	tok2()
	w2.Run(t, []apitest.Scenario{
		{Name: "decline", Req: apitest.Req{Method: "DELETE", Path: "/v1/user/team-invites/widget", Token: w2.otherToken}, Status: 200},
		{Name: "decline twice", Req: apitest.Req{Method: "DELETE", Path: "/v1/user/team-invites/widget", Token: w2.otherToken},
			Status: 404, Want: `{"ok":false,"error":"No pending invitation to this product"}`},
		{Name: "decline unknown product", Req: apitest.Req{Method: "DELETE", Path: "/v1/user/team-invites/nope", Token: w2.otherToken},
			Status: 404},
	})
	late := tok2()
	w2.Clock.Advance(time.Hour)
	w2.Run(t, []apitest.Scenario{
		{Name: "expired", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w2.otherToken, JSON: map[string]any{"token": late}}, Status: 400},
		{Name: "expired invitations are not listed", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget/team/invites",
			Token: w2.ownerToken}, Status: 200, Want: `{"ok":true,"invites":[]}`},
	})
}

// TestInviteByMail checks that with e-mail configured the token goes to
// the invited mailbox (an SMTP server on 127.0.0.1), not to the inviter,
// and that the mailed token accepts.
func TestInviteByMail(t *testing.T) {
	relay := mailtest.New(t, mailtest.Options{})
	sender, err := mail.New(mail.Config{Addr: relay.Addr(), From: "wick@example.com", TLS: mail.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldOpts(t, apitest.Options{Mail: sender, Config: api.Config{PublicURL: "https://wick.example.com"}})
	w.Run(t, []apitest.Scenario{
		{Name: "invite", Req: apitest.Req{Method: "POST", Path: "/v1/products/widget/team", Token: w.ownerToken,
			JSON: map[string]any{"username": otherName, "role": "View-only"}},
			Status: 200, Want: `{"ok":true,"invited":{"username":"other@example.com","role":{"id":"view-only","name":"View-only"},
				"pending":true,"expires_at":"<iso>"},"invite_sent":true}`},
	})
	m := relay.Wait(t, 1, 10*time.Second)[0]
	if m.To != otherName || m.Header.Get("Subject") != "Invitation to the team of widget" {
		t.Fatalf("mail to %q: %v", m.To, m.Header)
	}
	match := regexp.MustCompile(`https://wick\.example\.com/v1/user/team-invites/accept[\s\S]*token=([0-9a-f]{40})`).FindStringSubmatch(m.Body)
	if match == nil {
		t.Fatalf("no accept command in the mail:\n%s", m.Body)
	}
	w.Run(t, []apitest.Scenario{
		{Name: "accept with the mailed token", Req: apitest.Req{Method: "POST", Path: "/v1/user/team-invites/accept",
			Token: w.otherToken, JSON: map[string]any{"token": match[1]}}, Status: 200},
		{Name: "member", Req: apitest.Req{Method: "GET", Path: "/v1/products/widget", Token: w.otherToken}, Status: 200},
	})
}
