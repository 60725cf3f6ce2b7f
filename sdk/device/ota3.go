package device

import (
	"bytes"
	"fmt"
	"time"

	"github.com/wick-cloud/wick/protocol"
)

// OTA v3 (OTAOptions.V3; protocol/ota3.go), as Device OS builds it for
// Gen 3 platforms: UpdateStart, NON chunks within a receive window
// acknowledged by UpdateAck bitmaps, UpdateFinish. A transfer that breaks
// off is kept (by the file's SHA-256) and resumed where it stopped, as
// Device OS does with its transfer state.

// otaPartial is the part of a file a device received before its
// transfer broke off, kept across connections (guarded by Device.mu).
type otaPartial struct {
	sha  []byte
	data []byte // the whole file's buffer
	have int    // bytes held in order from the start
}

// otaRecv3 is an OTA v3 update in progress on one connection (reading
// goroutine only).
type otaRecv3 struct {
	size     int // chunk size
	offset   int // bytes held before this transfer (chunk 1 starts here)
	n        uint32
	window   uint32
	inOrder  uint32 // chunks received in order
	got      []bool // by chunk index (1-based)
	unacked  int
	arrived  int
	lost     map[uint32]bool
	partial  *otaPartial
	received int // chunks received, duplicates included (stats)
	dups     int
}

func (s *session) ota3Start(m *protocol.Message) error {
	opts, d := &s.d.cfg.OTA, s.d
	tok, hasTok := m.Token1()
	u, err := protocol.ParseUpdateStart(m)
	if err != nil || !hasTok || opts.Mode == OTARefuse || u.FileSize > d.maxBinarySize() {
		s.ota3 = nil
		return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeServiceUnavailable, nil))
	}
	d.mu.Lock()
	p := d.ota.partial
	if p == nil || u.SHA256 == nil || !bytes.Equal(p.sha, u.SHA256) || len(p.data) != int(u.FileSize) || u.DiscardData {
		p = &otaPartial{sha: u.SHA256, data: make([]byte, u.FileSize)}
		if u.SHA256 != nil {
			d.ota.partial = p
		} else {
			d.ota.partial = nil
		}
	}
	d.mu.Unlock()
	size := int(u.ChunkSize)
	// Resume at a whole chunk: what was held beyond one is received again.
	offset := p.have / size * size
	r := &otaRecv3{size: size, offset: offset, n: uint32(protocol.ChunkCount(int(u.FileSize)-offset, size)),
		window: uint32(max(protocol.OTAv3ReceiveWindow/size, 1)), lost: map[uint32]bool{}, partial: p}
	r.got = make([]bool, r.n+1)
	s.ota3 = r
	d.cfg.Logger.Info("device: update begins (OTA v3)", "device", d.ID(), "bytes", u.FileSize, "chunk", size,
		"resumed_at", offset)
	resp := protocol.NewUpdateStarted(protocol.Confirmable, 0, tok, protocol.UpdateStarted{Window: r.window, Offset: uint32(offset)})
	return s.sendSeparate(m.ID, &resp)
}

func (s *session) ota3Chunk(m *protocol.Message) error {
	r, opts := s.ota3, &s.d.cfg.OTA
	if r == nil {
		return s.reply(protocol.NewReset(m.ID))
	}
	idx, data, err := protocol.ParseUpdateChunk(m)
	if err != nil {
		return nil
	}
	if opts.ChunkDelay > 0 {
		time.Sleep(opts.ChunkDelay)
	}
	r.arrived++
	if opts.Mode == OTADrop {
		after := opts.DropAfter
		if after <= 0 {
			after = max(int(r.n)/2, 1)
		}
		if r.arrived > after {
			s.ota3 = nil
			s.closeConn()
			return fmt.Errorf("device: dropped the connection after %d chunks (OTA drop mode)", after)
		}
	}
	if opts.LoseEvery > 0 && r.arrived%opts.LoseEvery == 0 && !r.lost[idx] {
		r.lost[idx] = true
		return nil // lost on the way
	}
	r.received++
	last := idx == r.n
	wantLen := r.size
	if last {
		wantLen = len(r.partial.data) - r.offset - int(r.n-1)*r.size
	}
	if idx == 0 || idx > r.n || len(data) != wantLen || idx > r.inOrder+r.window {
		return nil
	}
	dup := r.got[idx]
	if dup {
		r.dups++
	} else {
		start := r.offset + int(idx-1)*r.size
		copy(r.partial.data[start:], data)
		r.got[idx] = true
		for r.inOrder < r.n && r.got[r.inOrder+1] {
			r.inOrder++
		}
		s.d.mu.Lock()
		r.partial.have = min(r.offset+int(r.inOrder)*r.size, len(r.partial.data))
		s.d.mu.Unlock()
	}
	r.unacked++
	gaps := false
	for i := r.inOrder + 1; i <= r.n && i <= r.inOrder+r.window; i++ {
		if r.got[i] {
			gaps = true
			break
		}
	}
	if !(dup || gaps || r.inOrder == r.n || r.unacked >= 2) {
		return nil
	}
	r.unacked = 0
	ack := protocol.UpdateAck{Index: r.inOrder}
	if gaps {
		for i := r.inOrder + 1; i <= r.n && i <= r.inOrder+r.window; i++ {
			ack.Received = append(ack.Received, r.got[i])
		}
	}
	a := protocol.NewUpdateAck(0, ack)
	return s.send(&a, true, nil)
}

func (s *session) ota3Finish(m *protocol.Message) error {
	r, d := s.ota3, s.d
	tok, hasTok := m.Token1()
	cancel, discard, err := protocol.ParseUpdateFinish(m)
	if err != nil || !hasTok || r == nil {
		return s.reply(protocol.NewACK(m.ID, cloneToken(m), protocol.CodeBadRequest, nil))
	}
	if cancel {
		s.ota3 = nil
		if discard {
			d.mu.Lock()
			d.ota.partial = nil
			d.mu.Unlock()
		}
		resp := protocol.NewResponse(protocol.Confirmable, 0, tok, protocol.CodeChanged, nil)
		return s.sendSeparate(m.ID, &resp)
	}
	if r.inOrder != r.n {
		resp := protocol.NewResponse(protocol.Confirmable, 0, tok, protocol.CodeBadRequest, []byte("Incomplete file transfer"))
		return s.sendSeparate(m.ID, &resp)
	}
	stats := fmt.Sprintf(`{"recv_chunks":%d,"dup_chunks":%d}`, r.received, r.dups)
	resp := protocol.NewResponse(protocol.Confirmable, 0, tok, protocol.CodeChanged, []byte(stats))
	if err := s.sendSeparate(m.ID, &resp); err != nil {
		return err
	}
	s.ota3 = nil
	d.mu.Lock()
	d.ota.partial = nil
	d.mu.Unlock()
	// Device OS applies the update once the server acknowledges the 2.04;
	// the simulator reboots at once.
	return s.otaTaken(r.partial.data)
}
