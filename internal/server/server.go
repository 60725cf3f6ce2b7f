// Package server is Wick's composition root: it builds the store, the auth
// service and the HTTP API from a config.Serve, runs them, and shuts them
// down. It is the only package that knows how the parts fit together.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/wick-cloud/wick/internal/api"
	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/config"
	"github.com/wick-cloud/wick/internal/console"
	"github.com/wick-cloud/wick/internal/firmware"
	"github.com/wick-cloud/wick/internal/gateway"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/netlimit"
	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/rsakey"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/internal/store/sqlstore"
	"github.com/wick-cloud/wick/internal/webhook"
)

// Server is a running Wick instance. Build it with New, start it with Run.
type Server struct {
	cfg   config.Serve
	log   *slog.Logger
	store store.Store
	auth  *auth.Service
	bus   *bus.Bus
	gw    *gateway.Gateway
	hooks *webhook.Engine
	fw    *firmware.Service // OTA updates and product rollouts
	rates *ratelimit.Shared // cluster-wide API limits; nil on one server
	http  *http.Server
	obs   *observer // metrics listener and stats log
	lock  *dataLock // the data directory's lock, held until close

	mu       sync.Mutex
	limited  map[string]*netlimit.Listener // guarded by mu; the capped listeners by name
	httpAddr net.Addr                      // guarded by mu; set once listening
	devAddr  net.Addr                      // guarded by mu; the device TCP listener, nil when disabled
	udpAddr  net.Addr                      // guarded by mu; the device UDP sockets' address, nil when disabled
	ready    chan struct{}
}

// New opens (and migrates) the store and builds every service. Nothing
// listens until Run.
func New(ctx context.Context, cfg config.Serve, log *slog.Logger) (*Server, error) {
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("server: create data directory: %w", err)
	}
	lock, err := lockData(cfg.Data)
	if err != nil {
		return nil, err
	}
	s, err := build(ctx, cfg, log)
	if err != nil {
		lock.release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// build opens the store and builds every service of New.
func build(ctx context.Context, cfg config.Serve, log *slog.Logger) (*Server, error) {
	mailer, err := newMailer(cfg)
	if err != nil {
		return nil, err
	}
	st, au, err := openCore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if n, err := api.SealWebhookCredentials(ctx, st, au); err != nil {
		log.Warn("webhook credentials stored in plaintext by an earlier version were not all sealed", "err", err)
	} else if n > 0 {
		log.Info("sealed the webhook credentials an earlier version stored in plaintext", "hooks", n)
	}
	b, err := bus.Open(ctx, bus.Config{
		URL:          cfg.NATS,
		Replicas:     cfg.NATSReplicas,
		JetStreamDir: filepath.Join(cfg.Data, "jetstream"),
		Node:         cfg.Node,
	}, log)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("server: open bus: %w", err)
	}
	keys, err := loadKeys(ctx, cfg, st, log) // shared by the cluster on PostgreSQL
	if err != nil {
		b.Close()
		st.Close()
		return nil, err
	}
	// The fastest RSA implementation of this build (go, or openssl when
	// built with `make build-openssl`) does the handshake's private-key work.
	serverKey, err := rsakey.Load(keys.RSA)
	if err != nil {
		b.Close()
		st.Close()
		return nil, fmt.Errorf("server: server key: %w", err)
	}
	log.Info("device handshake key loaded", "rsa", rsakey.Name(serverKey))
	gw, err := gateway.New(gateway.Config{Node: cfg.Node, HandshakeIdle: cfg.DeviceHandshakeIdle,
		UDPIdleTimeout: cfg.DeviceUDPIdle, UDPCellularIdleTimeout: cfg.DeviceUDPCellularIdle,
		UDPReachRate:  cfg.DeviceUDPReachRate,
		HandshakeRate: cfg.DeviceHandshakeRate, HandshakeBurst: cfg.DeviceHandshakeBurst,
		MaxStarting: cfg.DeviceAdmission, StartQueue: cfg.DeviceAdmissionQueue}, gateway.Deps{Store: st, Bus: b, ServerKey: serverKey, UDPKey: keys.EC}, log)
	if err != nil {
		b.Close()
		st.Close()
		return nil, fmt.Errorf("server: gateway: %w", err)
	}
	retries := cfg.WebhookRetries
	if retries == 0 {
		retries = -1 // the engine's "none"; its zero means the default
	}
	hooks, err := webhook.New(webhook.Config{
		Timeout: cfg.WebhookTimeout,
		Retries: retries,
		Workers: cfg.WebhookWorkers,
	}, webhook.Deps{
		Store:    st,
		Bus:      b,
		Outbound: netguard.Policy{AllowPrivate: cfg.WebhookAllowPrivate},
		OpenSecret: func(hookID string, sealed []byte) ([]byte, error) {
			return au.OpenSecret(sealed, auth.PurposeWebhookSigning+hookID)
		},
		OpenCredentials: func(hookID string, sealed []byte) ([]byte, error) {
			return au.OpenSecret(sealed, auth.PurposeWebhookCredentials+hookID)
		},
	}, log)
	if err != nil {
		b.Close()
		st.Close()
		return nil, fmt.Errorf("server: webhooks: %w", err)
	}
	fw := firmware.New(firmware.Config{Rate: cfg.OTARate, Node: cfg.Node}, st, gw, log)
	proxies, _ := cfg.TrustedProxyPrefixes() // checked by Resolve
	rates := clusterRates(st, log)
	handler := api.New(api.Config{
		Signup:        cfg.Signup,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		GlobalRate:    cfg.Rate,
		GlobalWindow:  cfg.RateWindow,
		TokenRate:     cfg.TokenRate,
		TokenWindow:   cfg.TokenWindow,
		SensitiveRate: cfg.SensitiveRate,
		TrustProxy:    cfg.TrustProxy,
		PublicURL:     cfg.PublicURL,

		SensitiveWindow:  cfg.RateWindow,
		RateLimitKeys:    cfg.RateLimitKeys,
		TrustedProxies:   proxies,
		SSEOpenRate:      cfg.SSEOpenRate,
		SSEOpenWindow:    cfg.SSEOpenWindow,
		SSEMaxConnsPerIP: cfg.SSEMaxPerIP,

		WebhookAllowPrivate: cfg.WebhookAllowPrivate,
		MaxWebhooks:         cfg.MaxWebhooksPerOwner,
		MaxProductsPerUser:  cfg.MaxProductsPerUser,

		// The API's zero means its default; the config's zero means off.
		PublishBurst:    cmp.Or(cfg.PublishBurst, -1),
		PublishInterval: cfg.PublishInterval,

		StreamAuthCheck:   cfg.StreamAuthCheck,
		StreamAuthRecheck: cfg.StreamAuthRecheck,
		InviteLifetime:    cfg.InviteLifetime,
		MaxFirmwareBytes:  cfg.FirmwareMaxBytes,
	}, api.Deps{Store: st, Auth: au, Bus: b, Devices: gw, Webhooks: hooks, Mail: mailer, Firmware: fw, Rates: rates}, log)
	// Event streams never go idle: end them when shutdown starts, so that
	// http.Server.Shutdown need not wait out its timeout.
	var closeStreams func()
	if c, ok := handler.(interface{ CloseStreams() }); ok {
		closeStreams = c.CloseStreams
	}
	// The web console (internal/console) answers /console/ and browsers
	// opening "/"; every other path is the API's.
	root := http.Handler(handler)
	if ui, err := console.New(log); err != nil {
		log.Warn("console unavailable", "err", err)
	} else {
		root = console.Mount(handler, ui)
	}
	s := &Server{
		cfg:   cfg,
		log:   log,
		store: st,
		auth:  au,
		bus:   b,
		gw:    gw,
		hooks: hooks,
		fw:    fw,
		rates: rates,
		ready: make(chan struct{}),
		http: &http.Server{
			Handler:           bodyDeadline(root, cfg.HTTPBodyTimeout),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	if closeStreams != nil {
		s.http.RegisterOnShutdown(closeStreams)
	}
	s.obs = s.newObserver(handler)
	s.obs.reg.Register("listeners", s.writeListeners)
	return s, nil
}

// openCore opens the store and the auth service over it; the admin
// subcommands share it with New.
func openCore(ctx context.Context, cfg config.Serve, log *slog.Logger) (store.Store, *auth.Service, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, nil, fmt.Errorf("server: create data directory: %w", err)
	}
	key, err := loadSecretKey(cfg.SecretKeyFile)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlstore.Open(ctx, cfg.DB, log)
	if err != nil {
		return nil, nil, fmt.Errorf("server: open store: %w", err)
	}
	lim := authLimits(cfg)
	if st.Shared() {
		lim.Shared = st // lockouts count across the cluster (docs/scaling.md)
	}
	au := auth.New(auth.Config{SecretKey: key, Issuer: "Wick", Limits: lim}, st, log)
	return st, au, nil
}

// Run listens on the configured addresses and serves until ctx ends, then
// shuts down gracefully. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if err := s.hooks.Start(ctx); err != nil {
		s.close()
		return fmt.Errorf("server: start webhooks: %w", err)
	}
	// Every listener is capped below the descriptor limit, raised first
	// to its hard limit (docs/security.md, Connection limits).
	nofile, err := netlimit.RaiseNoFile()
	if err != nil {
		s.log.Warn("server: descriptor limit", "err", err)
	}
	lim := connLimits(s.cfg, nofile)
	s.log.Info(fmt.Sprintf("connection limits: %d descriptors allow %d device connections", nofile, lim.device.Max),
		"nofile", nofile, "device_max", lim.device.Max, "device_per_ip", lim.device.PerIP,
		"http_max", lim.http.Max, "http_per_ip", lim.http.PerIP, "metrics_max", lim.metrics.Max)
	dbg, err := startDebug(s.cfg.DebugAddr, s.log)
	if err != nil {
		s.close()
		return err
	}
	defer dbg.close()
	var ln net.Listener
	ln, err = net.Listen("tcp", s.cfg.HTTP)
	if err != nil {
		s.close()
		return fmt.Errorf("server: listen http %s: %w", s.cfg.HTTP, err)
	}
	ln = s.limit("http", ln, lim.http)
	var devLn net.Listener
	if s.cfg.DeviceTCP != "" {
		devLn, err = net.Listen("tcp", s.cfg.DeviceTCP)
		if err != nil {
			ln.Close()
			s.close()
			return fmt.Errorf("server: listen device tcp %s: %w", s.cfg.DeviceTCP, err)
		}
		devLn = s.limit("device", devLn, lim.device)
	}
	var udpConns []net.PacketConn
	if s.cfg.DeviceUDP != "" {
		// One socket per core, sharing the port (gateway.ListenUDP).
		udpConns, err = gateway.ListenUDP(s.cfg.DeviceUDP, runtime.GOMAXPROCS(0))
		if err != nil {
			ln.Close()
			if devLn != nil {
				devLn.Close()
			}
			s.close()
			return fmt.Errorf("server: %w", err)
		}
	}
	metricsLn, err := s.obs.listen(s.cfg.Metrics)
	if err != nil {
		ln.Close()
		if devLn != nil {
			devLn.Close()
		}
		for _, pc := range udpConns {
			pc.Close()
		}
		s.close()
		return err
	}
	if metricsLn != nil {
		metricsLn = s.limit("metrics", metricsLn, lim.metrics)
	}
	s.mu.Lock()
	s.httpAddr = ln.Addr()
	devAddr := "disabled"
	if devLn != nil {
		s.devAddr = devLn.Addr()
		devAddr = devLn.Addr().String()
	}
	udpAddr := "disabled"
	if len(udpConns) > 0 {
		s.udpAddr = udpConns[0].LocalAddr()
		udpAddr = s.udpAddr.String()
	}
	s.mu.Unlock()
	where, _ := Locate(s.cfg) // cfg was resolved by New
	s.log.Info("wick listening", "http", ln.Addr().String(), "device_tcp", devAddr, "device_udp", udpAddr, "node", s.cfg.Node,
		"db", where.DB, "nats", natsLabel(s.cfg.NATS), "data", where.Data)
	s.lock.describe("http " + ln.Addr().String() + ", devices " + devAddr)
	s.logNextSteps(ctx, ln.Addr(), s.devAddr, where)
	close(s.ready)

	errc := make(chan error, 3+len(udpConns))
	go func() { errc <- s.http.Serve(ln) }()
	s.obs.start(metricsLn, errc)
	if devLn != nil {
		go func() {
			if err := s.gw.Serve(devLn); !errors.Is(err, gateway.ErrClosed) {
				errc <- fmt.Errorf("device gateway: %w", err)
			}
		}()
	}
	for _, pc := range udpConns {
		go func() {
			if err := s.gw.ServeUDP(pc); !errors.Is(err, gateway.ErrClosed) {
				errc <- fmt.Errorf("device gateway udp: %w", err)
			}
		}()
	}
	go s.janitor(ctx)
	s.rates.Start()
	// Firmware rollouts listen on the bus until shutdown, ending before
	// the bus closes.
	fwCtx, fwStop := context.WithCancel(context.WithoutCancel(ctx))
	fwDone := make(chan struct{})
	go func() {
		defer close(fwDone)
		if err := s.fw.Run(fwCtx, s.bus); err != nil {
			s.log.Error("firmware updates stopped", "err", err)
		}
	}()
	stopFirmware := func() { fwStop(); <-fwDone }

	select {
	case err := <-errc:
		s.http.Close()
		s.obs.stop()
		stopFirmware()
		s.close()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("wick shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err = s.http.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.http.Close()
	}
	if gerr := s.gw.Shutdown(shutdownCtx); gerr != nil && err == nil {
		err = gerr
	}
	stopFirmware()
	// Deliveries in flight get the rest of the grace period; the durable
	// queue sends the others after the next start.
	if werr := s.hooks.Stop(shutdownCtx); werr != nil && err == nil {
		err = werr
	}
	// The metrics stay up until here, so that a scrape during shutdown
	// still answers; the stats log reports the last interval.
	s.obs.stop()
	if cerr := s.close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info("wick stopped")
	return nil
}

// close releases the gateway, the webhook engine, the bus and the store,
// in that order.
func (s *Server) close() error {
	s.gw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	s.hooks.Stop(ctx) // a no-op after the graceful Stop in Run
	cancel()
	s.bus.Close()
	s.rates.Close() // a last sync of the counts, before the store closes
	err := s.store.Close()
	s.lock.release() // last: nothing of this process touches the directory now
	return err
}

// DeviceTCPAddr is the device gateway's address, nil before Ready or when
// the TCP gateway is disabled.
func (s *Server) DeviceTCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devAddr
}

// DeviceUDPAddr is the address of the device gateway's UDP sockets (Gen 3
// devices), nil before Ready or when the UDP gateway is disabled.
func (s *Server) DeviceUDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddr
}

// natsLabel describes the bus for the start-up log line.
func natsLabel(url string) string {
	if url == "" {
		return "embedded"
	}
	return redactDSN(url)
}

// Ready is closed once Run is listening.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// HTTPAddr is the address the API listens on, nil before Ready.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpAddr
}

// janitor deletes expired tokens and challenges every ten minutes.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.store.DeleteExpired(ctx, time.Now())
			if err != nil {
				s.log.Warn("janitor: delete expired", "err", err)
			} else if n > 0 {
				s.log.Debug("janitor: deleted expired rows", "count", n)
			}
		}
	}
}

// authLimits maps the credential-limit flags onto auth.Limits
// (docs/security.md, Limits).
func authLimits(cfg config.Serve) auth.Limits {
	queue := cfg.HashQueue
	if queue == 0 {
		queue = -1 // auth's "no queue"; its zero means the default
	}
	return auth.Limits{
		IPFailures:      cfg.TokenFailures,
		IPLockout:       cfg.TokenLockout,
		AccountFailures: cfg.AccountFailures,
		AccountLockout:  cfg.AccountLockout,
		OTPAttempts:     cfg.OTPAttempts,
		HashConcurrency: cfg.HashConcurrency,
		HashQueue:       queue,
		HashWait:        cfg.HashWait,
		Keys:            cfg.RateLimitKeys,
	}
}
