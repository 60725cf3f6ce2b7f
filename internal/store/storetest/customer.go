package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

var customerTests = []test{
	{"CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		before := time.Now()
		c := &store.Customer{ProductID: 10001, Email: "c@example.com", PasswordHash: "$argon2id$c"}
		must(t, s.CreateCustomer(ctx, c))
		after := time.Now()
		if !hexID.MatchString(c.ID) {
			t.Errorf("ID = %q; want 24 lower-case hex characters", c.ID)
		}
		got, err := s.CustomerByID(ctx, c.ID)
		must(t, err)
		checkStamped(t, "CreatedAt", got.CreatedAt, before, after)
		checkStamped(t, "UpdatedAt", got.UpdatedAt, before, after)
		want := &store.Customer{ID: c.ID, ProductID: 10001, Email: "c@example.com", PasswordHash: "$argon2id$c",
			CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt}
		checkEqual(t, "CustomerByID", got, want)
		got, err = s.CustomerByEmail(ctx, 10001, "c@example.com")
		must(t, err)
		checkEqual(t, "CustomerByEmail", got, want)

		// A shadow customer (no password), with a given ID and times.
		shadow := &store.Customer{ID: "abcdefabcdefabcdefabcdef", ProductID: 10001, Email: "device-owner-7",
			CreatedAt: base, UpdatedAt: base.Add(time.Second)}
		must(t, s.CreateCustomer(ctx, shadow))
		got, err = s.CustomerByID(ctx, "abcdefabcdefabcdefabcdef")
		must(t, err)
		checkEqual(t, "shadow customer", got, &store.Customer{ID: "abcdefabcdefabcdefabcdef", ProductID: 10001,
			Email: "device-owner-7", CreatedAt: at(0), UpdatedAt: at(time.Second)})
	}},
	{"ConflictAndNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := addCustomer(t, s, 10001, "same@example.com")
		err := s.CreateCustomer(ctx, &store.Customer{ProductID: 10001, Email: "same@example.com"})
		wantErr(t, "CreateCustomer(same product and e-mail)", err, store.ErrConflict)
		// The same e-mail in another product is another customer.
		other := addCustomer(t, s, 10002, "same@example.com")
		if other.ID == c.ID {
			t.Errorf("customers of two products share ID %q", c.ID)
		}
		got, err := s.CustomerByEmail(ctx, 10002, "same@example.com")
		must(t, err)
		if got.ID != other.ID {
			t.Errorf("CustomerByEmail(10002) = %q; want %q", got.ID, other.ID)
		}

		_, err = s.CustomerByID(ctx, "ffffffffffffffffffffffff")
		wantErr(t, "CustomerByID", err, store.ErrNotFound)
		_, err = s.CustomerByEmail(ctx, 10003, "same@example.com")
		wantErr(t, "CustomerByEmail(other product)", err, store.ErrNotFound)
		err = s.UpdateCustomer(ctx, &store.Customer{ID: "ffffffffffffffffffffffff", PasswordHash: "x"})
		wantErr(t, "UpdateCustomer", err, store.ErrNotFound)
		wantErr(t, "DeleteCustomer", s.DeleteCustomer(ctx, "ffffffffffffffffffffffff"), store.ErrNotFound)
	}},
	{"List", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		// Created out of time order, two with the same time: listed by
		// creation time, then ID.
		var all []store.Customer
		for i, offset := range []time.Duration{4, 1, 3, 1, 2} {
			c := &store.Customer{
				ID:        fmt.Sprintf("%024x", 5-i), // ties break on ID
				ProductID: 10001, Email: fmt.Sprintf("c%d@example.com", i),
				CreatedAt: base.Add(offset * time.Minute), UpdatedAt: base.Add(offset * time.Minute),
			}
			must(t, s.CreateCustomer(ctx, c))
			c.CreatedAt, c.UpdatedAt = at(offset*time.Minute), at(offset*time.Minute)
			all = append(all, *c)
		}
		addCustomer(t, s, 10002, "elsewhere@example.com")
		// all[3] (ID ...02) and all[1] (ID ...04) share the earliest time.
		ordered := []store.Customer{all[3], all[1], all[4], all[2], all[0]}

		for _, tc := range []struct {
			page store.Page
			want []store.Customer
		}{
			{store.Page{}, ordered},
			{store.Page{Number: 1, Size: 2}, ordered[0:2]},
			{store.Page{Number: 2, Size: 2}, ordered[2:4]},
			{store.Page{Number: 3, Size: 2}, ordered[4:]},
			{store.Page{Number: 4, Size: 2}, nil},
			{store.Page{Number: 1, Size: 10}, ordered},
			{store.Page{Number: 0, Size: 3}, ordered[0:3]}, // below 1: the first page
		} {
			name := fmt.Sprintf("page %d size %d", tc.page.Number, tc.page.Size)
			got, total, err := s.ListCustomers(ctx, 10001, tc.page)
			must(t, err)
			if total != 5 {
				t.Errorf("%s: total = %d; want 5", name, total)
			}
			checkList(t, name, got, tc.want)
		}
		got, total, err := s.ListCustomers(ctx, 10009, store.Page{})
		must(t, err)
		if total != 0 || len(got) != 0 {
			t.Errorf("ListCustomers(no customers) = %d items, total %d; want none", len(got), total)
		}
	}},
	{"Update", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := addCustomer(t, s, 10001, "c@example.com")
		orig, err := s.CustomerByID(ctx, c.ID)
		must(t, err)
		// Only PasswordHash and UpdatedAt are mutable.
		must(t, s.UpdateCustomer(ctx, &store.Customer{
			ID: c.ID, ProductID: 99, Email: "changed@example.com", PasswordHash: "new-hash",
			CreatedAt: base, UpdatedAt: base.Add(time.Hour),
		}))
		got, err := s.CustomerByID(ctx, c.ID)
		must(t, err)
		want := *orig
		want.PasswordHash, want.UpdatedAt = "new-hash", at(time.Hour)
		checkEqual(t, "after update", got, &want)

		before := time.Now()
		must(t, s.UpdateCustomer(ctx, &store.Customer{ID: c.ID, PasswordHash: ""}))
		got, err = s.CustomerByID(ctx, c.ID)
		must(t, err)
		if got.PasswordHash != "" {
			t.Errorf("PasswordHash = %q; want cleared", got.PasswordHash)
		}
		checkStamped(t, "UpdatedAt (zero given)", got.UpdatedAt, before, time.Now())
	}},
	{"DeleteCascades", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		gone := addCustomer(t, s, 10001, "gone@example.com")
		kept := addCustomer(t, s, 10001, "kept@example.com")
		gt := addToken(t, s, "tok-gone", store.Token{Kind: store.KindCustomer, CustomerID: gone.ID, ProductID: 10001})
		kt := addToken(t, s, "tok-kept", store.Token{Kind: store.KindCustomer, CustomerID: kept.ID, ProductID: 10001})
		pt := addToken(t, s, "tok-product", store.Token{Kind: store.KindProduct, ProductID: 10001})
		addRefresh(t, s, "ref-gone", gt)
		addRefresh(t, s, "ref-kept", kt)
		addRefresh(t, s, "ref-product", pt)

		must(t, s.DeleteCustomer(ctx, gone.ID))
		_, err := s.CustomerByID(ctx, gone.ID)
		wantErr(t, "CustomerByID(deleted)", err, store.ErrNotFound)
		wantErr(t, "DeleteCustomer(again)", s.DeleteCustomer(ctx, gone.ID), store.ErrNotFound)
		// The e-mail is free again.
		addCustomer(t, s, 10001, "gone@example.com")
		checkPresence(t, "token", tokenExists, s, map[string]bool{"tok-gone": false, "tok-kept": true, "tok-product": true})
		checkPresence(t, "refresh token", refreshExists, s, map[string]bool{"ref-gone": false, "ref-kept": true, "ref-product": true})
	}},
}
