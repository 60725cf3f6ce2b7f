package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// dedupStep is one call on a Dedup in a table test: Receive (reply == nil)
// or Reply (reply != nil) at t0+at.
type dedupStep struct {
	at      time.Duration
	id      uint16
	reply   []byte
	dup     bool     // Receive: want dup
	replies []string // Receive: want these replies
	ok      bool     // Reply: want stored
}

func TestDedup(t *testing.T) {
	cases := []struct {
		name  string
		d     Dedup
		steps []dedupStep
		len   int
	}{
		{name: "new then duplicate with cached ACK", steps: []dedupStep{
			{id: 7},
			{id: 7, reply: []byte("ack7"), ok: true},
			{at: 4 * time.Second, id: 7, dup: true, replies: []string{"ack7"}},
			{at: 12 * time.Second, id: 7, dup: true, replies: []string{"ack7"}},
		}, len: 1},
		{name: "duplicate before the reply", steps: []dedupStep{
			{id: 1},
			{at: time.Second, id: 1, dup: true},
			{at: 2 * time.Second, id: 1, reply: []byte("late"), ok: true},
			{at: 3 * time.Second, id: 1, dup: true, replies: []string{"late"}},
		}, len: 1},
		{name: "several replies kept in order", steps: []dedupStep{
			{id: 3},
			{id: 3, reply: []byte("a"), ok: true},
			{id: 3, reply: []byte{}, ok: true},
			{id: 3, reply: []byte("ccc"), ok: true},
			{at: time.Second, id: 3, dup: true, replies: []string{"a", "", "ccc"}},
		}, len: 1},
		{name: "expires after the exchange lifetime", steps: []dedupStep{
			{id: 9},
			{id: 9, reply: []byte("x"), ok: true},
			{at: ExchangeLifetime - time.Nanosecond, id: 9, dup: true, replies: []string{"x"}},
			{at: ExchangeLifetime, id: 9},
			{at: ExchangeLifetime, id: 9, dup: true},
		}, len: 1},
		{name: "custom lifetime", d: Dedup{Lifetime: 10 * time.Second}, steps: []dedupStep{
			{id: 9},
			{at: 9 * time.Second, id: 9, dup: true},
			{at: 10 * time.Second, id: 9},
		}, len: 1},
		{name: "reply for an unknown id is dropped", steps: []dedupStep{
			{id: 1, reply: []byte("x"), ok: false},
			{id: 1},
			{id: 1, dup: true},
		}, len: 1},
		{name: "full: the oldest is forgotten early", d: Dedup{MaxEntries: 3}, steps: []dedupStep{
			{id: 1}, {id: 2}, {id: 3},
			{id: 1, dup: true},
			{id: 4},
			{id: 1}, // evicted, so new again (evicts 2)
			{id: 3, dup: true},
			{id: 2},
		}, len: 3},
		{name: "ids are per value, not ordered", steps: []dedupStep{
			{id: 65535}, {id: 0}, {id: 1},
			{id: 0, dup: true}, {id: 65535, dup: true}, {id: 2},
		}, len: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			for i, s := range c.steps {
				now := t0.Add(s.at)
				if s.reply != nil {
					if ok := d.Reply(s.id, s.reply); ok != s.ok {
						t.Fatalf("step %d: Reply(%d) = %v, want %v", i, s.id, ok, s.ok)
					}
					continue
				}
				dup, replies := d.Receive(now, s.id)
				if dup != s.dup {
					t.Fatalf("step %d: Receive(%d) dup = %v, want %v", i, s.id, dup, s.dup)
				}
				got := make([]string, len(replies))
				for j, r := range replies {
					got[j] = string(r)
				}
				if !slices.Equal(got, s.replies) && (len(got) != 0 || len(s.replies) != 0) {
					t.Fatalf("step %d: replies %q, want %q", i, got, s.replies)
				}
			}
			if d.Len() != c.len {
				t.Errorf("Len = %d, want %d", d.Len(), c.len)
			}
		})
	}
}

func TestDedupReplyCopiesAndRefusesHuge(t *testing.T) {
	var d Dedup
	d.Receive(t0, 5)
	msg := []byte("ack")
	d.Reply(5, msg)
	msg[0] = 'X'
	if _, r := d.Receive(t0, 5); len(r) != 1 || string(r[0]) != "ack" {
		t.Fatalf("replies %q, want the copy [ack]", r)
	}
	if d.Reply(5, make([]byte, 0x10000)) {
		t.Error("Reply of 65536 bytes stored")
	}
	// Appending to a returned reply must not overwrite the next one.
	d.Reply(5, []byte("two"))
	_, r := d.Receive(t0, 5)
	_ = append(r[0], 'Z')
	if _, r = d.Receive(t0, 5); string(r[1]) != "two" {
		t.Errorf("second reply %q after append to the first", r[1])
	}
}

func TestDedupBoundedAndShrink(t *testing.T) {
	d := Dedup{MaxEntries: 50}
	for i := range 1000 {
		d.Receive(t0.Add(time.Duration(i)*time.Millisecond), uint16(i))
		d.Reply(uint16(i), []byte("reply"))
		if d.Len() > 50 || len(d.ring) > 50 {
			t.Fatalf("after %d ids: %d entries, ring %d", i+1, d.Len(), len(d.ring))
		}
	}
	// The 50 newest are remembered, in order.
	for i := 950; i < 1000; i++ {
		if dup, r := d.Receive(t0.Add(time.Second), uint16(i)); !dup || len(r) != 1 {
			t.Fatalf("id %d: dup %v replies %d", i, dup, len(r))
		}
	}
	d.Shrink()
	if d.ring == nil {
		t.Fatal("Shrink released a non-empty Dedup")
	}
	d.Expire(t0.Add(time.Second + ExchangeLifetime))
	if d.Len() != 0 {
		t.Fatalf("Len %d after the lifetime", d.Len())
	}
	d.Shrink()
	if d.ring != nil || d.scratch != nil {
		t.Fatal("Shrink kept the buffers of an empty Dedup")
	}
	if dup, _ := d.Receive(t0.Add(time.Hour), 999); dup {
		t.Fatal("forgotten id reported as duplicate after Shrink")
	}
}

// fixedRand returns r every time.
func fixedRand(r float64) func() float64 { return func() float64 { return r } }

func TestOutboxSchedule(t *testing.T) {
	cases := []struct {
		name    string
		o       Outbox
		resends []time.Duration // offsets of the resends
		giveUp  time.Duration
	}{
		{name: "Particle, factor 1.0", o: Outbox{Rand: fixedRand(0)},
			resends: []time.Duration{4 * time.Second, 12 * time.Second, 28 * time.Second}, giveUp: 60 * time.Second},
		{name: "Particle, factor 1.5 bound", o: Outbox{Rand: fixedRand(0.999999)},
			resends: []time.Duration{6 * time.Second, 18 * time.Second, 42 * time.Second}, giveUp: 90 * time.Second},
		{name: "factor 1.25", o: Outbox{Rand: fixedRand(0.5)},
			resends: []time.Duration{5 * time.Second, 15 * time.Second, 35 * time.Second}, giveUp: 75 * time.Second},
		{name: "no randomness", o: Outbox{RandomFactor: 1, AckTimeout: time.Second, MaxRetransmit: 2},
			resends: []time.Duration{time.Second, 3 * time.Second}, giveUp: 7 * time.Second},
		{name: "no retransmission", o: Outbox{RandomFactor: 1, MaxRetransmit: -1}, giveUp: 4 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			if err := o.Send(t0, 42, []byte("con")); err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for {
				dl, ok := o.NextTimeout()
				if !ok {
					t.Fatal("no timeout armed")
				}
				// Nothing is due a moment before the deadline.
				if r, g := o.HandleTimeout(dl.Add(-time.Microsecond)); len(r)+len(g) != 0 {
					t.Fatalf("due early at %v", dl.Sub(t0))
				}
				resend, gaveUp := o.HandleTimeout(dl)
				if len(gaveUp) == 1 {
					if gaveUp[0] != 42 || len(resend) != 0 {
						t.Fatalf("gave up %v with resend %q", gaveUp, resend)
					}
					// Round to the microsecond: the random factor is applied in floats.
					if d := dl.Sub(t0).Round(time.Millisecond); d != c.giveUp {
						t.Errorf("gave up at %v, want %v", d, c.giveUp)
					}
					break
				}
				if len(resend) != 1 || string(resend[0]) != "con" {
					t.Fatalf("resend %q", resend)
				}
				got = append(got, dl.Sub(t0).Round(time.Millisecond))
			}
			if !slices.Equal(got, c.resends) {
				t.Errorf("resends at %v, want %v", got, c.resends)
			}
			if _, ok := o.NextTimeout(); ok || o.Len() != 0 {
				t.Error("timer still armed after giving up")
			}
		})
	}
}

func TestOutboxRandomFactorWithinBounds(t *testing.T) {
	var o Outbox // default math/rand
	for i := range 500 {
		if err := o.Send(t0, uint16(i%100), []byte{1}); err != nil {
			t.Fatal(err)
		}
		dl, _ := o.NextTimeout()
		if d := dl.Sub(t0); d < AckTimeout || d >= AckTimeout*3/2 {
			t.Fatalf("initial timeout %v outside [4 s, 6 s)", d)
		}
		o.Ack(uint16(i % 100))
	}
}

func TestOutboxAckAndLimits(t *testing.T) {
	o := Outbox{MaxPending: 3, RandomFactor: 1}
	for id := range uint16(3) {
		if err := o.Send(t0.Add(time.Duration(id)*time.Second), id, []byte{byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Send(t0, 1, nil); !errors.Is(err, ErrPendingID) {
		t.Errorf("same id again: %v, want ErrPendingID", err)
	}
	if err := o.Send(t0, 9, nil); !errors.Is(err, ErrOutboxFull) {
		t.Errorf("fourth: %v, want ErrOutboxFull", err)
	}
	if !o.Ack(0) || o.Ack(0) || o.Ack(77) {
		t.Fatal("Ack of pending/acked/unknown id")
	}
	if dl, _ := o.NextTimeout(); !dl.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("next timeout %v, want the second message's at 5 s", dl.Sub(t0))
	}
	// The freed slot is reused; the acked message is never resent.
	if err := o.Send(t0.Add(10*time.Second), 0, []byte("new")); err != nil {
		t.Fatal(err)
	}
	resend, _ := o.HandleTimeout(t0.Add(6 * time.Second))
	got := make([]string, len(resend))
	for i, r := range resend {
		got[i] = string(r)
	}
	slices.Sort(got)
	if want := []string{"\x01", "\x02"}; !slices.Equal(got, want) {
		t.Errorf("resent %q, want %q", got, want)
	}
	o.Clear()
	if o.Len() != 0 {
		t.Fatal("Clear left messages")
	}
	o.Shrink()
	if o.pend != nil {
		t.Fatal("Shrink kept the buffer")
	}
}

func TestOutboxSendCopies(t *testing.T) {
	o := Outbox{RandomFactor: 1}
	msg := []byte("abc")
	o.Send(t0, 1, msg)
	msg[0] = 'X'
	resend, _ := o.HandleTimeout(t0.Add(time.Hour))
	if len(resend) != 1 || string(resend[0]) != "abc" {
		t.Fatalf("resend %q, want the copy", resend)
	}
}

// TestReliableExchangeOverLossyLink runs two endpoints over a simulated link
// that loses the first copy of every CON and, for even IDs, the first two
// ACKs too: every CON reaches the handler exactly once, and every sender
// sees its ACK before giving up.
func TestReliableExchangeOverLossyLink(t *testing.T) {
	var out Outbox
	out.Rand = fixedRand(0)
	var in Dedup
	handled := map[uint16]int{}
	acked := map[uint16]bool{}
	sentCON, sentACK := map[uint16]int{}, map[uint16]int{}
	lost := func(m map[uint16]int, id uint16, n int) bool { m[id]++; return m[id] <= n }

	deliver := func(now time.Time, con []byte) {
		var m Message
		if err := m.Decode(con); err != nil {
			t.Fatal(err)
		}
		if lost(sentCON, m.ID, 1) {
			return
		}
		dup, replies := in.Receive(now, m.ID)
		if !dup {
			handled[m.ID]++
			ack := Message{Type: Acknowledgement, ID: m.ID}
			b, _ := ack.MarshalBinary()
			in.Reply(m.ID, b)
			replies = [][]byte{b}
		}
		for _, r := range replies {
			var a Message
			if err := a.Decode(r); err != nil {
				t.Fatal(err)
			}
			if lost(sentACK, a.ID, int(1-a.ID%2)*2) {
				continue
			}
			if out.Ack(a.ID) {
				acked[a.ID] = true
			}
		}
	}
	now := t0
	for id := uint16(1); id <= 20; id++ {
		m := Message{Type: Confirmable, Code: CodePOST, ID: id, Payload: []byte(fmt.Sprint(id))}
		b, _ := m.MarshalBinary()
		if err := out.Send(now, id, b); err != nil {
			t.Fatal(err)
		}
		deliver(now, b)
	}
	for out.Len() > 0 {
		dl, _ := out.NextTimeout()
		now = dl
		resend, gaveUp := out.HandleTimeout(now)
		if len(gaveUp) > 0 {
			t.Fatalf("gave up on %v", gaveUp)
		}
		for _, r := range resend {
			deliver(now, bytes.Clone(r))
		}
	}
	for id := uint16(1); id <= 20; id++ {
		if handled[id] != 1 || !acked[id] {
			t.Errorf("id %d handled %d times, acked %v", id, handled[id], acked[id])
		}
		// Odd IDs need one resend, even IDs three (the last allowed).
		if want := 2 + int(1-id%2)*2; sentCON[id] != want {
			t.Errorf("id %d sent %d times, want %d", id, sentCON[id], want)
		}
	}
}

// FuzzReliable drives a Dedup and an Outbox with an arbitrary sequence of
// operations and checks their invariants: bounds hold, a duplicate is only
// reported for an ID received within the lifetime, and HandleTimeout never
// returns a message before its deadline.
func FuzzReliable(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 1, 0, 2, 3, 0, 4, 5, 0})
	f.Add([]byte{3, 0, 7, 3, 0, 8, 4, 0, 7, 5, 200, 0, 5, 255, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		d := Dedup{MaxEntries: 8, Lifetime: 10 * time.Second}
		o := Outbox{MaxPending: 4, Rand: fixedRand(0.5)}
		seen := map[uint16]time.Time{} // last time an id was newly remembered
		now := t0
		for len(ops) >= 3 {
			op, id := ops[0]%7, binary.BigEndian.Uint16(ops[1:3])
			ops = ops[3:]
			switch op {
			case 0:
				dup, _ := d.Receive(now, id)
				if at, ok := seen[id]; dup && (!ok || now.Sub(at) >= d.Lifetime) {
					t.Fatalf("id %d reported duplicate, last new at %v", id, at)
				}
				if !dup {
					seen[id] = now
				}
			case 1:
				d.Reply(id, ops[:min(len(ops), int(id%5))])
			case 2:
				d.Expire(now)
				d.Shrink()
			case 3:
				err := o.Send(now, id, []byte{byte(id)})
				if err != nil && !errors.Is(err, ErrOutboxFull) && !errors.Is(err, ErrPendingID) {
					t.Fatal(err)
				}
			case 4:
				o.Ack(id)
			case 5:
				now = now.Add(time.Duration(id) * 10 * time.Millisecond)
				before := map[uint16]time.Time{}
				for _, p := range o.pend {
					before[p.id] = p.deadline
				}
				resend, gaveUp := o.HandleTimeout(now)
				for _, r := range resend {
					if len(r) != 1 {
						t.Fatalf("resent %x", r)
					}
				}
				for _, g := range gaveUp {
					if now.Before(before[g]) {
						t.Fatalf("gave up on %d before its deadline", g)
					}
				}
			case 6:
				o.Shrink()
			}
			if d.Len() > 8 || len(d.ring) > 8 || o.Len() > 4 {
				t.Fatalf("bounds: dedup %d/%d, outbox %d", d.Len(), len(d.ring), o.Len())
			}
		}
	})
}

// BenchmarkDedupReceive is the gateway's per-CON cost: a new ID remembered
// with its ACK, then the duplicate answered from the cache, in a Dedup
// kept full at its default size.
func BenchmarkDedupReceive(b *testing.B) {
	var d Dedup
	ack := []byte{0x60, 0, 0, 0}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := uint16(i)
		now = now.Add(time.Millisecond)
		if dup, _ := d.Receive(now, id); dup {
			b.Fatal("new id reported duplicate")
		}
		d.Reply(id, ack)
		if dup, r := d.Receive(now, id); !dup || len(r) != 1 {
			b.Fatal("duplicate not answered")
		}
	}
}

// BenchmarkOutbox is one outgoing CON's life: sent, its timer consulted,
// acknowledged, with 16 others pending.
func BenchmarkOutbox(b *testing.B) {
	var o Outbox
	msg := make([]byte, 64)
	for id := range uint16(16) {
		o.Send(t0, 1000+id, msg)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := uint16(i % 900)
		if err := o.Send(t0, id, msg); err != nil {
			b.Fatal(err)
		}
		o.NextTimeout()
		o.HandleTimeout(t0.Add(time.Second))
		if !o.Ack(id) {
			b.Fatal("not pending")
		}
	}
}

// TestOutboxPending: Pending lists every unacknowledged message and leaves
// the retransmission schedule as it was.
func TestOutboxPending(t *testing.T) {
	o := Outbox{RandomFactor: 1}
	now := time.Unix(1000, 0)
	if got := o.Pending(); len(got) != 0 {
		t.Fatalf("empty outbox: %d pending", len(got))
	}
	for id := uint16(1); id <= 3; id++ {
		if err := o.Send(now, id, []byte{byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	o.Ack(2)
	before, _ := o.NextTimeout()
	got := map[byte]bool{}
	for _, m := range o.Pending() {
		got[m[0]] = true
	}
	if len(got) != 2 || !got[1] || !got[3] {
		t.Fatalf("pending %v; want messages 1 and 3", got)
	}
	if after, _ := o.NextTimeout(); !after.Equal(before) {
		t.Fatalf("next timeout moved from %v to %v", before, after)
	}
	if resend, _ := o.HandleTimeout(now.Add(AckTimeout)); len(resend) != 2 {
		t.Fatalf("first timeout resends %d; want 2 (Pending counts as no resend)", len(resend))
	}
}
