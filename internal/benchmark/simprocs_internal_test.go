package benchmark

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitDevices(t *testing.T) {
	for _, tc := range []struct {
		devices, n int
		want       []int
	}{
		{100000, 6, []int{16667, 16667, 16667, 16667, 16666, 16666}},
		{20, 2, []int{10, 10}},
		{3, 5, []int{1, 1, 1, 0, 0}},
	} {
		got := splitDevices(tc.devices, tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("splitDevices(%d, %d) = %v, want %v", tc.devices, tc.n, got, tc.want)
		}
	}
}

func TestSimArgs(t *testing.T) {
	c := simProcConfig{processes: 6, server: "127.0.0.1:5684", serverKey: "k.pem", api: "http://a", token: "tok", idPrefix: "be",
		keysDir: "/keys", udp: true, keepAlive: time.Minute, logLevel: "warn", bind: true}
	got := strings.Join(c.simArgs(3, 17000, 51001), " ")
	for _, want := range []string{"sim --server 127.0.0.1:5684 --server-key k.pem", "--count 17000", "--id-start 51001", "--concurrency 16",
		"--status-json", "--api http://a --token tok", "--keys-dir /keys", "--udp --resume", "--keepalive 1m0s", "--bind 127.0.0.5"} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	c.udp, c.bind, c.api = false, false, ""
	got = strings.Join(c.simArgs(0, 10, 1), " ")
	for _, not := range []string{"--udp", "--bind", "--api"} {
		if strings.Contains(got, not) {
			t.Errorf("TCP args without bind or API %q hold %q", got, not)
		}
	}
}
