package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/bus"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/ratelimit"
	"github.com/wick-cloud/wick/internal/store"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMinPasswordLength = 8
	DefaultGlobalRate        = 10000
	DefaultGlobalWindow      = 5 * time.Minute
	DefaultTokenRate         = 100
	DefaultTokenWindow       = 5 * time.Minute
	DefaultSensitiveRate     = 100
	DefaultSensitiveWindow   = 5 * time.Minute
	DefaultRateLimitKeys     = 100000

	DefaultMaxEventData     = 1024
	DefaultPublishBurst     = 4
	DefaultPublishInterval  = time.Second
	DefaultSSEOpenRate      = 100
	DefaultSSEOpenWindow    = 5 * time.Minute
	DefaultSSEMaxConnsPerIP = 100
	DefaultSSEKeepAlive     = 9 * time.Second
	DefaultSSEBuffer        = 256
	DefaultSSEReplayMax     = 10000
	DefaultSSEWriteTimeout  = 30 * time.Second

	DefaultStreamAuthCheck   = 2 * time.Second
	DefaultStreamAuthRecheck = 30 * time.Second
	DefaultInviteLifetime    = 7 * 24 * time.Hour

	DefaultMaxWebhooks        = 100
	DefaultMaxProductsPerUser = 20
)

// APIUserDomain is the e-mail domain of the accounts created for API users
// (POST /v1/products/:p/team with friendly_name and scopes).
const APIUserDomain = "api.wick.local"

// Config tunes the API. The zero value is usable: every zero field takes
// the default written beside it. Rate fields accept a negative value to
// disable that limit.
type Config struct {
	// Signup opens POST /v1/users to anyone. Default false: the route then
	// answers 403 {"ok":false,"error":"Sign-up is disabled"} and accounts
	// are created by the operator.
	Signup bool
	// MaxBodyBytes bounds a request body (default 1 MiB); larger bodies
	// get 413.
	MaxBodyBytes int64
	// MinPasswordLength is the shortest password accepted for users and
	// customers (default 8 bytes).
	MinPasswordLength int

	// GlobalRate requests per GlobalWindow are allowed from one client IP
	// on all routes together (default 10000 per 5 minutes).
	GlobalRate   int
	GlobalWindow time.Duration
	// TokenRate requests per TokenWindow are allowed from one client IP on
	// POST /oauth/token (default 100 per 5 minutes).
	TokenRate   int
	TokenWindow time.Duration
	// SensitiveRate requests per SensitiveWindow are allowed from one
	// client IP on DELETE /v1/user and POST/PUT /v1/user/password-reset
	// together (default 100 per 5 minutes).
	SensitiveRate   int
	SensitiveWindow time.Duration
	// RateLimitKeys bounds how many client IPs each limiter tracks
	// (default 100000); beyond it, expired entries are swept and then
	// arbitrary ones evicted.
	RateLimitKeys int
	// TrustProxy takes the client IP from X-Forwarded-For when the
	// connection comes from a trusted proxy: one of TrustedProxies, or of
	// DefaultTrustedProxies (loopback and private ranges) when that is
	// empty. The client is the rightmost address not of a trusted proxy.
	// By default the connection's remote address is used. Failed
	// credential checks are limited by auth.Limits, not here.
	TrustProxy bool
	// TrustedProxies are the addresses or ranges of the proxies in front
	// of Wick; a non-empty list implies TrustProxy.
	TrustedProxies []netip.Prefix

	// MaxEventData bounds the data of an event published through the API
	// (default 1024 bytes, Particle's limit for current Device OS); longer
	// data is 400.
	MaxEventData int
	// PublishBurst and PublishInterval rate-limit API publishes per access
	// token with a token bucket: a burst of PublishBurst events, refilled
	// by one every PublishInterval (default 4 and 1 s, the rate Particle
	// allows a device). A negative PublishBurst disables the limit.
	PublishBurst    int
	PublishInterval time.Duration

	// SSEOpenRate event streams may be opened per SSEOpenWindow from one
	// client IP (default 100 per 5 minutes), and at most SSEMaxConnsPerIP
	// streams may be open at once from one IP (default 100); beyond either
	// the open answers 429 before streaming. Negative disables a limit.
	SSEOpenRate      int
	SSEOpenWindow    time.Duration
	SSEMaxConnsPerIP int
	// SSEKeepAlive is the longest silence on an event stream before a
	// ":" comment is sent (default 9 s; particle-api-js gives up after 13
	// to 15 s of silence).
	SSEKeepAlive time.Duration
	// SSEBuffer is each stream's bus buffer in events (default 256); when
	// a client reads too slowly to keep it from filling, further events
	// are dropped for that client only, counted, and announced in the
	// stream by a comment.
	SSEBuffer int
	// SSEReplayMax bounds how many missed events a stream reconnecting
	// with Last-Event-ID replays: the newest SSEReplayMax of those still
	// in the bus's replay window (default 10000).
	SSEReplayMax int
	// SSEWriteTimeout bounds each write to an event stream (default 30 s):
	// a client that accepts no data for that long is disconnected. The
	// http.Server's own WriteTimeout is cleared for streams.
	SSEWriteTimeout time.Duration
	// StreamAuthCheck is how often an open event stream re-checks that its
	// token is still valid (default 2 s): a revoked or expired token ends
	// the stream within about this long. StreamAuthRecheck is how often
	// it re-reads its token and team membership from the store (default
	// 30 s), the bound for changes made where no notice reaches this
	// process. See streamwatch.go.
	StreamAuthCheck   time.Duration
	StreamAuthRecheck time.Duration

	// InviteLifetime is how long a team invitation can be accepted
	// (default 7 days).
	InviteLifetime time.Duration

	// WebhookAllowPrivate lets webhook URLs name loopback and private
	// addresses (netguard.Policy.AllowPrivate; the --webhook-allow-private
	// flag). Link-local and cloud-metadata destinations are refused
	// always. The delivery engine enforces the same policy at connect time.
	WebhookAllowPrivate bool
	// MaxWebhooks bounds the webhooks and integrations of one owner: a
	// user's sandbox, or one product (default 100).
	MaxWebhooks int
	// MaxProductsPerUser bounds the products one user owns (default 20);
	// with MaxWebhooks it bounds the hooks of one account
	// (docs/webhooks.md, Limits).
	MaxProductsPerUser int

	// MaxFirmwareBytes bounds an uploaded firmware binary (default
	// DefaultMaxFirmwareBytes, 4 MiB; docs/ota.md).
	MaxFirmwareBytes int64

	// Now is the clock (default time.Now). Tests inject a fake clock.
	Now func() time.Time
	// PublicURL is the externally visible base URL of the API, such as
	// "https://wick.example.com", for absolute URLs in responses. Empty
	// means URLs are derived from the request's Host.
	PublicURL string
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxFirmwareBytes <= 0 {
		c.MaxFirmwareBytes = DefaultMaxFirmwareBytes
	}
	if c.MinPasswordLength <= 0 {
		c.MinPasswordLength = DefaultMinPasswordLength
	}
	def(&c.GlobalRate, DefaultGlobalRate)
	def(&c.TokenRate, DefaultTokenRate)
	def(&c.SensitiveRate, DefaultSensitiveRate)
	def(&c.RateLimitKeys, DefaultRateLimitKeys)
	defDur(&c.GlobalWindow, DefaultGlobalWindow)
	defDur(&c.TokenWindow, DefaultTokenWindow)
	defDur(&c.SensitiveWindow, DefaultSensitiveWindow)
	def(&c.MaxEventData, DefaultMaxEventData)
	def(&c.PublishBurst, DefaultPublishBurst)
	defDur(&c.PublishInterval, DefaultPublishInterval)
	def(&c.SSEOpenRate, DefaultSSEOpenRate)
	defDur(&c.SSEOpenWindow, DefaultSSEOpenWindow)
	def(&c.SSEMaxConnsPerIP, DefaultSSEMaxConnsPerIP)
	defDur(&c.SSEKeepAlive, DefaultSSEKeepAlive)
	def(&c.SSEBuffer, DefaultSSEBuffer)
	def(&c.SSEReplayMax, DefaultSSEReplayMax)
	defDur(&c.SSEWriteTimeout, DefaultSSEWriteTimeout)
	defDur(&c.StreamAuthCheck, DefaultStreamAuthCheck)
	defDur(&c.StreamAuthRecheck, DefaultStreamAuthRecheck)
	defDur(&c.InviteLifetime, DefaultInviteLifetime)
	def(&c.MaxWebhooks, DefaultMaxWebhooks)
	def(&c.MaxProductsPerUser, DefaultMaxProductsPerUser)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Deps are the services the API serves from. Both fields are required.
type Deps struct {
	// Store holds every persistent aggregate.
	Store store.Store
	// Auth authenticates tokens and runs the OAuth grants.
	Auth *auth.Service
	// Bus carries events (publish, SSE streams). Nil disables the event
	// routes' delivery (tests of other areas may leave it nil): publishes
	// are validated and answered but go nowhere, and streams carry only
	// ":ok" and keep-alives.
	Bus *bus.Bus
	// Devices reaches connected devices, wherever in the cluster they are
	// connected (the gateway routes to other processes over the bus).
	Devices DeviceCaller
	// Webhooks is the webhook delivery engine. Nil is allowed: hooks are
	// still stored, changes notify no one, and POST .../test answers 503.
	Webhooks WebhookRunner
	// Mail sends team invitations and password-reset tokens by e-mail.
	// Nil: nothing is mailed (docs/api.md, E-mail).
	Mail Mailer
	// Firmware starts and plans over-the-air updates (docs/ota.md). Nil:
	// flashing answers 400 and releases queue no updates.
	Firmware FirmwareUpdater
	// Rates, when set, makes the per-address request limits (GlobalRate,
	// TokenRate, SensitiveRate, SSEOpenRate) hold across the servers of a
	// cluster (docs/scaling.md, Limits). Nil: each server counts alone.
	Rates *ratelimit.Shared
}

// DeviceCaller calls connected devices (docs/particle-api.md#device-endpoints).
// *gateway.Gateway implements it. Its errors match, with errors.Is,
// bus.ErrDeviceOffline, bus.ErrTimeout, bus.ErrNoSuchName (unknown function or
// variable) and bus.ErrRefused (argument too long, or refused by the device).
type DeviceCaller interface {
	// CallFunction calls a function and returns its int32 result.
	CallFunction(ctx context.Context, deviceID, name, arg string) (int32, error)
	// GetVariable reads a variable as bool, int32, float64 or string.
	GetVariable(ctx context.Context, deviceID, name string) (any, error)
	// Signal starts or stops the device's rainbow LED.
	Signal(ctx context.Context, deviceID string, on bool) error
	// Ping checks that the device answers.
	Ping(ctx context.Context, deviceID string) error
	// Reload makes an online device re-read its owner and product after
	// the API changed them.
	Reload(ctx context.Context, deviceID string) error
}

// server is the http.Handler returned by New.
type server struct {
	cfg   Config
	store store.Store
	auth  *auth.Service
	log   *slog.Logger
	mux   *router
	// devices reaches connected devices; nil means every device is
	// unreachable (answered as offline).
	devices DeviceCaller

	global    *limiter // nil when disabled
	token     *limiter
	sensitive *limiter
	// proxies are the trusted proxies of clientIP; empty: none.
	proxies proxySet

	// bus carries events (events.go, sse.go); nil disables delivery.
	bus *bus.Bus
	// publish limits API publishes per token; nil when disabled.
	publish *tokenBuckets
	// streams admits and counts event streams (sse.go).
	streams *streamGate
	// watch routes access notices to open streams (streamwatch.go).
	watch *streamWatch
	// mail sends e-mail (mail.go); nil when not configured.
	mail Mailer
	// mailSlots bounds the e-mails being sent at once.
	mailSlots chan struct{}

	// webhooks runs webhook deliveries (webhooks.go); nil when absent.
	webhooks WebhookRunner
	// firmware runs firmware updates (firmware.go); nil when absent.
	firmware FirmwareUpdater
	// urlPolicy checks webhook URLs at creation.
	urlPolicy netguard.Policy
	// hookIDs numbers new webhooks.
	hookIDs *hookIDs
	// devList keeps rendered devices for GET /v1/devices (device_list.go).
	devList *deviceListCache
	// prodList keeps product device orders for GET /v1/products/{p}/devices
	// (product_device_list.go).
	prodList *productListCache
}

// New returns the API handler. log may be nil (nothing is logged). It
// panics if deps.Store or deps.Auth is nil.
func New(cfg Config, deps Deps, log *slog.Logger) http.Handler {
	if deps.Store == nil || deps.Auth == nil {
		panic("api: New needs Deps.Store and Deps.Auth")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &server{
		cfg:       cfg,
		store:     deps.Store,
		auth:      deps.Auth,
		devices:   deps.Devices,
		log:       log,
		global:    newClusterLimiter(deps.Rates, "global", cfg.GlobalRate, cfg.GlobalWindow, cfg.RateLimitKeys),
		token:     newClusterLimiter(deps.Rates, "token", cfg.TokenRate, cfg.TokenWindow, cfg.RateLimitKeys),
		sensitive: newClusterLimiter(deps.Rates, "sensitive", cfg.SensitiveRate, cfg.SensitiveWindow, cfg.RateLimitKeys),
		bus:       deps.Bus,
		publish:   newTokenBuckets(cfg.PublishBurst, cfg.PublishInterval, cfg.RateLimitKeys),
		streams:   newStreamGate(cfg.SSEOpenRate, cfg.SSEOpenWindow, cfg.SSEMaxConnsPerIP, cfg.RateLimitKeys),
		webhooks:  deps.Webhooks,
		firmware:  deps.Firmware,
		urlPolicy: netguard.Policy{AllowPrivate: cfg.WebhookAllowPrivate},
		hookIDs:   newHookIDs(),
		devList:   newDeviceListCache(0),
		prodList:  newProductListCache(0),
		watch:     newStreamWatch(),
		mail:      deps.Mail,
		mailSlots: make(chan struct{}, maxMailsInFlight),
	}
	if deps.Rates != nil {
		s.streams.opens = newClusterLimiter(deps.Rates, "sseopen", cfg.SSEOpenRate, cfg.SSEOpenWindow, cfg.RateLimitKeys)
	}
	switch {
	case len(cfg.TrustedProxies) > 0:
		s.proxies = proxySet(cfg.TrustedProxies)
	case cfg.TrustProxy:
		s.proxies = proxySet(DefaultTrustedProxies)
	}
	s.mux = newRouter(s.routes())
	s.subscribeAccessNotices()
	return s
}
