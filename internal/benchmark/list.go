package benchmark

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// Loopback is the list scenario's limit, measured in the same run: one
// client asks and a server writes a response of the list's size over a
// loopback TCP connection, again and again, so the lists/s beside it read
// as a fraction of what copying the bytes costs on this machine now.
type Loopback struct {
	// PerSec is round trips (a one-byte request, the whole response) per
	// second over one connection.
	PerSec float64 `json:"per_sec"`
	// P50 is the median round trip in milliseconds.
	P50 float64 `json:"p50_ms"`
	// Bytes is the size of each response.
	Bytes int64 `json:"bytes"`
}

// measureLoopback runs round trips of size-byte responses over a loopback
// TCP connection for about d.
func measureLoopback(ctx context.Context, size int, d time.Duration) (*Loopback, error) {
	if size <= 0 {
		return nil, fmt.Errorf("benchmark: loopback: size %d", size)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchmark: loopback: %w", err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		body := make([]byte, size)
		req := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, req); err != nil {
				served <- nil // the client closed
				return
			}
			if _, err := c.Write(body); err != nil {
				served <- err
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("benchmark: loopback: %w", err)
	}
	buf := make([]byte, 64<<10)
	var lats []time.Duration
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		t0 := time.Now()
		if _, err := c.Write([]byte{'?'}); err != nil {
			c.Close()
			return nil, fmt.Errorf("benchmark: loopback: %w", err)
		}
		for n := 0; n < size; {
			k, err := c.Read(buf)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("benchmark: loopback: %w", err)
			}
			n += k
		}
		lats = append(lats, time.Since(t0))
	}
	elapsed := time.Since(start)
	c.Close()
	if err := <-served; err != nil {
		return nil, fmt.Errorf("benchmark: loopback: %w", err)
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("benchmark: loopback: no round trip")
	}
	slices.Sort(lats)
	return &Loopback{
		PerSec: float64(len(lats)) / elapsed.Seconds(),
		P50:    float64(lats[len(lats)/2]) / float64(time.Millisecond),
		Bytes:  int64(size),
	}, nil
}
