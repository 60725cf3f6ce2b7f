package server

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/wick-cloud/wick/internal/config"
)

// logNextSteps logs, after the listening line, who can reach the
// listeners and, while the store holds no account, how to create the
// first one (docs/operations.md, Start-up log).
func (s *Server) logNextSteps(ctx context.Context, httpAddr, devAddr net.Addr, where Where) {
	httpScope, devScope := scope(httpAddr), "off"
	if devAddr != nil {
		devScope = scope(devAddr)
	}
	switch {
	case httpScope == "loopback" && (devScope == "loopback" || devScope == "off"):
		s.log.Info("reachable from this host only (loopback); to serve devices and clients on your network listen on all interfaces, e.g. --http :8080 --device-tcp :5683",
			"http", httpScope, "device_tcp", devScope)
	default:
		s.log.Info("listener reach", "http", httpScope, "device_tcp", devScope)
	}
	n, err := s.store.CountUsers(ctx)
	if err != nil || n > 0 {
		return
	}
	s.log.Info("no account yet; create the first one with: " + createUserHint(s.cfg, where))
}

// createUserHint is the command line that creates an account in the data
// this server uses.
func createUserHint(cfg config.Serve, where Where) string {
	var b strings.Builder
	b.WriteString("echo 'a-long-password' | wick user create you@example.com --password-stdin --data ")
	b.WriteString(shellQuote(where.Data))
	if cfg.DB != config.DefaultDB(cfg.Data) {
		b.WriteString(" --db ")
		b.WriteString(shellQuote(where.DB))
	}
	return b.String()
}

// scope says who can connect to a listener: "loopback" (this host),
// "all interfaces", or the specific address.
func scope(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	switch {
	case !ok:
		return addr.String()
	case tcp.IP.IsLoopback():
		return "loopback"
	case tcp.IP == nil || tcp.IP.IsUnspecified():
		return "all interfaces"
	}
	return fmt.Sprintf("address %s", tcp.IP)
}

// shellQuote quotes s for a POSIX shell when it holds anything beyond
// safe path characters.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:@+,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
