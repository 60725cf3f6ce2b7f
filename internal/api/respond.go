package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wick-cloud/wick/internal/auth"
	"github.com/wick-cloud/wick/internal/store"
)

// Error is an API failure in one of Particle's legacy shapes: with List set
// it renders as {"ok":false,"errors":List}, otherwise as
// {"ok":false,"error":Message} plus "info" when Info is set.
type Error struct {
	Status  int
	Message string
	Info    string
	List    []string
	// Cause is logged, never sent.
	Cause error
}

// Error returns the message, with the cause when there is one.
func (e *Error) Error() string {
	msg := e.Message
	if len(e.List) > 0 {
		msg = e.List[0]
	}
	if e.Cause != nil {
		return "api: " + msg + ": " + e.Cause.Error()
	}
	return "api: " + msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// errorf builds a legacy-shaped *Error.
func errorf(status int, message string) *Error {
	return &Error{Status: status, Message: message}
}

// errorList builds a list-shaped *Error.
func errorList(status int, messages ...string) *Error {
	return &Error{Status: status, List: messages}
}

// Errors shared by several handlers.
var (
	errNotFound         = errorf(http.StatusNotFound, "Not Found")
	errMethodNotAllowed = errorf(http.StatusMethodNotAllowed, "Method Not Allowed")
	errForbidden        = errorf(http.StatusForbidden, "Permission Denied")
	errProductNotFound  = errorf(http.StatusNotFound, "Product not found")
	errAPIUser          = &auth.Error{Status: http.StatusBadRequest, Code: "unauthorized",
		Description: "API users are not allowed to call this endpoint"}
	errMissingClient = &auth.Error{Status: http.StatusBadRequest, Code: "invalid_client",
		Description: "Invalid or missing client_id parameter"}
)

// rateLimitError is a 429 with a Retry-After header.
type rateLimitError struct {
	retryAfter time.Duration
}

func (e *rateLimitError) Error() string { return "api: rate limited" }

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// okBody is the body {"ok":true}.
var okBody = map[string]bool{"ok": true}

// statusClientClosed is the status logged for a request whose client went
// away before the answer (nginx's 499); nobody receives it.
const statusClientClosed = 499

// writeError renders err as the one JSON error body the client sees, and
// logs what the client must not see.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae   *auth.Error
		e    *Error
		rl   *rateLimitError
		le   *auth.LimitError
		busy *deviceBusyError
	)
	switch {
	case errors.As(err, &le) && le.Status == http.StatusServiceUnavailable:
		// Too many password checks at once (auth.Limits.HashQueue).
		w.Header().Set("Retry-After", strconv.FormatInt(max(int64(le.RetryAfter/time.Second), 1), 10))
		_ = writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "server_busy", "error_description": "Too many requests in progress, retry shortly"})
	case errors.As(err, &le):
		s.writeError(w, r, &rateLimitError{le.RetryAfter})
	case errors.As(err, &busy):
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "api: device busy", logPath(r))
		w.Header().Set("Retry-After", strconv.FormatInt(max(int64(busy.retryAfter/time.Second), 1), 10))
		_ = writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"ok": false, "error": "Device is busy: too many requests in flight"})
	case errors.As(err, &rl):
		secs := int64((rl.retryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		_ = writeJSON(w, http.StatusTooManyRequests, map[string]string{
			"error": "rate_limited", "error_description": "Too many requests"})
	case errors.As(err, &ae):
		body := map[string]string{"error": ae.Code, "error_description": ae.Description}
		if ae.MFAToken != "" {
			body["mfa_token"] = ae.MFAToken
		}
		status := ae.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		_ = writeJSON(w, status, body)
	case errors.As(err, &e):
		if e.Cause != nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "api: request failed",
				logPath(r), slog.Int("status", e.Status), slog.Any("err", e.Cause))
		}
		if e.List != nil {
			_ = writeJSON(w, e.Status, struct {
				OK     bool     `json:"ok"`
				Errors []string `json:"errors"`
			}{false, e.List})
			return
		}
		_ = writeJSON(w, e.Status, struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
			Info  string `json:"info,omitempty"`
		}{false, e.Message, e.Info})
	case errors.Is(err, store.ErrNotFound):
		_ = writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "Not Found"})
	case errors.Is(err, store.ErrConflict):
		_ = writeJSON(w, http.StatusConflict, map[string]any{"ok": false, "error": "Already exists"})
	case errors.Is(err, store.ErrStale):
		// Another request (maybe on another server) changed the record
		// since this one read it; redoing the change on a fresh read is
		// the client's decision.
		_ = writeJSON(w, http.StatusConflict, map[string]any{"ok": false, "error": "Changed by another request; read it again and retry"})
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client went away (or the server is shutting down): nobody
		// reads the answer, and it is not a server fault.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "api: request canceled",
			slog.String("method", r.Method), logPath(r), slog.Any("err", err))
		_ = writeJSON(w, statusClientClosed, map[string]any{"ok": false, "error": "Request canceled"})
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "api: internal error",
			slog.String("method", r.Method), logPath(r), slog.Any("err", err))
		_ = writeJSON(w, http.StatusInternalServerError, map[string]any{"ok": false, "error": "Internal server error"})
	}
}

// isoTime formats t as docs/particle-api.md#responses-and-errors wants:
// ISO-8601 UTC with milliseconds.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// isoTimePtr is isoTime for an optional instant; nil becomes JSON null.
func isoTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := isoTime(*t)
	return &s
}

// tokenPathPrefix starts the one route whose path carries a credential:
// DELETE /v1/access_tokens/{token}.
const tokenPathPrefix = "/v1/access_tokens/"

// logPath is the request path as logs may show it: an access token in the
// path is replaced by "<redacted>" (docs/security.md, Logs).
func logPath(r *http.Request) slog.Attr {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, tokenPathPrefix); ok && rest != "" && rest != "current" {
		p = tokenPathPrefix + "<redacted>"
	}
	return slog.String("path", p)
}
