package sqlstore

import (
	"strings"
	"testing"
)

// TestPresenceIndexPlans checks that SQLite uses the partial indexes of
// migration 0019 for the queries that say their conditions: the stamp of
// an owner's and a customer's list from the version indexes alone, and a
// node's devices from devices_node.
func TestPresenceIndexPlans(t *testing.T) {
	db := openSQLiteFile(t)
	defer db.Close()
	cases := []struct {
		query string
		args  []any
		want  string
	}{
		{`SELECT COUNT(*), COALESCE(MAX(row_version), 0) FROM devices WHERE owner_id = ? AND owner_id <> ''`,
			[]any{"u"}, "COVERING INDEX devices_owner_version"},
		{`SELECT COUNT(*), COALESCE(MAX(row_version), 0) FROM devices WHERE customer_id = ? AND customer_id <> ''`,
			[]any{"c"}, "COVERING INDEX devices_customer_version"},
		{`SELECT id FROM devices WHERE node = ? AND node <> '' AND (last_handshake_at IS NULL OR last_handshake_at < ?) LIMIT ?`,
			[]any{"n", 1, 10}, "INDEX devices_node"},
	}
	for _, c := range cases {
		rows, err := db.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, c.want) {
			t.Errorf("%s: plan %q; want %s", c.query, p, c.want)
		}
	}
}
