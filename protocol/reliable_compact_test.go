package protocol

import (
	"testing"
	"time"
)

// TestDedupCompact: compacting keeps every remembered ID with its replies,
// shrinks the ring to them, and the Dedup goes on working (growing again).
func TestDedupCompact(t *testing.T) {
	for _, n := range []int{0, 1, 3, 8, 11} {
		var d Dedup
		now := time.Unix(1000, 0)
		for i := range n {
			d.Receive(now, uint16(100+i))
			d.Reply(uint16(100+i), []byte{0x60, 0, 0, byte(i)})
		}
		d.Compact()
		if d.Len() != n || len(d.ring) != n || len(d.ids) != n {
			t.Fatalf("n=%d: Len %d, ring %d, ids %d after Compact", n, d.Len(), len(d.ring), len(d.ids))
		}
		for i := range n {
			dup, replies := d.Receive(now, uint16(100+i))
			if !dup || len(replies) != 1 || replies[0][3] != byte(i) {
				t.Fatalf("n=%d: ID %d after Compact: dup %v replies % x", n, 100+i, dup, replies)
			}
		}
		if dup, _ := d.Receive(now, 7); dup {
			t.Fatalf("n=%d: a new ID is a duplicate after Compact", n)
		}
		if d.Len() != n+1 {
			t.Fatalf("n=%d: Len %d after a new ID", n, d.Len())
		}
		d.Expire(now.Add(ExchangeLifetime))
		if d.Len() != 0 {
			t.Fatalf("n=%d: %d IDs left after their lifetime", n, d.Len())
		}
	}
}
