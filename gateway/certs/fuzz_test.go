package certs

import (
	"errors"
	"testing"
)

func FuzzParseFirstToExpire(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseFirstToExpire(b)
		if (c == nil) == (err == nil) {
			t.Fatalf("certificate %v and error %v", c, err)
		}
	})
}

func TestParseFirstToExpireSaysWhy(t *testing.T) {
	if _, err := parseFirstToExpire([]byte("garbage")); !errors.Is(err, errNoCert) {
		t.Errorf("garbage: %v, want errNoCert", err)
	}
	_, err := parseFirstToExpire([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if err == nil || err.Error()[:11] != "PEM block 1" {
		t.Errorf("a broken certificate block: %v, want an error naming PEM block 1", err)
	}
}
