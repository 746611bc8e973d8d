package badgerq_test

import (
	"testing"

	"github.com/townlink/townlink/uplink/badgerq"
)

func TestPing(t *testing.T) {
	db, err := badgerq.Open(badgerq.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("open store: Ping = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err == nil {
		t.Fatal("closed store: Ping = nil, want an error")
	}
}
