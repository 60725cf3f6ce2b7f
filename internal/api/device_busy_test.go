package api_test

import (
	"fmt"
	"testing"

	"github.com/wick-cloud/wick/internal/api/apitest"
	"github.com/wick-cloud/wick/internal/bus"
)

// TestDeviceBusy: a device with too many requests in flight (the gateway's
// bus.ErrDeviceBusy, locally or through the bus) makes calls answer 429
// with Retry-After, not 500, and a ping still reads as online: the session
// is alive (docs/security.md, "Busy devices").
func TestDeviceBusy(t *testing.T) {
	w := controlWorld(t)
	busy := fmt.Errorf("gateway: device %s: too many requests in flight: %w", ctlLamp, bus.ErrDeviceBusy)
	const busyBody = `{"ok":false,"error":"Device is busy: too many requests in flight"}`
	tests := []struct {
		name   string
		fn     string // the failing call's name ("" for ping)
		req    apitest.Req
		status int
		want   string
	}{
		{"function", "led", w.bodyReq("POST", "/v1/devices/"+ctlLamp+"/led", `{"args":"on"}`), 429, busyBody},
		{"variable", "temp", apitest.Req{Method: "GET", Path: "/v1/devices/" + ctlLamp + "/temp"}, 429, busyBody},
		{"ping", "", apitest.Req{Method: "PUT", Path: "/v1/devices/" + ctlLamp + "/ping"}, 200, `{"online":true,"ok":true}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.Devices.Fail(ctlLamp, tc.fn, busy)
			defer w.Devices.Fail(ctlLamp, tc.fn, nil)
			tc.req.Token = w.ownerToken
			r := w.Do(tc.req)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.Status, tc.status, r.Body)
			}
			apitest.MatchJSON(t, r.Body, tc.want)
			if ra := r.Header.Get("Retry-After"); (tc.status == 429) != (ra == "1") {
				t.Errorf("Retry-After %q", ra)
			}
		})
	}
}
