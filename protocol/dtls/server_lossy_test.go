package dtls

import (
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// lossyNet is one direction of a network that drops, repeats and
// reorders datagrams, driven by a seeded generator.
type lossyNet struct {
	r     *rand.Rand
	queue [][]byte
}

// send queues b: lost, once, or twice, at a random place among those queued.
func (n *lossyNet) send(b []byte) {
	copies := 1
	switch p := n.r.Float64(); {
	case p < 0.2:
		copies = 0
	case p < 0.4:
		copies = 2
	}
	for range copies {
		i := len(n.queue)
		if n.r.Float64() < 0.3 {
			i = n.r.IntN(len(n.queue) + 1)
		}
		n.queue = append(n.queue[:i], append([][]byte{bytes.Clone(b)}, n.queue[i:]...)...)
	}
}

// recv takes the next datagram.
func (n *lossyNet) recv() ([]byte, bool) {
	if len(n.queue) == 0 {
		return nil, false
	}
	b := n.queue[0]
	n.queue = n.queue[1:]
	return b, true
}

// TestHandshakeLossyNetwork runs ClientHandshake against ServerHandshake
// over a network that drops, repeats and reorders datagrams, each side
// reading every datagram through one buffer overwritten after each call as
// the socket loops do, with the server driven as the gateway drives it
// (stateless HelloVerifyRequests, then one handshake per client random).
// Every handshake must either finish with the same keys on both sides or
// time out: never a refused CertificateVerify or Finished.
func TestHandshakeLossyNetwork(t *testing.T) {
	for _, verifying := range []bool{false, true} {
		name := "go"
		if verifying {
			name = "verifying ECDH"
		}
		t.Run(name, func(t *testing.T) { testHandshakeLossyNetwork(t, verifying) })
	}
}

func testHandshakeLossyNetwork(t *testing.T, verifying bool) {
	devKey := mustP256(t)
	s := newTestServer(t, devKey)
	s.cfg.InitialTimeout = 100 * time.Millisecond
	if verifying {
		calls := 0
		s.cfg.Crypto = goVerifyingECDH{goCrypto{cryptorand.Reader}, &calls}
	}
	seeds := 300
	if testing.Short() {
		seeds = 60
	}
	finished := 0
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		c, err := NewClientHandshake(&ClientConfig{Key: devKey, ServerKey: &s.cfg.Key.PublicKey,
			InitialTimeout: time.Duration(50+r.IntN(150)) * time.Millisecond, ConnectionID: []byte{1, 2, 3, 4, 5, 6, 7, 8}})
		if err != nil {
			t.Fatal(err)
		}
		up, down := &lossyNet{r: r}, &lossyNet{r: r}
		now := t0
		for _, b := range c.Start(now) {
			up.send(b)
		}
		var (
			hs                   *ServerHandshake
			sbuf, cbuf           = make([]byte, 2048), make([]byte, 2048)
			cDone, sDone, failed bool
		)
		overwrite := func(b []byte) {
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		}
		for step := 0; step < 10000 && !(cDone && sDone) && !failed; step++ {
			if d, ok := up.recv(); ok {
				n := copy(sbuf, d)
				var out [][]byte
				var err error
				if hs == nil {
					var h *ServerHandshake
					out, h, err = s.cfg.HandleClientHello(now, testAddr, sbuf[:n])
					if err == nil && h != nil {
						hs = h
					}
					err = nil // noise for the stateless step
				} else {
					out, sDone, err = hs.HandleDatagram(now, testAddr, sbuf[:n])
				}
				overwrite(sbuf)
				if err != nil {
					if errors.Is(err, ErrBadCertificateVerify) || errors.Is(err, ErrBadFinished) || errors.Is(err, ErrUnexpectedMessage) {
						t.Fatalf("seed %d: server refused a good device: %v", seed, err)
					}
					failed = true
				}
				for _, b := range out {
					down.send(b)
				}
				continue
			}
			if d, ok := down.recv(); ok {
				n := copy(cbuf, d)
				out, done, err := c.HandleDatagram(now, cbuf[:n])
				overwrite(cbuf)
				if err != nil {
					t.Fatalf("seed %d: client: %v", seed, err)
				}
				cDone = cDone || done
				for _, b := range out {
					up.send(b)
				}
				continue
			}
			// Both queues empty: the earlier timer fires.
			next, ok := c.NextTimeout()
			if hs != nil {
				if st, sok := hs.NextTimeout(); sok && (!ok || st.Before(next)) {
					next, ok = st, true
				}
			}
			if !ok {
				break
			}
			now = next
			out, err := c.HandleTimeout(now)
			if err != nil {
				failed = true
			}
			for _, b := range out {
				up.send(b)
			}
			if hs != nil {
				out, err := hs.HandleTimeout(now)
				if err != nil {
					failed = true
				}
				for _, b := range out {
					down.send(b)
				}
			}
		}
		if !cDone || !sDone {
			continue // timed out: lost too much, which is allowed
		}
		finished++
		cs, ss := c.Session(), hs.Session()
		if !bytes.Equal(cs.MasterSecret, ss.MasterSecret) || !ss.DeviceKey.Equal(&devKey.PublicKey) {
			t.Fatalf("seed %d: the two sides' sessions differ", seed)
		}
	}
	if finished < seeds/2 {
		t.Fatalf("only %d of %d handshakes finished", finished, seeds)
	}
	t.Logf("%d of %d handshakes finished", finished, seeds)
}
