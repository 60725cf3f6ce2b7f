package api

import (
	"context"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// request is one API call as a handler sees it.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	route  *route
	params params
	form   *multipart.Form // multipart bodies only
	ip     string          // rate-limit key of the client
	now    time.Time

	// principal is the authenticated token's subject (token policies).
	principal *auth.Principal
	// user is the acting developer account: set by the basic-user policy,
	// or loaded on demand for user tokens by (*server).currentUser.
	user *store.User
	// product is the product of a team route, resolved from {p}.
	product *store.Product
	// teamPending is set while a user's team check is deferred to the
	// handler (deferTeam); product is nil until it is done.
	teamPending bool
}

// statusWriter records the status for the access log and for panic
// recovery. It passes Flush and Unwrap through for streaming handlers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data (SSE).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// CORS values of docs/particle-api.md#cors.
const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
	corsHeaders = "Authorization, Content-Type, Accept, X-Requested-With, X-Particle-Tool, X-Particle-Project"
)

// ServeHTTP runs the request pipeline described in the package comment.
func (s *server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "api: panic",
				slog.String("method", r.Method), logPath(r), slog.Any("panic", v))
			if w.status == 0 {
				s.writeError(w, r, fmt.Errorf("api: panic: %v", v))
			}
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
				slog.String("method", r.Method), logPath(r),
				slog.Int("status", w.status), slog.Duration("duration", time.Since(start)))
		}
	}()
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	// Answers carry tokens and account data: no cache may keep them, and
	// no browser may guess a type other than the one declared. Event
	// streams replace Cache-Control with no-cache (sse.go).
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if err := s.serve(w, r); err != nil {
		if w.status != 0 {
			// The response is under way (a stream): too late to answer.
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "api: error after the response started",
				logPath(r), slog.Any("err", err))
			return
		}
		s.writeError(w, r, err)
	}
}

// serve routes, limits, decodes, authenticates and calls the handler.
func (s *server) serve(w http.ResponseWriter, r *http.Request) error {
	now := s.cfg.Now()
	ip := clientIP(r, s.proxies)
	if ok, retry := s.global.allow(ip, now); !ok {
		return &rateLimitError{retry}
	}
	if r.Method == http.MethodOptions {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", "300")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	rt, vals, allow := s.mux.lookup(r.Method, r.URL.EscapedPath())
	if rt == nil {
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return errMethodNotAllowed
		}
		return errNotFound
	}
	for _, v := range vals {
		r.SetPathValue(v.name, v.value)
	}
	switch rt.limit {
	case limitToken:
		if ok, retry := s.token.allow(ip, now); !ok {
			return &rateLimitError{retry}
		}
	case limitSensitive:
		if ok, retry := s.sensitive.allow(ip, now); !ok {
			return &rateLimitError{retry}
		}
	}
	limit := s.cfg.MaxBodyBytes
	if rt.maxBody > 0 {
		limit = rt.maxBody
	}
	p, form, err := readParams(r, w, limit)
	if err != nil {
		return err
	}
	if form != nil {
		defer form.RemoveAll()
	}
	rq := &request{w: w, r: r, ctx: auth.WithClientAddr(r.Context(), ip), route: rt, params: p, form: form, ip: ip, now: now}
	if err := s.authorize(rq); err != nil {
		return err
	}
	delete(rq.params, "access_token")
	return rt.handler(rq)
}
