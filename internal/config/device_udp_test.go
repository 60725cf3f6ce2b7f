package config

import "testing"

// TestDeviceUDPAuto: the default UDP address follows --device-tcp.
func TestDeviceUDPAuto(t *testing.T) {
	cases := []struct{ tcp, udp, want string }{
		{"127.0.0.1:5683", DeviceUDPAuto, "127.0.0.1:5684"},
		{":5683", DeviceUDPAuto, ":5684"},
		{"[::1]:7000", DeviceUDPAuto, "[::1]:5684"},
		{"127.0.0.1:0", DeviceUDPAuto, "127.0.0.1:0"},
		{"", DeviceUDPAuto, ""},
		{"127.0.0.1:5683", "", ""},
		{"127.0.0.1:5683", "0.0.0.0:9999", "0.0.0.0:9999"},
	}
	for _, tc := range cases {
		c := Default()
		c.Data = t.TempDir()
		c.DeviceTCP, c.DeviceUDP = tc.tcp, tc.udp
		if err := c.Resolve(); err != nil {
			t.Fatal(err)
		}
		if c.DeviceUDP != tc.want {
			t.Errorf("tcp %q udp %q: resolved to %q, want %q", tc.tcp, tc.udp, c.DeviceUDP, tc.want)
		}
	}
}
