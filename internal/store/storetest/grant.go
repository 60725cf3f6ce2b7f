package storetest

import (
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// grantTests cover store.OAuthGrants: create and update keeping CreatedAt,
// a grant of an unknown client, listing per subject, deletion taking the
// client's tokens for that subject (and no others), and a deleted client
// taking its grants.
var grantTests = []test{
	{"SaveAndList", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := addUser(t, s, "grant@example.com")
		addClient(t, s, "web-a", u.ID, 0)
		addClient(t, s, "web-b", u.ID, 0)
		g := store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-a", Scope: "*:*",
			CreatedAt: base, UpdatedAt: base}
		must(t, s.SaveOAuthGrant(ctx, &g))
		checkEqual(t, "saved grant", g, store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-a",
			Scope: "*:*", CreatedAt: at(0), UpdatedAt: at(0)})
		g2 := store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-a", Scope: "devices:list products:list",
			CreatedAt: base.Add(time.Hour), UpdatedAt: base.Add(time.Hour)}
		must(t, s.SaveOAuthGrant(ctx, &g2))
		checkEqual(t, "updated grant", g2, store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-a",
			Scope: "devices:list products:list", CreatedAt: at(0), UpdatedAt: at(time.Hour)})
		got, err := s.OAuthGrant(ctx, store.KindUser, u.ID, "web-a")
		must(t, err)
		checkEqual(t, "OAuthGrant", *got, g2)
		_, err = s.OAuthGrant(ctx, store.KindCustomer, u.ID, "web-a")
		wantErr(t, "OAuthGrant(other kind)", err, store.ErrNotFound)
		wantErr(t, "SaveOAuthGrant(unknown client)", s.SaveOAuthGrant(ctx, &store.OAuthGrant{Kind: store.KindUser,
			SubjectID: u.ID, ClientID: "nope", Scope: "*:*"}), store.ErrNotFound)
		must(t, s.SaveOAuthGrant(ctx, &store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-b",
			Scope: "*:*", CreatedAt: base.Add(2 * time.Hour), UpdatedAt: base.Add(2 * time.Hour)}))
		list, err := s.OAuthGrantsBySubject(ctx, store.KindUser, u.ID)
		must(t, err)
		if len(list) != 2 || list[0].ClientID != "web-b" || list[1].ClientID != "web-a" {
			t.Fatalf("OAuthGrantsBySubject = %+v, want web-b then web-a", list)
		}
		if none, err := s.OAuthGrantsBySubject(ctx, store.KindUser, "someone-else"); err != nil || len(none) != 0 {
			t.Errorf("OAuthGrantsBySubject(other) = %v, %v; want none", none, err)
		}
		// Deleting the client deletes its grants.
		must(t, s.DeleteClient(ctx, "web-b"))
		_, err = s.OAuthGrant(ctx, store.KindUser, u.ID, "web-b")
		wantErr(t, "OAuthGrant(deleted client)", err, store.ErrNotFound)
	}},
	{"DeleteRevokesTokens", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := addUser(t, s, "grant@example.com")
		p := addProduct(t, s, "grant-prod", u)
		cu := addCustomer(t, s, p.ID, "cust@example.com")
		addClient(t, s, "web-a", u.ID, 0)
		addClient(t, s, "shop", "", p.ID)
		must(t, s.SaveOAuthGrant(ctx, &store.OAuthGrant{Kind: store.KindUser, SubjectID: u.ID, ClientID: "web-a", Scope: "*:*"}))
		must(t, s.SaveOAuthGrant(ctx, &store.OAuthGrant{Kind: store.KindCustomer, SubjectID: cu.ID, ClientID: "shop", Scope: "*:*"}))
		mine := addToken(t, s, "t-web-a", store.Token{UserID: u.ID, ClientID: "web-a"})
		addRefresh(t, s, "r-web-a", mine)
		addToken(t, s, "t-cli", store.Token{UserID: u.ID, ClientID: "particle"})
		addToken(t, s, "t-cust", store.Token{Kind: store.KindCustomer, CustomerID: cu.ID, ProductID: p.ID, ClientID: "shop"})
		hashes, err := s.DeleteOAuthGrant(ctx, store.KindUser, u.ID, "web-a")
		must(t, err)
		checkStrings(t, "DeleteOAuthGrant hashes", hashes, []string{"t-web-a"})
		checkPresence(t, "token", tokenExists, s, map[string]bool{"t-web-a": false, "t-cli": true, "t-cust": true})
		checkPresence(t, "refresh", refreshExists, s, map[string]bool{"r-web-a": false})
		_, err = s.DeleteOAuthGrant(ctx, store.KindUser, u.ID, "web-a")
		wantErr(t, "DeleteOAuthGrant(again)", err, store.ErrNotFound)
		hashes, err = s.DeleteOAuthGrant(ctx, store.KindCustomer, cu.ID, "shop")
		must(t, err)
		checkStrings(t, "DeleteOAuthGrant(customer) hashes", hashes, []string{"t-cust"})
		checkPresence(t, "token", tokenExists, s, map[string]bool{"t-cust": false, "t-cli": true})
	}},
}
