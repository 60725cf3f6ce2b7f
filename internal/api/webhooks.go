package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/netguard"
	"github.com/wick-cloud/wick/internal/store"
	"github.com/wick-cloud/wick/protocol"
)

// WebhookRunner is the webhook delivery engine as the API sees it. The
// engine in package webhook implements it.
type WebhookRunner interface {
	// TestWebhook sends a synthetic test event to h now and returns the attempt as logged.
	TestWebhook(ctx context.Context, h *store.Webhook) (store.WebhookDelivery, error)
	// WebhooksChanged reports that hook id was created, replaced or deleted.
	WebhooksChanged(ctx context.Context, id string)
}

// Limits of a webhook's configuration.
const (
	maxHookEvent     = 64       // bytes of the event prefix
	maxHookName      = 255      // bytes of the display name
	maxHookURL       = 2 << 10  // bytes of the URL
	maxHookTemplates = 16 << 10 // bytes of every other template together
	maxHookHeaders   = 50       // custom headers
	minSigningSecret = 16       // bytes of a signing secret
	maxSigningSecret = 256

	defaultDeliveryLimit = 100  // entries of GET .../deliveries
	maxDeliveryLimit     = 1000 // largest ?limit=
	integrationLogs      = 10   // entries in GET /v1/integrations/:id
)

// Webhook errors (docs/particle-api.md#the-legacy-webhook-api; the others are
// our wording).
var (
	errWebhookNotFound     = errorf(http.StatusNotFound, "Webhook not found")
	errIntegrationNotFound = errorf(http.StatusNotFound, "Integration not found")
	errHookEvent           = errorf(http.StatusBadRequest, "event is required")
	errHookEventLong       = errorf(http.StatusBadRequest, fmt.Sprintf("event must be at most %d bytes", maxHookEvent))
	errHookURL             = errorf(http.StatusBadRequest, "url is required")
	errHookURLLong         = errorf(http.StatusBadRequest, fmt.Sprintf("url must be at most %d bytes", maxHookURL))
	errHookRequestType     = errorf(http.StatusBadRequest, "requestType must be GET, POST, PUT or DELETE")
	errHookBodies          = errorf(http.StatusBadRequest, "Only one of form, json and body may be set")
	errHookJSON            = errorf(http.StatusBadRequest, "json must be an object or a string")
	errHookNameLong        = errorf(http.StatusBadRequest, fmt.Sprintf("name must be at most %d bytes", maxHookName))
	errHookHeaders         = errorf(http.StatusBadRequest, fmt.Sprintf("At most %d headers are allowed", maxHookHeaders))
	errHookTemplates       = errorf(http.StatusBadRequest, fmt.Sprintf("Webhook templates must be at most %d bytes together", maxHookTemplates))
	errHookDevice          = errorf(http.StatusBadRequest, "deviceID must be a device ID or the name of one of your devices")
	errHookSecret          = errorf(http.StatusBadRequest, fmt.Sprintf("signingSecret must be %d to %d bytes", minSigningSecret, maxSigningSecret))
	errHookType            = errorf(http.StatusBadRequest, "integration_type must be a name of letters and digits")
	errHookLimit           = errorf(http.StatusBadRequest, "limit must be a positive whole number")
	errWebhooksOff         = errorf(http.StatusServiceUnavailable, "Webhook delivery is not running")
)

// hookFieldError is a 400 about one field.
func hookFieldError(field, must string) error {
	return errorf(http.StatusBadRequest, field+" must be "+must)
}

// hookInput is a parsed create or replace request.
type hookInput struct {
	hook store.Webhook // Event, Name, DeviceID, Disabled, IntegrationType, Settings
	// device is the device filter as given (ID or name), "" for none.
	device string
	// eventSet reports whether event was given; a replace keeps the
	// stored event when it was not.
	eventSet bool
	// secret is the new signing secret; secretSet reports whether the
	// field was given at all (null or "" removes the secret).
	secret    string
	secretSet bool
}

// hookMetaFields are the request fields that are not settings of an
// opaque integration type.
var hookMetaFields = map[string]bool{
	"access_token": true, "event": true, "eventName": true, "deviceID": true, "deviceid": true,
	"deviceId": true, "integration_type": true, "name": true, "disabled": true, "signingSecret": true,
	"mydevices": true,
}

// parseHookInput reads a webhook or integration from the request
// parameters (docs/particle-api.md#the-legacy-webhook-api,
// docs/particle-api.md#the-integrations-api). Only integrations take
// integration_type, defaulting to defType; the legacy routes always make
// webhooks. The URL is checked later, by checkHookURL.
func parseHookInput(p params, integration bool, defType string) (*hookInput, error) {
	in := &hookInput{}
	h := &in.hook
	h.IntegrationType = store.IntegrationWebhook
	if integration {
		h.IntegrationType = defType
		typ, set, err := hookString(p, "integration_type")
		if err != nil {
			return nil, err
		}
		if set && typ != "" {
			if h.IntegrationType, err = integrationType(typ); err != nil {
				return nil, err
			}
		}
	}
	event, set, err := hookString(p, "event", "eventName")
	if err != nil {
		return nil, err
	}
	in.eventSet = set && event != ""
	h.Event = event
	if len(h.Event) > maxHookEvent {
		return nil, errHookEventLong
	}
	if h.Name, _, err = hookString(p, "name"); err != nil {
		return nil, err
	}
	if len(h.Name) > maxHookName {
		return nil, errHookNameLong
	}
	if in.device, _, err = hookString(p, "deviceID", "deviceid", "deviceId"); err != nil {
		return nil, err
	}
	in.device = strings.TrimSpace(in.device)
	if h.Disabled, err = boolField(p, "disabled", false); err != nil {
		return nil, err
	}
	secret, secretSet, err := hookString(p, "signingSecret")
	if err != nil {
		return nil, err
	}
	_, present := p["signingSecret"]
	in.secret, in.secretSet = secret, secretSet || present
	if secret != "" && (len(secret) < minSigningSecret || len(secret) > maxSigningSecret) {
		return nil, errHookSecret
	}
	if h.IntegrationType != store.IntegrationWebhook {
		extra, err := opaqueSettings(p)
		if err != nil {
			return nil, err
		}
		h.Settings = store.WebhookSettings{Extra: extra}
		return in, nil
	}
	if err := parseWebhookSettings(p, &h.Settings); err != nil {
		return nil, err
	}
	return in, nil
}

// parseWebhookSettings reads the request options of a Webhook.
func parseWebhookSettings(p params, s *store.WebhookSettings) error {
	var err error
	if s.URL, _, err = hookString(p, "url"); err != nil {
		return err
	}
	s.URL = strings.TrimSpace(s.URL)
	method, _, err := hookString(p, "requestType", "method")
	if err != nil {
		return err
	}
	switch s.RequestType = strings.ToUpper(strings.TrimSpace(method)); s.RequestType {
	case "":
		s.RequestType = http.MethodPost
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return errHookRequestType
	}

	bodies := 0
	switch v := p["json"].(type) {
	case nil:
	case string:
		bodies++
		s.JSON = marshalNoEscape(v)
	case map[string]any:
		bodies++
		s.JSON = marshalNoEscape(v)
	default:
		return errHookJSON
	}
	if s.Form, err = stringMap(p, "form"); err != nil {
		return err
	}
	if p["form"] != nil {
		bodies++
	}
	if p["body"] != nil {
		bodies++
		body, _, err := hookString(p, "body")
		if err != nil {
			return err
		}
		s.Body = &body
	}
	if bodies > 1 {
		return errHookBodies
	}
	if s.Query, err = stringMap(p, "query"); err != nil {
		return err
	}
	if s.Headers, err = stringMap(p, "headers"); err != nil {
		return err
	}
	if err := parseHookAuth(p, s); err != nil {
		return err
	}
	if len(s.Headers) > maxHookHeaders {
		return errHookHeaders
	}
	for k, v := range s.Headers {
		if k == "" || strings.ContainsAny(k, "\r\n\x00: ") || strings.ContainsAny(v, "\r\n\x00") {
			return hookFieldError("headers", "names and values without line breaks (and names without spaces or colons)")
		}
	}
	switch v := p["responseTemplate"].(type) {
	case nil:
	case map[string]any, []any:
		s.ResponseTemplate = string(marshalNoEscape(v))
	default:
		s.ResponseTemplate = scalarString(v)
	}
	if s.ResponseTopic, _, err = hookString(p, "responseTopic"); err != nil {
		return err
	}
	if s.ErrorResponseTopic, _, err = hookString(p, "errorResponseTopic"); err != nil {
		return err
	}
	for _, f := range []struct {
		key string
		dst *bool
		def bool
	}{
		{"noDefaults", &s.NoDefaults, false},
		{"rejectUnauthorized", &s.RejectUnauthorized, true},
		{"unchunked", &s.Unchunked, false},
		{"dataUrlResponseEvent", &s.DataURLResponseEvent, false},
	} {
		if *f.dst, err = boolField(p, f.key, f.def); err != nil {
			return err
		}
	}
	if templateBytes(s) > maxHookTemplates {
		return errHookTemplates
	}
	return nil
}

// parseHookAuth reads auth: {"username","password"} (or request's
// {"user","pass"}, as particle-api-js documents it), or {"bearer"}, which
// becomes an Authorization header unless headers set one.
func parseHookAuth(p params, s *store.WebhookSettings) error {
	v, found := p["auth"]
	if !found || v == nil {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return hookFieldError("auth", `an object {"username","password"}`)
	}
	ap := params(m)
	user, _, err := hookString(ap, "username", "user")
	if err != nil {
		return hookFieldError("auth", `an object {"username","password"}`)
	}
	pass, _, err := hookString(ap, "password", "pass")
	if err != nil {
		return hookFieldError("auth", `an object {"username","password"}`)
	}
	if user != "" || pass != "" {
		s.Auth = &store.BasicAuth{Username: user, Password: pass}
	}
	if bearer, _, _ := hookString(ap, "bearer"); bearer != "" {
		for k := range s.Headers {
			if strings.EqualFold(k, "Authorization") {
				return nil
			}
		}
		if s.Headers == nil {
			s.Headers = map[string]string{}
		}
		s.Headers["Authorization"] = "Bearer " + bearer
	}
	return nil
}

// templateBytes is the size of every template of s but the URL.
func templateBytes(s *store.WebhookSettings) int {
	n := len(s.JSON) + len(s.ResponseTemplate) + len(s.ResponseTopic) + len(s.ErrorResponseTopic)
	for _, m := range []map[string]string{s.Form, s.Query, s.Headers} {
		for k, v := range m {
			n += len(k) + len(v)
		}
	}
	if s.Body != nil {
		n += len(*s.Body)
	}
	if s.Auth != nil {
		n += len(s.Auth.Username) + len(s.Auth.Password)
	}
	return n
}

// opaqueSettings keeps every non-meta field of an integration of another
// type, as given.
func opaqueSettings(p params) (map[string]json.RawMessage, error) {
	extra := map[string]json.RawMessage{}
	n := 0
	for k, v := range p {
		if hookMetaFields[k] {
			continue
		}
		raw := marshalNoEscape(v)
		n += len(k) + len(raw)
		extra[k] = raw
	}
	if n > maxHookTemplates {
		return nil, errHookTemplates
	}
	if len(extra) == 0 {
		return nil, nil
	}
	return extra, nil
}

// integrationType validates and normalises an integration_type:
// "webhook" in any case is store.IntegrationWebhook; other types are
// names of up to 64 letters and digits, kept as given.
func integrationType(typ string) (string, error) {
	typ = strings.TrimSpace(typ)
	if strings.EqualFold(typ, store.IntegrationWebhook) {
		return store.IntegrationWebhook, nil
	}
	if typ == "" || len(typ) > 64 {
		return "", errHookType
	}
	for _, c := range typ {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", errHookType
		}
	}
	return typ, nil
}

// hookString returns the first of keys that is present and not null, as a
// string; numbers and booleans are formatted. present is false when none
// is. Objects are an error; a list (a form key given twice) gives its
// first element.
func hookString(p params, keys ...string) (value string, present bool, err error) {
	for _, k := range keys {
		switch v := p[k].(type) {
		case nil:
			continue
		case map[string]any:
			return "", false, hookFieldError(k, "a string")
		default:
			s := scalarString(v)
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				return "", false, hookFieldError(k, "valid UTF-8 without NUL")
			}
			return s, true, nil
		}
	}
	return "", false, nil
}

// stringMap reads an object of scalar values as a map of strings; absent,
// null and empty objects are nil.
func stringMap(p params, key string) (map[string]string, error) {
	v, found := p[key]
	if !found || v == nil {
		return nil, nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, hookFieldError(key, "an object of strings")
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		switch x.(type) {
		case map[string]any, []any:
			return nil, hookFieldError(key, "an object of strings")
		}
		v := scalarString(x)
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, hookFieldError(key, "valid UTF-8")
		}
		out[k] = v
	}
	return out, nil
}

// boolField reads an optional boolean; absent or null is def.
func boolField(p params, key string, def bool) (bool, error) {
	if v, found := p[key]; !found || v == nil {
		return def, nil
	}
	b, ok := p.boolean(key)
	if !ok {
		return false, hookFieldError(key, "true or false")
	}
	return b, nil
}

// marshalNoEscape encodes v as compact JSON without HTML escaping, so
// templates keep their < > & as typed. v comes from decoded parameters
// and always encodes.
func marshalNoEscape(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("api: encode decoded parameters: " + err.Error())
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n"))
}

// checkHookURL validates a Webhook's URL: present, bounded, and allowed by
// the outbound policy (templated hosts are checked at delivery).
func (s *server) checkHookURL(raw string) error {
	if raw == "" {
		return errHookURL
	}
	if len(raw) > maxHookURL {
		return errHookURLLong
	}
	if err := s.urlPolicy.CheckURL(raw); err != nil {
		msg := "url is not allowed: " + strings.TrimPrefix(err.Error(), "netguard: ")
		if !s.urlPolicy.AllowPrivate && (netguard.Policy{AllowPrivate: true}).CheckURL(raw) == nil {
			// Say how the operator lifts this refusal (docs/webhooks.md).
			msg += "; the server allows loopback and private addresses only when started with --webhook-allow-private"
		}
		return errorf(http.StatusBadRequest, msg)
	}
	return nil
}

// buildHook turns a parsed request into the hook to store: it checks the
// required fields and the URL, resolves the device filter, and seals a
// new signing secret. prev is the hook being replaced, or nil; its event,
// type and signing secret stay when the request omits them.
func (s *server) buildHook(rq *request, in *hookInput, prev *store.Webhook) (*store.Webhook, error) {
	h := in.hook
	if prev != nil {
		h.ID, h.UserID, h.ProductID, h.CreatedAt = prev.ID, prev.UserID, prev.ProductID, prev.CreatedAt
		h.Version = prev.Version // a concurrent update fails with store.ErrStale (409)
		if !in.eventSet {
			h.Event = prev.Event
		}
		if !in.secretSet {
			h.Settings.SigningSecret = prev.Settings.SigningSecret
		}
	} else {
		h.ID = s.hookIDs.next()
		h.UserID = rq.principal.UserID
		if rq.product != nil {
			h.ProductID = rq.product.ID
		}
	}
	if h.Event == "" {
		return nil, errHookEvent
	}
	if h.IntegrationType == store.IntegrationWebhook {
		if err := s.checkHookURL(h.Settings.URL); err != nil {
			return nil, err
		}
	}
	if in.device != "" {
		id, err := s.hookDevice(rq, in.device)
		if err != nil {
			return nil, err
		}
		h.DeviceID = id
	}
	if in.secret != "" {
		sealed, err := s.auth.SealSecret([]byte(in.secret), auth.PurposeWebhookSigning+h.ID)
		if err != nil {
			return nil, err
		}
		h.Settings.SigningSecret = sealed
	}
	if err := s.sealHookCredentials(&h); err != nil {
		return nil, err
	}
	return &h, nil
}

// hookDevice resolves a device filter: a device ID (any case), or on a
// user's own hooks the name of one of the user's devices.
func (s *server) hookDevice(rq *request, idOrName string) (string, error) {
	if id, err := protocol.ParseDeviceID(idOrName); err == nil {
		return id.String(), nil
	}
	if rq.product != nil || rq.principal.Kind != store.KindUser {
		return "", errHookDevice
	}
	d, err := s.store.DeviceByOwnerName(rq.ctx, rq.principal.UserID, idOrName)
	if errors.Is(err, store.ErrNotFound) {
		return "", errHookDevice
	}
	if err != nil {
		return "", err
	}
	return d.ID, nil
}

// hookIDs makes webhook IDs shaped like MongoDB ObjectIDs, as
// Particle's are: 24 lower-case hex characters of a 4-byte Unix time in
// seconds, 5 random bytes chosen per server, and a 3-byte counter. IDs
// made by one server increase, so that hooks created within one
// millisecond (the store's time precision) still list in creation order.
type hookIDs struct {
	node    [5]byte
	counter atomic.Uint32
}

func newHookIDs() *hookIDs {
	g := &hookIDs{}
	var seed [3]byte
	rand.Read(g.node[:]) // never fails; see crypto/rand.Read
	rand.Read(seed[:])
	g.counter.Store(uint32(seed[0])<<16 | uint32(seed[1])<<8 | uint32(seed[2]))
	return g
}

// next returns a new ID.
func (g *hookIDs) next() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(time.Now().Unix()))
	copy(b[4:9], g.node[:])
	n := g.counter.Add(1)
	b[9], b[10], b[11] = byte(n>>16), byte(n>>8), byte(n)
	return hex.EncodeToString(b[:])
}

// ownerHooks lists the hooks of the route's owner: product {p}, or the
// calling user's sandbox.
func (s *server) ownerHooks(rq *request) ([]store.Webhook, error) {
	if rq.product != nil {
		return s.store.WebhooksByProduct(rq.ctx, rq.product.ID)
	}
	return s.store.WebhooksByUser(rq.ctx, rq.principal.UserID)
}

// createHook stores a new hook after checking the owner's limit, and
// tells the engine.
func (s *server) createHook(rq *request, h *store.Webhook) error {
	hooks, err := s.ownerHooks(rq)
	if err != nil {
		return err
	}
	if len(hooks) >= s.cfg.MaxWebhooks {
		return errorf(http.StatusBadRequest, fmt.Sprintf("Too many webhooks: the limit is %d per owner", s.cfg.MaxWebhooks))
	}
	if err := s.store.CreateWebhook(rq.ctx, h); err != nil {
		return fmt.Errorf("api: create webhook: %w", err)
	}
	s.hooksChanged(rq, h.ID)
	return nil
}

// hooksChanged tells the delivery engine, if any, that hook id changed.
func (s *server) hooksChanged(rq *request, id string) {
	if s.webhooks != nil {
		s.webhooks.WebhooksChanged(context.WithoutCancel(rq.ctx), id)
	}
}

// findHook returns hook {hook} of the route's owner, or notFound. With
// webhooksOnly, integrations of other types are not found either (the
// legacy routes see only webhooks).
func (s *server) findHook(rq *request, webhooksOnly bool, notFound error) (*store.Webhook, error) {
	id := rq.r.PathValue("hook")
	if !isHookID(id) {
		return nil, notFound
	}
	h, err := s.store.WebhookByID(rq.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if rq.product != nil {
		if h.ProductID != rq.product.ID {
			return nil, notFound
		}
	} else if h.ProductID != 0 || h.UserID != rq.principal.UserID {
		return nil, notFound
	}
	if webhooksOnly && h.IntegrationType != store.IntegrationWebhook {
		return nil, notFound
	}
	return h, nil
}

// isHookID reports whether id has the form of a hook ID (24 lower-case
// hex characters).
func isHookID(id string) bool {
	if len(id) != 24 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// hookURL is the absolute URL of a hook under the route's collection
// (webhooks or integrations, of the user or of product {p}).
func (s *server) hookURL(rq *request, collection, id string) string {
	base := strings.TrimSuffix(s.devicesURL(rq.r), "/v1/devices")
	if rq.product != nil {
		return base + "/v1/products/" + rq.product.Slug + "/" + collection + "/" + id
	}
	return base + "/v1/" + collection + "/" + id
}

// hookJSON renders a hook as the list and get routes show it: every
// stored setting (but the signing secret, shown as "signed"), id,
// created_at, deviceID and integration_type. Settings of other
// integration types appear as given.
func hookJSON(h *store.Webhook) map[string]any {
	out := map[string]any{}
	st := &h.Settings
	for k, v := range st.Extra {
		out[k] = v
	}
	out["id"] = h.ID
	out["integration_type"] = h.IntegrationType
	out["event"] = h.Event
	out["name"] = nullable(h.Name)
	out["deviceID"] = nullable(h.DeviceID)
	out["disabled"] = h.Disabled
	out["created_at"] = isoTime(h.CreatedAt)
	out["updated_at"] = isoTime(h.UpdatedAt)
	if h.ProductID != 0 {
		out["product_id"] = h.ProductID
	}
	out["signed"] = len(st.SigningSecret) > 0
	if h.IntegrationType != store.IntegrationWebhook {
		return out
	}
	out["url"] = st.URL
	out["requestType"] = st.RequestType
	out["noDefaults"] = st.NoDefaults
	out["rejectUnauthorized"] = st.RejectUnauthorized
	out["unchunked"] = st.Unchunked
	out["dataUrlResponseEvent"] = st.DataURLResponseEvent
	if len(st.JSON) > 0 {
		out["json"] = st.JSON
	}
	if st.Form != nil {
		out["form"] = st.Form
	}
	if st.Body != nil {
		out["body"] = *st.Body
	}
	if st.Query != nil {
		out["query"] = st.Query
	}
	if st.Headers != nil {
		out["headers"] = st.Headers
	}
	if st.Auth != nil {
		out["auth"] = st.Auth
	}
	for k, v := range map[string]string{"responseTemplate": st.ResponseTemplate,
		"responseTopic": st.ResponseTopic, "errorResponseTopic": st.ErrorResponseTopic} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// nullable is s, or JSON null when empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// deliveryJSON is one delivery-log entry as the API shows it.
type deliveryJSON struct {
	ID        int64   `json:"id"`
	Time      string  `json:"time"`
	Event     string  `json:"event"`
	EventID   uint64  `json:"event_id"`
	DeviceID  *string `json:"device_id"`
	Attempt   int     `json:"attempt"`
	Method    string  `json:"method"`
	URL       string  `json:"url"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	Error     *string `json:"error"`
	Response  string  `json:"response,omitempty"`
}

func toDeliveryJSON(d *store.WebhookDelivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID, Time: isoTime(d.At), Event: d.EventName, EventID: d.EventID, Attempt: d.Attempt,
		Method: d.Method, URL: d.URL, Status: d.Status, Response: d.Response,
		LatencyMS: float64(d.Latency.Microseconds()) / 1000,
	}
	if d.DeviceID != "" {
		out.DeviceID = &d.DeviceID
	}
	if d.Error != "" {
		out.Error = &d.Error
	}
	return out
}

// deliveriesJSON renders a delivery log; never null.
func deliveriesJSON(log []store.WebhookDelivery) []deliveryJSON {
	out := make([]deliveryJSON, len(log))
	for i := range log {
		out[i] = toDeliveryJSON(&log[i])
	}
	return out
}

// saveNewHook parses a new hook from the request (integration: the
// docs/particle-api.md#the-integrations-api fields, else the legacy
// docs/particle-api.md#the-legacy-webhook-api ones), checks it and stores it.
func (s *server) saveNewHook(rq *request, integration bool) (*store.Webhook, error) {
	in, err := parseHookInput(rq.params, integration, store.IntegrationWebhook)
	if err != nil {
		return nil, err
	}
	h, err := s.buildHook(rq, in, nil)
	if err != nil {
		return nil, err
	}
	if err := s.createHook(rq, h); err != nil {
		return nil, err
	}
	return h, nil
}

// handleCreateWebhook is POST /v1/webhooks and /v1/products/{p}/webhooks
// (docs/particle-api.md#the-legacy-webhook-api): 201
// {"ok":true,"id","url","event","name","created_at","hookUrl"}.
func (s *server) handleCreateWebhook(rq *request) error {
	h, err := s.saveNewHook(rq, false)
	if err != nil {
		return err
	}
	out := map[string]any{
		"ok": true, "id": h.ID, "url": h.Settings.URL, "event": h.Event, "name": nullable(h.Name),
		"requestType": h.Settings.RequestType, "deviceID": nullable(h.DeviceID),
		"created_at": isoTime(h.CreatedAt), "hookUrl": s.hookURL(rq, "webhooks", h.ID),
	}
	if len(h.Settings.SigningSecret) > 0 {
		out["signed"] = true
	}
	return writeJSON(rq.w, http.StatusCreated, out)
}

// handleListWebhooks is GET /v1/webhooks and the product variant: a bare
// array of the owner's hooks of type Webhook, oldest first.
func (s *server) handleListWebhooks(rq *request) error {
	hooks, err := s.ownerHooks(rq)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(hooks))
	for i := range hooks {
		if hooks[i].IntegrationType == store.IntegrationWebhook {
			v, err := s.hookView(&hooks[i])
			if err != nil {
				return err
			}
			out = append(out, v)
		}
	}
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleGetWebhook is GET /v1/webhooks/{hook} and the product variant.
func (s *server) handleGetWebhook(rq *request) error {
	h, err := s.findHook(rq, true, errWebhookNotFound)
	if err != nil {
		return err
	}
	out, err := s.hookView(h)
	if err != nil {
		return err
	}
	noStore(rq.w)
	return writeJSON(rq.w, http.StatusOK, out)
}

// handleDeleteWebhook is DELETE /v1/webhooks/{hook} and the product
// variant: 200 {"ok":true} (docs/particle-api.md#the-legacy-webhook-api,
// docs/particle-api.md#open-questions: particle-cli waits for ok).
func (s *server) handleDeleteWebhook(rq *request) error {
	if err := s.deleteHook(rq, true, errWebhookNotFound); err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, okBody)
}

// deleteHook removes hook {hook} of the route's owner and tells the
// engine.
func (s *server) deleteHook(rq *request, webhooksOnly bool, notFound error) error {
	h, err := s.findHook(rq, webhooksOnly, notFound)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(rq.ctx, h.ID); errors.Is(err, store.ErrNotFound) {
		return notFound
	} else if err != nil {
		return err
	}
	s.hooksChanged(rq, h.ID)
	return nil
}

// handleWebhookDeliveries is GET /v1/webhooks/{hook}/deliveries and the
// product variant (a Wick extension).
func (s *server) handleWebhookDeliveries(rq *request) error {
	return s.hookDeliveries(rq, true, errWebhookNotFound)
}

// hookDeliveries answers {"ok":true,"deliveries":[...]}: up to ?limit=
// (default 100, at most 1000) newest entries of the hook's delivery log,
// newest first.
func (s *server) hookDeliveries(rq *request, webhooksOnly bool, notFound error) error {
	limit := defaultDeliveryLimit
	if raw := rq.r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return errHookLimit
		}
		limit = min(n, maxDeliveryLimit)
	}
	h, err := s.findHook(rq, webhooksOnly, notFound)
	if err != nil {
		return err
	}
	log, err := s.store.WebhookDeliveries(rq.ctx, h.ID, limit)
	if err != nil {
		return err
	}
	return writeJSON(rq.w, http.StatusOK, map[string]any{"ok": true, "deliveries": deliveriesJSON(log)})
}

// testTimeout bounds POST .../test: the 20 s delivery timeout and a margin.
const testTimeout = 25 * time.Second
