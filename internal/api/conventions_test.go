package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/store"
)

// TestConventions covers docs/particle-api.md#conventions: routing answers,
// encodings, token extraction and the error shapes.
func TestConventions(t *testing.T) {
	w := newWorld(t, api.Config{MaxBodyBytes: 256})
	big := strings.Repeat("x", 300)
	w.Run(t, []apitest.Scenario{
		{Name: "unknown route", Req: apitest.Req{Method: "GET", Path: "/v1/nope"},
			Status: 404, Want: `{"ok":false,"error":"Not Found"}`},
		{Name: "unknown root", Req: apitest.Req{Method: "GET", Path: "/"},
			Status: 404, Want: `{"ok":false,"error":"Not Found"}`},
		{Name: "wrong method", Req: apitest.Req{Method: "PATCH", Path: "/v1/user", Token: w.ownerToken},
			Status: 405, Want: `{"ok":false,"error":"Method Not Allowed"}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if got := r.Header.Get("Allow"); got != "DELETE, GET, PUT" {
					tb.Errorf("Allow = %q", got)
				}
			}},
		{Name: "preflight", Req: apitest.Req{Method: "OPTIONS", Path: "/v1/devices/abc/events/x"}, Status: 204,
			Check: func(tb testing.TB, r *apitest.Resp) {
				for k, v := range map[string]string{
					"Access-Control-Allow-Origin":  "*",
					"Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
					"Access-Control-Allow-Headers": "Authorization, Content-Type, Accept, X-Requested-With, X-Particle-Tool, X-Particle-Project",
					"Access-Control-Max-Age":       "300",
				} {
					if got := r.Header.Get(k); got != v {
						tb.Errorf("%s = %q, want %q", k, got, v)
					}
				}
			}},
		{Name: "CORS on errors too", Req: apitest.Req{Method: "GET", Path: "/v1/user"}, Status: 400,
			Want: `{"error":"invalid_request","error_description":"The access token was not found"}`,
			Check: func(tb testing.TB, r *apitest.Resp) {
				if r.Header.Get("Access-Control-Allow-Origin") != "*" {
					tb.Error("no CORS header")
				}
			}},
		{Name: "trailing slash and unknown query", Req: apitest.Req{Method: "GET", Path: "/v1/user/?nonce=0.42", Token: w.ownerToken},
			Status: 200},
		{Name: "bearer null", Req: apitest.Req{Method: "GET", Path: "/v1/user", Header: http.Header{"Authorization": {"Bearer null"}}},
			Status: 401, Want: `{"error":"invalid_token","error_description":"The access token provided is invalid."}`},
		{Name: "expired token", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.expiredToken},
			Status: 401, Want: `{"error":"invalid_token","error_description":"The access token provided has expired."}`},
		{Name: "revoked token", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.revokedToken},
			Status: 401, Want: `{"error":"invalid_token","error_description":"The access token provided is invalid."}`},
		{Name: "token in query", Req: apitest.Req{Method: "GET", Path: "/v1/user?access_token=" + w.ownerToken},
			Status: 200},
		{Name: "token in form body of PUT", Req: apitest.Req{Method: "PUT", Path: "/v1/user",
			Body: "access_token=" + w.ownerToken + "&account_info[first_name]=Ada", ContentType: "application/x-www-form-urlencoded"},
			Status: 200},
		{Name: "token in JSON body", Req: apitest.Req{Method: "PUT", Path: "/v1/user",
			JSON: map[string]any{"access_token": w.ownerToken, "account_info": map[string]any{"last_name": "Lovelace"}}},
			Status: 200},
		{Name: "header wins over query", Req: apitest.Req{Method: "GET", Path: "/v1/user?access_token=" + w.revokedToken, Token: w.ownerToken},
			Status: 200},
		{Name: "header wins even when bad", Req: apitest.Req{Method: "GET", Path: "/v1/user?access_token=" + w.ownerToken, Token: w.revokedToken},
			Status: 401},
		{Name: "query wins over body", Req: apitest.Req{Method: "PUT", Path: "/v1/user?access_token=" + w.ownerToken,
			JSON: map[string]any{"access_token": w.revokedToken, "account_info": map[string]any{}}},
			Status: 200},
		{Name: "malformed JSON", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body: `{"account_info":`, ContentType: "application/json"},
			Status: 400, Want: `{"ok":false,"error":"Malformed JSON body"}`},
		{Name: "JSON array", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body: `[1,2]`, ContentType: "application/json"},
			Status: 400, Want: `{"ok":false,"error":"JSON body must be an object"}`},
		{Name: "JSON scalar", Req: apitest.Req{Method: "POST", Path: "/oauth/token", Body: `"x"`, ContentType: "application/json"},
			Status: 400, Want: `{"ok":false,"error":"JSON body must be an object"}`},
		{Name: "trailing garbage after JSON", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body: `{} {}`, ContentType: "application/json"},
			Status: 400, Want: `{"ok":false,"error":"Malformed JSON body"}`},
		{Name: "XML", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body: `<user/>`, ContentType: "text/xml"},
			Status: 415, Want: `{"ok":false,"error":"Unsupported Content-Type: use application/json or application/x-www-form-urlencoded"}`},
		{Name: "huge body", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			JSON: map[string]any{"account_info": map[string]any{"first_name": big}}},
			Status: 413, Want: `{"ok":false,"error":"Request body too large"}`},
		{Name: "empty JSON body is fine", Req: apitest.Req{Method: "DELETE", Path: "/v1/access_tokens/current",
			Token: w.victimToken, ContentType: "application/json"},
			Status: 200, Want: `{"ok":true}`},
		{Name: "no content type sniffs JSON", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body: `{"account_info":{"first_name":"Grace"}}`},
			Status: 200},
		{Name: "multipart fields", Req: apitest.Req{Method: "PUT", Path: "/v1/user", Token: w.ownerToken,
			Body:        "--XX\r\nContent-Disposition: form-data; name=\"account_info[company_name]\"\r\n\r\nWick\r\n--XX--\r\n",
			ContentType: "multipart/form-data; boundary=XX"},
			Status: 200},
		{Name: "profile after the updates", Req: apitest.Req{Method: "GET", Path: "/v1/user", Token: w.ownerToken},
			Status: 200, Want: `{"username":"owner@example.com","subscription_ids":[],
				"account_info":{"first_name":"Grace","last_name":"Lovelace","company_name":"Wick","business_account":false},
				"mfa":{"enabled":false},"wifi_device_count":0,"cellular_device_count":0,"tos":0,"memberships":[],
				"scim_provisioned":false,"no_password":false}`},
	})
}

// failingStore fails or panics on UserByID.
type failingStore struct {
	store.Store
	panics bool
}

func (f failingStore) UserByID(ctx context.Context, id string) (*store.User, error) {
	if f.panics {
		panic("boom")
	}
	return nil, errors.New("disk on fire: secret detail")
}

// TestInternalErrors checks that failures and panics become a 500 JSON
// body that leaks nothing.
func TestInternalErrors(t *testing.T) {
	for _, panics := range []bool{false, true} {
		w := newWorldOpts(t, apitest.Options{WrapStore: func(s store.Store) store.Store {
			return failingStore{Store: s, panics: panics}
		}})
		// A product token reads no user: still fine.
		if r := w.Do(apitest.Req{Method: "GET", Path: "/v1/access_tokens/current", Token: w.productToken}); r.Status != 200 {
			t.Errorf("current token: %d %s", r.Status, r.Body)
		}
		r := w.Do(apitest.Req{Method: "GET", Path: "/v1/user/identify", Token: w.otherToken})
		if r.Status != 500 {
			t.Fatalf("panics=%v: status %d, want 500", panics, r.Status)
		}
		apitest.MatchJSON(t, r.Body, `{"ok":false,"error":"Internal server error"}`)
	}
}
