package storetest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wick-cloud/wick/internal/store"
)

// FleetDevice returns device i (from 0) of the n-device product fleet the
// product list benchmarks write: ID d0 and i in hex, name dev-i, platform
// 12, product version i%5, one in 50 quarantined, one in 4 owned by one of
// customers, one in 50 by ownerID, and a last handshake spread over n
// seconds after base in an order that is not the ID order (none for one
// in 10, which never connected).
func FleetDevice(i, n int, productID int64, customers []string, ownerID string, base time.Time) store.Device {
	d := store.Device{ID: fmt.Sprintf("d0%022x", i), Name: "dev-" + strconv.Itoa(i), ProductID: productID,
		PlatformID: 12, ProductVersion: i % 5, Quarantined: i%50 == 0}
	switch {
	case i%4 == 1:
		d.CustomerID = customers[i*7%len(customers)]
	case i%50 == 2:
		d.OwnerID = ownerID
	}
	if i%10 != 0 {
		at := base.Add(time.Duration(i*7919%n) * time.Second)
		d.LastHandshakeAt = &at
	}
	return d
}

// FleetCustomers creates n customers of productID (customer-i@example.com)
// in st for FleetDevice, and returns their IDs.
func FleetCustomers(tb testing.TB, st store.Customers, productID int64, n int) []string {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		c := &store.Customer{ProductID: productID, Email: fmt.Sprintf("customer-%d@example.com", i), PasswordHash: "x"}
		if err := st.CreateCustomer(context.Background(), c); err != nil {
			tb.Fatal(err)
		}
		ids[i] = c.ID
	}
	return ids
}
