package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWriteErrorCanceled checks that a request whose client went away is
// not reported as an internal error, while a real failure still is.
func TestWriteErrorCanceled(t *testing.T) {
	tests := []struct {
		name      string
		cancel    bool
		err       error
		status    int
		logsError bool
	}{
		{"client gone", true, fmt.Errorf("call: %w", context.Canceled), statusClientClosed, false},
		{"deadline unrelated to the request", false, fmt.Errorf("call: %w", context.DeadlineExceeded), 500, true},
		{"canceled error but live request", false, fmt.Errorf("call: %w", context.Canceled), 500, true},
		{"plain failure on a gone client", true, errors.New("disk on fire"), 500, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &server{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			r := httptest.NewRequest("POST", "/v1/devices/x/led", nil).WithContext(ctx)
			w := httptest.NewRecorder()
			s.writeError(w, r, tc.err)
			if w.Code != tc.status {
				t.Errorf("status = %d, want %d", w.Code, tc.status)
			}
			if got := strings.Contains(logs.String(), "internal error"); got != tc.logsError {
				t.Errorf("logged internal error = %v, want %v; logs: %s", got, tc.logsError, logs.String())
			}
		})
	}
}
