package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// debugServer serves Go's profiling endpoints (/debug/pprof/) on their own
// listener, --debug-addr (docs/operations.md#profiling). It is off by
// default; the endpoints show the process's memory, goroutines and CPU,
// so the listener belongs on loopback, where a bare ":PORT" puts it.
type debugServer struct {
	srv  *http.Server
	addr net.Addr
}

// debugListenAddr returns addr with an empty host made 127.0.0.1.
func debugListenAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// startDebug listens on addr and serves the profiling endpoints until
// close; "" starts nothing (nil, nil). A non-loopback address is allowed
// but warned about.
func startDebug(addr string, log *slog.Logger) (*debugServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", debugListenAddr(addr))
	if err != nil {
		return nil, fmt.Errorf("server: listen debug %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.Warn("debug endpoints listen beyond loopback: they expose the process's memory and goroutines", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &debugServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr(),
	}
	log.Info("debug endpoints listening", "addr", ln.Addr().String())
	go func() {
		if err := d.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug endpoints stopped", "err", err)
		}
	}()
	return d, nil
}

// close stops the listener and its requests; nil-safe.
func (d *debugServer) close() {
	if d != nil {
		d.srv.Close()
	}
}
