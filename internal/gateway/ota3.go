package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/protocol"
)

// OTA v3 (docs/device-protocol.md, "OTA v3"; protocol/ota3.go): for
// devices whose Hello carries flag 0x80. UpdateStart names the file by
// size and SHA-256, so a device that kept part of it from an interrupted
// transfer answers with the offset it holds and only the rest is sent.
// Chunks go NON within the device's window; the device's UpdateAcks say
// which arrived, and what stays unacknowledged is sent again.

// ota3ChunkOverhead is what an UpdateChunk adds to its data (Device OS
// counts 14 bytes).
const ota3ChunkOverhead = 14

// ota3ResendAfter is how long an unacknowledged chunk waits before it is
// sent again (the device acknowledges at least every 200 ms while chunks
// arrive).
const ota3ResendAfter = time.Second

// ota3GapResend is how long a chunk the device reports missing below one
// it received waits before it is sent again (a fast retransmission: it was
// most likely lost).
const ota3GapResend = 100 * time.Millisecond

// load3 fits the chunk size to an OTA v3 device: the Hello's chunk size,
// at least 512 and a multiple of 4, within the device's message size.
func (t *transfer) load3(bin []byte) error {
	s := t.s
	size := max(int(s.hello.OTAChunkSize), protocol.MinOTAv3ChunkSize) &^ 3
	if limit := s.maxIncomingLen(); limit > 0 && size+ota3ChunkOverhead > limit {
		size = (limit - ota3ChunkOverhead) &^ 3
	}
	if size < protocol.MinOTAv3ChunkSize {
		return fmt.Errorf("gateway: device %s takes messages too small for an OTA v3 chunk: %w", s.id, ErrBadRequest)
	}
	t.bin, t.size, t.v3 = bin, size, true
	t.ackSig = make(chan struct{}, 1)
	return nil
}

// start3 sends UpdateStart and reads the device's window and offset.
func (t *transfer) start3(ctx context.Context) error {
	s := t.s
	sum, _ := hex.DecodeString(t.hash)
	resp, err := s.request(ctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
		return protocol.NewUpdateStart(id, tok, protocol.UpdateStart{
			FileSize: uint32(len(t.bin)), ChunkSize: uint32(t.size), SHA256: sum,
		}), nil
	})
	if err != nil {
		return err
	}
	if !resp.Code.IsSuccess() {
		return fmt.Errorf("gateway: device %s answered %s %q: %w", s.id, resp.Code, resp.Payload, ErrUpdateRefused)
	}
	st, err := protocol.ParseUpdateStarted(&resp)
	if err != nil || int(st.Offset) > len(t.bin) {
		return fmt.Errorf("gateway: device %s: update start answer (offset %d): %v: %w", s.id, st.Offset, err, ErrUpdateRefused)
	}
	t.window, t.offset = st.Window, st.Offset
	t.n = protocol.ChunkCount(len(t.bin)-int(st.Offset), t.size)
	t.g.log.Info("gateway: update started (OTA v3)", "device", s.id, "hash", t.hash, "bytes", len(t.bin),
		"chunk", t.size, "chunks", t.n, "window", st.Window, "resumed_at", st.Offset)
	return nil
}

// chunk3 returns chunk i (1-based, counted from the offset).
func (t *transfer) chunk3(i uint32) []byte {
	start := int(t.offset) + int(i-1)*t.size
	return t.bin[start:min(start+t.size, len(t.bin))]
}

// send3 sends the chunks within the device's window until it acknowledged
// them all, then UpdateFinish.
func (t *transfer) send3(ctx context.Context) error {
	s := t.s
	_, udp := s.tr.(*udpConn)
	n := uint32(t.n)
	var acked protocol.UpdateAck
	sentAt := make([]time.Time, n+1)
	progress := time.Now()
	tick := time.NewTicker(ota3ResendAfter / 4)
	defer tick.Stop()
	for acked.Index < n {
		now := time.Now()
		highest := acked.Index + uint32(len(acked.Received)) // the last chunk the device reported
		for i := acked.Index + 1; i <= min(acked.Index+t.window, n); i++ {
			if acked.Has(i) {
				continue
			}
			if !sentAt[i].IsZero() {
				wait := ota3ResendAfter
				if i < highest {
					wait = ota3GapResend
				}
				if now.Sub(sentAt[i]) < wait {
					continue
				}
			}
			if err := s.sendNew(func(id uint16) protocol.Message { return protocol.NewUpdateChunk(id, i, t.chunk3(i)) }); err != nil {
				return s.offline()
			}
			sentAt[i] = now
			t.g.stats.otaChunks.Add(1)
			if udp {
				time.Sleep(t.g.cfg.OTA.UDPChunkInterval)
			}
		}
		select {
		case <-t.ackSig:
			t.ackMu.Lock()
			a := t.ack
			t.ackMu.Unlock()
			if a.Index > acked.Index || (a.Index == acked.Index && len(a.Received) > len(acked.Received)) {
				progress = time.Now()
			}
			if a.Index >= acked.Index {
				acked = a
			}
		case <-tick.C:
		case <-s.done:
			return s.offline()
		case <-ctx.Done():
			return t.ctxErr(ctx, "sending chunks")
		}
		if time.Since(progress) > t.g.cfg.OTA.StallTimeout {
			return fmt.Errorf("gateway: device %s acknowledged no chunk for %s: %w", s.id, t.g.cfg.OTA.StallTimeout, bus.ErrTimeout)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, t.g.cfg.OTA.StallTimeout)
	defer cancel()
	sent := false
	resp, err := s.request(fctx, answerSeparate, func(id uint16, tok byte) (protocol.Message, error) {
		sent = true
		return protocol.NewUpdateFinish(id, tok, false, false), nil
	})
	if err != nil && sent {
		return &unansweredError{err}
	}
	if err != nil {
		return err
	}
	if resp.Code != protocol.CodeChanged {
		return fmt.Errorf("gateway: device %s answered UpdateFinish with %s %q", s.id, resp.Code, resp.Payload)
	}
	t.g.log.Info("gateway: device took the update", "device", s.id, "hash", t.hash, "stats", string(resp.Payload),
		"in", time.Since(t.begun).Round(time.Millisecond))
	return nil
}

// handleUpdateAck passes the device's UpdateAck (POST A) to the update this
// session runs.
func (s *session) handleUpdateAck(m *protocol.Message) {
	if m.Type == protocol.Confirmable {
		s.sendACK(m.ID)
	}
	a, err := protocol.ParseUpdateAck(m)
	if err != nil {
		s.g.stats.messagesBad.Add(1)
		return
	}
	s.g.ota.mu.Lock()
	t := s.g.ota.byID[s.id]
	s.g.ota.mu.Unlock()
	if t == nil || t.s != s || !t.v3 {
		return
	}
	// Only the latest acknowledgement matters: it says all the earlier
	// ones did (bar reordering over UDP, which the next one repairs).
	t.ackMu.Lock()
	if a.Index >= t.ack.Index {
		t.ack = a
	}
	t.ackMu.Unlock()
	select {
	case t.ackSig <- struct{}{}:
	default:
	}
}
