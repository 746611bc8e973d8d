package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/gateway/mqttbroker"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

// tail -capture keeps every message with its topic (statuses included):
// tail audits payloads against the topic they arrived on, and verify -pub
// on its capture reaches the same verdict offline.
// forgedLine is verify's verdict on the forged copy; which message of the
// capture it is depends on the order the broker delivered them in.
var forgedLine = regexp.MustCompile(`gw-test-02/evidence: received 0, duplicates 0, max seq 0, FORGED seq 1: message [1-4] \(records 1-4\) rejected`)

func TestTailCaptureThenVerify(t *testing.T) {
	b, err := mqttbroker.Start(mqttbroker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := "tcp://" + b.Addr()
	key, err := identity.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	capture := filepath.Join(t.TempDir(), "capture.cbor")

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"tail", "-broker", url, "-n", "8", "-for", "20s", "-id", "tail-cap",
			"-capture", capture, "-pub", key.String(), "-q"}, &out, &errOut)
	}()
	pub, err := mqttpub.New(mqttpub.Options{Brokers: []string{url}, ClientID: sgw})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub.Start(ctx)
	defer pub.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "subscribed") || !pub.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("tail did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the SUBSCRIBE is acknowledged before tail says so; allow the broker to settle

	stored, hashes := signedChain(t, key, 1, seqs(1, 8), nil, nil)
	msgs := batches(sgw, wire.StreamEvidence, stored)
	// First a forged copy: gw-test-01's batch on gw-test-02's topic; then
	// the status and the honest batches (8 records end the tail).
	msgs = append([]capMsg{{stopic("gw-test-02", wire.StreamEvidence), msgs[0].payload}, statusOf(t, key, 1764495100000, 8, hashes[7])}, msgs...)
	for _, m := range msgs {
		if err := pub.Publish(ctx, m.topic, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	code := <-done
	if code != 1 || !strings.Contains(out.String(), "payload says gateway \"gw-test-01\"") ||
		!strings.Contains(out.String(), "gw-test-01/evidence: received 8, duplicates 0, max seq 8, chain ok, signatures verified: OK") {
		t.Fatalf("tail exit = %d, want 1 (a forged message)\n%s%s", code, out.String(), errOut.String())
	}
	code, vout, verr := run(t, "verify", "-pub", key.String(), capture)
	if code != 1 || !strings.Contains(vout, "4 messages") ||
		!forgedLine.MatchString(vout) ||
		!strings.Contains(vout, "signatures verified: OK") {
		t.Fatalf("verify of the capture = %d\n%s%s", code, vout, verr)
	}
}
