package auth

import (
	"strings"
	"testing"
)

func TestHashRoundTrip(t *testing.T) {
	hashers := []*Hasher{TestHasher(), {Time: 2, MemoryKiB: 128, Threads: 2}}
	for _, h := range hashers {
		enc, err := h.Hash("s3cret pässword")
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePHC(enc)
		if err != nil {
			t.Fatalf("parsePHC(%q): %v", enc, err)
		}
		if p.time != h.Time || p.memory != h.MemoryKiB || p.threads != h.Threads || len(p.salt) != saltLen || len(p.key) != keyLen {
			t.Errorf("parsed %+v from %q; want the hasher's parameters", p, enc)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$") {
			t.Errorf("hash %q is not an argon2id PHC string", enc)
		}
		if !VerifyPassword(enc, "s3cret pässword") {
			t.Errorf("VerifyPassword rejects the right password for %q", enc)
		}
		for _, wrong := range []string{"", "s3cret passwort", "s3cret pässword ", "S3cret pässword"} {
			if VerifyPassword(enc, wrong) {
				t.Errorf("VerifyPassword accepts %q", wrong)
			}
		}
		again, _ := h.Hash("s3cret pässword")
		if again == enc {
			t.Error("two hashes of one password share a salt")
		}
	}
}

func TestVerifyPasswordTampered(t *testing.T) {
	enc, err := TestHasher().Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parsePHC(enc)
	flipLast := p
	flipLast.key = append([]byte(nil), p.key...)
	flipLast.key[len(p.key)-1] ^= 1
	short := p
	short.key = p.key[:keyLen-1]
	otherSalt := p
	otherSalt.salt = append([]byte(nil), p.salt...)
	otherSalt.salt[0] ^= 1
	moreTime := p
	moreTime.time++
	for name, bad := range map[string]string{
		"last key bit":  flipLast.String(),
		"truncated key": short.String(),
		"salt":          otherSalt.String(),
		"parameters":    moreTime.String(),
		"empty":         "",
		"bcrypt":        "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":       strings.Replace(enc, "argon2id", "argon2i", 1),
		"version 16":    strings.Replace(enc, "v=19", "v=16", 1),
	} {
		if VerifyPassword(bad, "pw") {
			t.Errorf("%s: VerifyPassword accepted %q", name, bad)
		}
	}
}

func TestParsePHCRejects(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	if _, err := parsePHC(ok); err != nil {
		t.Fatalf("parsePHC(%q): %v", ok, err)
	}
	for _, bad := range []string{
		"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=4,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "\n$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
	} {
		if _, err := parsePHC(bad); err == nil {
			t.Errorf("parsePHC(%q) succeeded", bad)
		}
	}
}

func TestHasherRejectsBadParameters(t *testing.T) {
	for _, h := range []*Hasher{{}, {Time: 1, MemoryKiB: 4, Threads: 1}, {Time: 1, MemoryKiB: 64}} {
		if _, err := h.Hash("pw"); err == nil {
			t.Errorf("Hasher%+v.Hash succeeded", *h)
		}
	}
}

func TestServicePasswordHelpers(t *testing.T) {
	svc := New(Config{Hasher: TestHasher()}, nil, nil)
	h, err := svc.HashPassword("pw")
	if err != nil || !svc.CheckPassword(h, "pw") || svc.CheckPassword(h, "pW") {
		t.Fatalf("HashPassword/CheckPassword round trip failed: %q, %v", h, err)
	}
	secret, hash, err := svc.NewClientSecret()
	if err != nil || !ValidTokenFormat(secret) || !svc.CheckPassword(hash, secret) {
		t.Fatalf("NewClientSecret = %q, %q, %v", secret, hash, err)
	}
}

func FuzzParsePHC(f *testing.F) {
	for _, h := range []*Hasher{TestHasher(), {Time: 3, MemoryKiB: 4096, Threads: 4}} {
		enc, err := h.Hash("seed")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		// Whatever parses is canonical: it encodes back to the input.
		if got := p.String(); got != s {
			t.Fatalf("parsePHC(%q) re-encodes as %q", s, got)
		}
		if p.time < 1 || p.threads < 1 || p.memory > maxMemoryKiB || len(p.key) < minKeyLen || len(p.salt) < minSaltLen {
			t.Fatalf("parsePHC(%q) accepted out-of-range parameters %+v", s, p)
		}
	})
}
