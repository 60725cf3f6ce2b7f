package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestWebhookCredentialsSealing: Auth and Headers go into
// SealedCredentials and come back; plaintext settings of earlier versions
// are read as they are; a failure to open is reported.
func TestWebhookCredentialsSealing(t *testing.T) {
	key := []byte("k")
	seal := func(p []byte) ([]byte, error) { return append(append([]byte{}, key...), p...), nil }
	open := func(s []byte) ([]byte, error) {
		if !bytes.HasPrefix(s, key) {
			return nil, errors.New("bad seal")
		}
		return s[len(key):], nil
	}
	tests := []struct {
		name     string
		settings WebhookSettings
		sealed   bool
	}{
		{"auth and headers", WebhookSettings{Auth: &BasicAuth{Username: "u", Password: "p"}, Headers: map[string]string{"X-Key": "s3cret"}}, true},
		{"headers only", WebhookSettings{Headers: map[string]string{"Authorization": "Bearer t"}}, true},
		{"nothing", WebhookSettings{URL: "https://example.com/"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.settings
			if err := s.SealCredentials(seal); err != nil {
				t.Fatal(err)
			}
			if got := len(s.SealedCredentials) > 0; got != tt.sealed {
				t.Fatalf("sealed = %v; want %v", got, tt.sealed)
			}
			if s.Auth != nil || s.Headers != nil {
				t.Fatalf("plaintext left after sealing: %+v %+v", s.Auth, s.Headers)
			}
			if err := s.OpenCredentials(open); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Auth, tt.settings.Auth) || !reflect.DeepEqual(s.Headers, tt.settings.Headers) || s.SealedCredentials != nil {
				t.Errorf("after a round trip: %+v", s)
			}
		})
	}
	t.Run("plaintext of an earlier version", func(t *testing.T) {
		s := WebhookSettings{Auth: &BasicAuth{Username: "u", Password: "p"}}
		if err := s.OpenCredentials(func([]byte) ([]byte, error) { t.Fatal("open called"); return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if s.Auth.Password != "p" {
			t.Errorf("auth %+v", s.Auth)
		}
	})
	t.Run("cannot open", func(t *testing.T) {
		s := WebhookSettings{SealedCredentials: []byte("other")}
		if err := s.OpenCredentials(open); err == nil {
			t.Error("no error")
		}
	})
}
