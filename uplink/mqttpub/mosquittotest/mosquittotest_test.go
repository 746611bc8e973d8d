package mosquittotest_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

func connect(t *testing.T, url, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func TestStopRestartKeepsPort(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.WithPersistence(), mosquittotest.WithLimits(0, 0))
	if !strings.HasPrefix(b.URL, "tcp://127.0.0.1:") || !strings.HasSuffix(b.URL, b.Addr) {
		t.Fatalf("Addr %q URL %q", b.Addr, b.URL)
	}
	c := connect(t, b.URL, "one")
	if tok := c.Publish("keep/me", 1, true, "retained"); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// Kill only once mosquitto has saved the retained message.
	waitFile(t, filepath.Join(b.Dir(), "mosquitto.db"))
	b.Stop()
	if b.Running() {
		t.Fatal("Running after Stop")
	}
	if conn, err := net.DialTimeout("tcp", b.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("something still listens after Stop")
	}
	b.Restart(t)
	if !b.Running() {
		t.Fatal("not Running after Restart")
	}
	c2 := connect(t, b.URL, "two") // same URL, same port
	got := make(chan string, 1)
	if tok := c2.Subscribe("keep/me", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-got:
		if m != "retained" {
			t.Errorf("retained message after restart = %q", m)
		}
	case <-time.After(20 * time.Second):
		t.Error("persistence: the retained message did not survive Stop/Restart")
	}
	if !strings.Contains(b.Log(), "mosquitto version") {
		t.Errorf("log does not show mosquitto starting:\n%s", b.Log())
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s not written", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyHoldAndCut(t *testing.T) {
	b := mosquittotest.Start(t)
	p := mosquittotest.NewProxy(t, b.Addr)
	c := connect(t, p.URL, "via-proxy")
	if !c.IsConnectionOpen() {
		t.Fatal("not connected through the proxy")
	}
	p.Hold()
	tok := c.Publish("a/b", 1, false, "x")
	if tok.WaitTimeout(200 * time.Millisecond) {
		t.Fatalf("PUBACK came through a held proxy: %v", tok.Error())
	}
	p.Release()
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("PUBACK after Release: %v", tok.Error())
	}
	p.Cut()
	end := time.Now().Add(20 * time.Second)
	for c.IsConnectionOpen() {
		if time.Now().After(end) {
			t.Fatal("connection still open after Cut")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
