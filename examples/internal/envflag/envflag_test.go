package envflag

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"fallback", nil, nil, "http://127.0.0.1:8080"},
		{"empty env keeps the fallback", map[string]string{"WICK_URL": ""}, nil, "http://127.0.0.1:8080"},
		{"env", map[string]string{"WICK_URL": "https://w.example"}, nil, "https://w.example"},
		{"flag beats env", map[string]string{"WICK_URL": "https://w.example"}, []string{"--url", "http://x"}, "http://x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("test", func(k string) string { return tt.env[k] })
			var got string
			s.String(&got, "url", "WICK_URL", "http://127.0.0.1:8080", "API base URL")
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if u := s.Lookup("url").Usage; !strings.HasSuffix(u, "(env WICK_URL)") {
				t.Errorf("usage %q does not name the variable", u)
			}
		})
	}
	if err := New("test", func(string) string { return "" }).Parse([]string{"--nope"}); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
