package fieldbroker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/gateway/fieldbroker"
)

func TestStartValidates(t *testing.T) {
	h := func(context.Context, string, string, []byte) error { return nil }
	dev := fieldbroker.Device{ID: "a", Username: "ua", Password: []byte("p")}
	cases := map[string]fieldbroker.Options{
		"no listener":   {Handle: h},
		"tls no config": {TLSListen: "127.0.0.1:0", Handle: h},
		"no handler":    {Listen: "127.0.0.1:0"},
		"negative max":  {Listen: "127.0.0.1:0", Handle: h, MaxPayload: -1},
		"bad id":        {Listen: "127.0.0.1:0", Handle: h, Devices: []fieldbroker.Device{{ID: "a/b", Username: "u", Password: []byte("p")}}},
		"empty user":    {Listen: "127.0.0.1:0", Handle: h, Devices: []fieldbroker.Device{{ID: "a", Password: []byte("p")}}},
		"empty pw":      {Listen: "127.0.0.1:0", Handle: h, Devices: []fieldbroker.Device{{ID: "a", Username: "u"}}},
		"dup id":        {Listen: "127.0.0.1:0", Handle: h, Devices: []fieldbroker.Device{dev, {ID: "a", Username: "ub", Password: []byte("p")}}},
		"dup user":      {Listen: "127.0.0.1:0", Handle: h, Devices: []fieldbroker.Device{dev, {ID: "b", Username: "ua", Password: []byte("p")}}},
	}
	for name, o := range cases {
		b, err := fieldbroker.Start(o)
		if err == nil {
			_ = b.Close()
			t.Errorf("%s: Start succeeded", name)
			continue
		}
		if !errors.Is(err, fieldbroker.ErrConfig) {
			t.Errorf("%s: error %v does not wrap ErrConfig", name, err)
		}
	}
	// A port in use is ErrListen.
	b := startBroker(t, fieldbroker.Options{Handle: h})
	_, err := fieldbroker.Start(fieldbroker.Options{Listen: b.Addr(), Handle: h})
	if !errors.Is(err, fieldbroker.ErrListen) {
		t.Fatalf("second broker on %s: %v, want ErrListen", b.Addr(), err)
	}
}

func TestAuth(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	addr := b.Addr()

	if err := connectErr(t, clientOpts(addr, "u-cam-01", "wrong", "c1", true)); err == nil {
		t.Fatal("wrong password accepted")
	} else if !strings.Contains(err.Error(), "not Authorized") {
		t.Errorf("wrong password: %v, want return code 5 (not authorized)", err)
	}
	if err := connectErr(t, clientOpts(addr, "nobody", "pw-cam-01", "c2", true)); err == nil {
		t.Fatal("unknown user accepted")
	}
	if err := connectErr(t, clientOpts(addr, "", "", "c3", true)); err == nil {
		t.Fatal("anonymous login accepted")
	}
	// The password of another device does not open this one.
	if err := connectErr(t, clientOpts(addr, "u-cam-01", "pw-cam-02", "c4", true)); err == nil {
		t.Fatal("cam-02's password opened cam-01")
	}
	s := b.Stats()
	if s.AuthFailures != 4 || s.Devices["cam-01"].AuthFailures != 2 || s.Connects != 0 {
		t.Fatalf("after 4 refused logins: %+v", s)
	}
	if s.Online != 0 {
		t.Fatalf("online after refused logins: %d", s.Online)
	}

	// The client id is free; the device comes from the username.
	c := connect(t, clientOpts(addr, "u-cam-02", "pw-cam-02", "anything-goes", true))
	publish(t, c, "field/cam-02/device.status", `{"online":true}`)
	s = b.Stats()
	if s.Connects != 1 || s.Devices["cam-02"].Connects != 1 || !s.Devices["cam-02"].Online || s.Online != 1 {
		t.Fatalf("after one login: %+v", s)
	}
	if on := b.Online(); !on["cam-02"] || on["cam-01"] || len(on) != 3 {
		t.Fatalf("Online() = %v", on)
	}
	_, acc := rec.snapshot()
	if len(acc) != 1 || acc[0] != (call{Device: "cam-02", Event: "device.status", Payload: `{"online":true}`}) {
		t.Fatalf("handled %+v", acc)
	}
}

// The session is the device's: whatever client id a device sends, it gets
// its own session, so it can neither take nor block another's, and a second
// connection of the same device takes the first one over.
func TestClientIDBoundToDevice(t *testing.T) {
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle})
	got := make(chan paho.Message, 10)
	a := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "shared-id", false))
	waitToken(t, "subscribe", a.Subscribe("field/cam-01/cmd", 1, func(_ paho.Client, m paho.Message) { got <- m }))
	// cam-02 with cam-01's client id, or with the id "cam-01", or mochi's
	// inline client's id: it logs in as itself and cam-01 stays connected.
	for _, id := range []string{"shared-id", "cam-01", "inline"} {
		o := clientOpts(b.Addr(), "u-cam-02", "pw-cam-02", id, false)
		c := connect(t, o)
		if !c.IsConnectionOpen() || !a.IsConnectionOpen() || !b.Online()["cam-01"] {
			t.Fatalf("client id %q: cam-01 lost its connection to cam-02", id)
		}
	}
	if err := b.Command("cam-01", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "hello" {
			t.Fatalf("got %s", m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("cam-01's downlink went elsewhere")
	}
	// While cam-01's persistent session is offline, cam-02 cannot get it.
	a.Disconnect(50)
	waitStats(t, b, "cam-01 offline", func(s fieldbroker.Stats) bool { return !s.Devices["cam-01"].Online })
	connect(t, clientOpts(b.Addr(), "u-cam-02", "pw-cam-02", "shared-id", true))
	if err := b.Command("cam-01", []byte("queued")); err != nil {
		t.Fatal(err)
	}
	got2 := make(chan paho.Message, 10)
	o := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "another-id", false).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got2 <- m })
	a2 := connect(t, o)
	select {
	case m := <-got2:
		if string(m.Payload()) != "queued" {
			t.Fatalf("got %s", m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("cam-01's stored session lost its queued command")
	}
	// One session per device: a second connection takes the first over.
	a3 := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "third-id", true))
	deadline := time.Now().Add(wait)
	for a2.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a2.IsConnectionOpen() || !a3.IsConnectionOpen() {
		t.Fatal("two sessions of one device")
	}
	if s := b.Stats(); s.Devices["cam-02"].AuthFailures != 0 || s.Devices["cam-02"].Connects != 4 || s.Devices["cam-01"].Connects != 3 {
		t.Fatalf("stats %+v", s.Devices)
	}
}

// A publish outside the device's prefix is never acknowledged: 3.1.1 gets
// its connection closed without a PUBACK (MQTT 5 a PUBACK 0x87, see
// TestMQTT5ReasonCodes).
func TestPublishACL(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, Backoff: fieldbroker.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	refused := []string{
		"field/cam-02/alarm.sos",           // another device
		"field/cam-01/cmd",                 // its own downlink
		"field/cam-01",                     // no event
		"field/cam-01/alarm.sos/extra",     // four levels
		"field/cam-01/Alarm",               // upper case event
		"gw/site/bodycam/cam-01/alarm.sos", // outside field/
		"field/cam-01/" + strings.Repeat("e", 65),
	}
	for i, topic := range refused {
		v := dialRaw(t, b.Addr(), 4, "u-cam-01", "pw-cam-01", "cam-01")
		if r, _, err := v.publish1(uint16(i+1), topic, "x"); err == nil {
			t.Fatalf("publish to %q answered with %#x, want the connection closed without PUBACK", topic, r)
		}
	}
	c := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false))
	c.Publish("field/cam-02/qos0", 0, false, "x").Wait() // QoS 0: dropped, the connection stays
	publish(t, c, "field/cam-01/alarm.sos", `{"active":true}`)

	calls, acc := rec.snapshot()
	if len(calls) != 1 || acc[0] != (call{Device: "cam-01", Event: "alarm.sos", Payload: `{"active":true}`}) {
		t.Fatalf("handler saw %+v, want only the allowed message", calls)
	}
	s := b.Stats()
	if s.ACLDenied != uint64(len(refused)+1) || s.Devices["cam-01"].ACLDenied != uint64(len(refused)+1) || s.Refused != s.ACLDenied {
		t.Fatalf("acl_denied = %d refused %d, want %d", s.ACLDenied, s.Refused, len(refused)+1)
	}
	if s.Connects != uint64(len(refused)+1) || !c.IsConnectionOpen() {
		t.Fatalf("connects %d, want one per refused QoS 1 message and one more", s.Connects)
	}
	if s.Throttled == 0 {
		t.Fatal("refusals in a row were not throttled")
	}
}

func TestSubscribeACLAndCommand(t *testing.T) {
	b := startBroker(t, fieldbroker.Options{Handle: newRecorder().handle})
	got := make(chan paho.Message, 10)
	// Refused filters on a second connection of the same device (paho routes
	// messages locally by filter, so they would also match on c).
	c2 := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01-b", true))
	for _, f := range []string{"field/cam-02/cmd", "#", "field/+/cmd", "field/cam-01/#", "field/cam-01/alarm.sos", "$share/g/field/cam-01/cmd"} {
		tok := c2.Subscribe(f, 1, nil)
		waitToken(t, "subscribe "+f, tok)
		res := tok.(*paho.SubscribeToken).Result() // one entry (paho strips $share/g/ from the key)
		for _, r := range res {
			if r != 0x80 || len(res) != 1 {
				t.Errorf("subscribe %q: result %v, want 0x80 (failure)", f, res)
			}
		}
	}
	c := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true))
	tok := c.Subscribe("field/cam-01/cmd", 1, func(_ paho.Client, m paho.Message) { got <- m })
	waitToken(t, "subscribe own cmd", tok)
	if r := tok.(*paho.SubscribeToken).Result()["field/cam-01/cmd"]; r != 1 {
		t.Fatalf("own downlink granted %#x, want QoS 1", r)
	}
	if s := b.Stats(); s.ACLDenied != 6 {
		t.Fatalf("acl_denied = %d, want 6", s.ACLDenied)
	}
	if err := b.Command("cam-02", []byte(`{"cmd_id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Command("cam-01", []byte(`{"cmd_id":"1","command":"photo"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Topic() != "field/cam-01/cmd" || string(m.Payload()) != `{"cmd_id":"1","command":"photo"}` {
			t.Fatalf("got %s %s", m.Topic(), m.Payload())
		}
	case <-time.After(wait):
		t.Fatal("command not delivered")
	}
	select {
	case m := <-got:
		t.Fatalf("cam-01 received another message: %s %s", m.Topic(), m.Payload())
	default:
	}
	if err := b.Command("nope", nil); !errors.Is(err, fieldbroker.ErrUnknownDevice) {
		t.Fatalf("Command(nope) = %v", err)
	}
}

// A payload over MaxPayload is never acknowledged: up to MaxPayload plus
// the topic room it is read and refused (3.1.1: connection closed, no
// PUBACK), beyond that it is not read at all.
func TestTooLarge(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, MaxPayload: 1024, Backoff: fieldbroker.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	k := connect(t, clientOpts(b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1", false))

	v := dialRaw(t, b.Addr(), 4, "u-cam-01", "pw-cam-01", "cam-01")
	if r, _, err := v.publish1(1, "field/cam-01/evidence.file", strings.Repeat("x", 1024)); err != nil || r != 0 {
		t.Fatalf("at the limit: %#x %v", r, err)
	}
	for i, n := range []int{1500, 1 << 20} {
		v := dialRaw(t, b.Addr(), 4, "u-cam-01", "pw-cam-01", "cam-01")
		if r, _, err := v.publish1(uint16(i+2), "field/cam-01/evidence.file", strings.Repeat("y", n)); err == nil {
			t.Fatalf("%d bytes: answered %#x, want the connection closed without PUBACK", n, r)
		}
	}
	waitStats(t, b, "both oversized publishes refused", func(s fieldbroker.Stats) bool { return s.TooLarge == 2 && s.Refused == 2 })
	// The broker keeps serving others.
	for i := range 10 {
		publish(t, k, "field/kiosk-1/ticket.issued", fmt.Sprintf(`{"ticket_no":"A%03d"}`, i))
	}
	calls, acc := rec.snapshot()
	for _, c := range calls {
		if c.Event == "evidence.file" && len(c.Payload) > 1024 {
			t.Fatalf("an oversized payload reached the handler (%d bytes)", len(c.Payload))
		}
	}
	if n := count(acc, func(c call) bool { return c.Device == "kiosk-1" }); n != 10 {
		t.Fatalf("kiosk accepted %d of 10", n)
	}
	s := b.Stats()
	if s.Devices["cam-01"].TooLarge != 2 || s.Devices["kiosk-1"].TooLarge != 0 || s.Devices["cam-01"].Accepted != 1 || s.Devices["cam-01"].Bytes != 1024 {
		t.Fatalf("by device: %+v", s.Devices)
	}
}

func TestPersistBeforePuback(t *testing.T) {
	rec := newRecorder()
	entered := make(chan struct{})
	release := make(chan struct{})
	rec.decide = func(ctx context.Context, c call, _ int) error {
		if c.Payload == "slow" {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	a := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false))
	k := connect(t, clientOpts(b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1", false))

	tok := a.Publish("field/cam-01/evidence.file", 1, false, "slow")
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("handler not called")
	}
	// Another device is not blocked by cam-01's slow handler.
	publish(t, k, "field/kiosk-1/service.rated", `{"rating":5}`)
	select {
	case <-tok.Done():
		t.Fatalf("PUBACK before the handler returned (err %v)", tok.Error())
	default:
	}
	if s := b.Stats(); s.Devices["cam-01"].Accepted != 0 || s.Devices["kiosk-1"].Accepted != 1 {
		t.Fatalf("stats while blocked: %+v", s.Devices)
	}
	close(release)
	waitToken(t, "slow publish", tok)
	if s := b.Stats(); s.Devices["cam-01"].Accepted != 1 {
		t.Fatalf("after release: %+v", s.Devices["cam-01"])
	}
}

// ErrRejected is not an acknowledgement: the 3.1.1 device keeps the
// message and resends it after reconnecting; the gateway can store it later.
func TestRejectedIsNotAcknowledged(t *testing.T) {
	rec := newRecorder()
	rec.decide = func(_ context.Context, c call, n int) error {
		if c.Payload == "bad" && n < 2 {
			return fmt.Errorf("kiosk: ticket.issued: no ticket_no: %w", fieldbroker.ErrRejected)
		}
		return nil
	}
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle, Backoff: fieldbroker.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	o := clientOpts(b.Addr(), "u-kiosk-1", "pw-kiosk-1", "kiosk-1", false).
		SetAutoReconnect(true).SetMaxReconnectInterval(50 * time.Millisecond).SetStore(fileStore(t))
	c := connect(t, o)
	c.Publish("field/kiosk-1/ticket.issued", 1, false, "bad")
	rec.waitFor(t, "bad stored on its third try", func(calls, acc []call) bool {
		return count(acc, func(c call) bool { return c.Payload == "bad" }) == 1
	})
	calls, _ := rec.snapshot()
	if n := count(calls, func(c call) bool { return c.Payload == "bad" }); n != 3 {
		t.Fatalf("bad handled %d times, want 3", n)
	}
	// The broker counts a stored message once its handler has returned.
	s := waitStats(t, b, "the stored try counted", func(s fieldbroker.Stats) bool { return s.Accepted == 1 })
	if s.Malformed != 2 || s.Refused != 2 || s.Accepted != 1 || s.Connects != 3 {
		t.Fatalf("stats %+v", s.Counters)
	}
}

// A transient handler failure: no PUBACK, the connection is closed, the
// paho client (CleanSession false) reconnects and resends; nothing is lost.
func TestTransientFailureResent(t *testing.T) {
	rec := newRecorder()
	rec.decide = func(_ context.Context, c call, n int) error {
		if c.Event == "device.position" && strings.HasSuffix(c.Payload, "5") && n == 0 {
			return errors.New("store: disk full") // first attempt of m05, m15, m25
		}
		return nil
	}
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	o := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01-persistent", false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(50 * time.Millisecond).
		SetStore(fileStore(t))
	c := connect(t, o)
	const n = 30
	for i := range n {
		// Not waiting for tokens: after a reconnect paho completes the old
		// token when it resends, not when the PUBACK comes.
		c.Publish("field/cam-01/device.position", 1, false, fmt.Sprintf("m%02d", i))
	}
	rec.waitFor(t, "all 30 positions accepted", func(_, acc []call) bool {
		seen := map[string]bool{}
		for _, a := range acc {
			seen[a.Payload] = true
		}
		return len(seen) == n
	})
	calls, acc := rec.snapshot()
	for _, p := range []string{"m05", "m15", "m25"} {
		if k := count(calls, func(c call) bool { return c.Payload == p }); k < 2 {
			t.Errorf("%s seen %d times by the handler, want a resend", p, k)
		}
	}
	s := b.Stats()
	if s.HandlerErrors != 3 || s.Connects < 4 {
		t.Fatalf("stats %+v: want 3 handler errors and a reconnect after each", s.Counters)
	}
	if s.Offline != 0 || count(calls, func(c call) bool { return c.Event == fieldbroker.EventOffline }) != 0 {
		t.Fatalf("the broker's own disconnect raised an offline event")
	}
	t.Logf("30 messages, 3 transient failures: %d handler calls, %d accepted (%d duplicates), %d connects",
		len(calls), len(acc), len(acc)-n, s.Connects)
}

func TestBurstThreeDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: bursts of thousands of QoS 1 messages from three devices; make test runs it")
	}
	t.Run("clean", func(t *testing.T) { burst(t, 0) })
	// Every 200th message fails once (a transient store error): the device
	// is disconnected, reconnects and resends what was not acknowledged.
	t.Run("transient failures", func(t *testing.T) { burst(t, 200) })
}

func burst(t *testing.T, failEvery int) {
	const perDevice = 2000
	rec := newRecorder()
	if failEvery > 0 {
		rec.decide = func(_ context.Context, c call, n int) error {
			var seq int
			if _, err := fmt.Sscanf(c.Payload, `{"seq":%d}`, &seq); err == nil && n == 0 && seq%failEvery == failEvery-1 {
				return errors.New("store: busy")
			}
			return nil
		}
	}
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	var wg sync.WaitGroup
	start := time.Now()
	for _, d := range testDevices {
		o := clientOpts(b.Addr(), d.Username, string(d.Password), d.ID, false).
			SetAutoReconnect(true).SetMaxReconnectInterval(50 * time.Millisecond)
		if failEvery > 0 {
			o.SetStore(fileStore(t))
		}
		c := connect(t, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perDevice {
				// Tokens are not waited for: the handler is the witness.
				c.Publish("field/"+d.ID+"/ticket.called", 1, false, fmt.Sprintf(`{"seq":%d}`, i))
			}
		}()
	}
	wg.Wait()
	distinct := func(acc []call) map[string]map[string]int {
		m := map[string]map[string]int{}
		for _, c := range acc {
			if m[c.Device] == nil {
				m[c.Device] = map[string]int{}
			}
			m[c.Device][c.Payload]++
		}
		return m
	}
	rec.waitFor(t, "every message of every device accepted", func(_, acc []call) bool {
		m := distinct(acc)
		for _, d := range testDevices {
			if len(m[d.ID]) != perDevice {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	calls, acc := rec.snapshot()
	dups := 0
	for _, seen := range distinct(acc) {
		for _, k := range seen {
			dups += k - 1
		}
	}
	// The broker counts a stored message once its handler has returned.
	s := waitStats(t, b, "every accepted message counted", func(s fieldbroker.Stats) bool { return s.Accepted >= 3*perDevice })
	failures := uint64(0)
	if failEvery > 0 {
		failures = uint64(3 * (perDevice / failEvery))
	}
	if s.HandlerErrors != failures {
		t.Errorf("handler errors %d, want %d", s.HandlerErrors, failures)
	}
	if s.Accepted < 3*perDevice || s.Offline != 0 {
		t.Errorf("stats %+v", s.Counters)
	}
	t.Logf("%d messages from 3 devices accepted in %v; %d handler calls, %d duplicates accepted, %d transient failures, %d connects",
		3*perDevice, elapsed, len(calls), dups, s.HandlerErrors, s.Connects)
}

func TestWillAndOffline(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})

	// A will outside the device's prefix is refused at CONNECT.
	bad := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true).
		SetWill("field/cam-02/device.status", `{"online":false}`, 1, false)
	if err := connectErr(t, bad); err == nil {
		t.Fatal("a will on another device's topic was accepted")
	}
	if s := b.Stats(); s.Devices["cam-01"].ACLDenied != 1 || s.Connects != 0 {
		t.Fatalf("stats %+v", s.Devices["cam-01"])
	}

	// cam-02 disconnects cleanly: no offline event.
	clean := connect(t, clientOpts(b.Addr(), "u-cam-02", "pw-cam-02", "cam-02", true).
		SetWill("field/cam-02/device.status", `{"online":false}`, 1, true))
	clean.Disconnect(100)
	waitStats(t, b, "cam-02 gone", func(s fieldbroker.Stats) bool { return !s.Devices["cam-02"].Online })

	// cam-01 loses its TCP connection: its own will, then "offline".
	var h connHolder
	o := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", true).
		SetWill("field/cam-01/device.status", `{"online":false}`, 1, true).
		SetCustomOpenConnectionFn(h.open)
	connect(t, o)
	h.cut()
	rec.waitFor(t, "cam-01 offline", func(calls, _ []call) bool {
		return count(calls, func(c call) bool { return c.Device == "cam-01" && c.Event == fieldbroker.EventOffline }) == 1
	})
	// Close waits for every client goroutine: afterwards no call is pending.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	calls, _ := rec.snapshot()
	want := []call{
		{Device: "cam-01", Event: "device.status", Payload: `{"online":false}`},
		{Device: "cam-01", Event: fieldbroker.EventOffline, Nil: true},
	}
	if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Fatalf("handler calls %+v, want %+v", calls, want)
	}
	s := b.Stats()
	if s.Offline != 1 || s.Devices["cam-01"].Offline != 1 || s.Devices["cam-02"].Offline != 0 {
		t.Fatalf("offline counters %+v", s.Devices)
	}
}

func TestSessionTakeoverIsNotOffline(t *testing.T) {
	rec := newRecorder()
	b := startBroker(t, fieldbroker.Options{Handle: rec.handle})
	var h connHolder
	first := clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false).
		SetWill("field/cam-01/device.status", `{"online":false}`, 1, false).
		SetCustomOpenConnectionFn(h.open)
	connect(t, first)
	// The same device comes back on a new connection before the old one died.
	second := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false))
	publish(t, second, "field/cam-01/device.status", `{"online":true}`)
	waitStats(t, b, "takeover", func(s fieldbroker.Stats) bool { return s.Connects == 2 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	calls, _ := rec.snapshot()
	if len(calls) != 1 || calls[0].Payload != `{"online":true}` {
		t.Fatalf("handler calls %+v: a take-over is neither a will nor offline", calls)
	}
}

func TestCloseCancelsBlockedHandler(t *testing.T) {
	entered := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, _, _ string, _ []byte) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		return ctx.Err()
	}
	b := startBroker(t, fieldbroker.Options{Handle: h})
	c := connect(t, clientOpts(b.Addr(), "u-cam-01", "pw-cam-01", "cam-01", false))
	c.Publish("field/cam-01/alarm.sos", 1, false, "{}")
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("handler not called")
	}
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Close blocked on a handler")
	}
	if err := b.Command("cam-01", nil); !errors.Is(err, fieldbroker.ErrClosed) {
		t.Fatalf("Command after Close: %v", err)
	}
	if s := b.Stats(); s.HandlerErrors != 1 || s.Accepted != 0 {
		t.Fatalf("stats %+v", s.Counters)
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	rec := newRecorder()
	rec.decide = func(_ context.Context, c call, n int) error {
		if c.Payload == "retry" && n == 0 {
			return errors.New("store: busy")
		}
		return nil
	}
	b := startBroker(t, fieldbroker.Options{
		TLSListen: "127.0.0.1:0",
		TLS:       &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Handle:    rec.handle,
	})
	if b.Addr() != "" || b.TLSAddr() == "" {
		t.Fatalf("Addr %q TLSAddr %q", b.Addr(), b.TLSAddr())
	}
	o := clientOpts(b.TLSAddr(), "u-cam-01", "pw-cam-01", "cam-01", true)
	o.Servers = nil
	o.AddBroker("ssl://" + b.TLSAddr()).SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	c := connect(t, o)
	publish(t, c, "field/cam-01/device.position", `{"lat":30.1}`)
	if _, acc := rec.snapshot(); len(acc) != 1 || acc[0].Event != "device.position" {
		t.Fatalf("accepted %+v", acc)
	}
	// The transient-failure path over TLS (close_notify, drain, reconnect).
	o3 := clientOpts(b.TLSAddr(), "u-cam-02", "pw-cam-02", "cam-02", false).
		SetAutoReconnect(true).SetMaxReconnectInterval(50 * time.Millisecond).SetStore(fileStore(t))
	o3.Servers = nil
	o3.AddBroker("ssl://" + b.TLSAddr()).SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	c3 := connect(t, o3)
	c3.Publish("field/cam-02/alarm.sos", 1, false, "retry")
	rec.waitFor(t, "the retried message accepted", func(calls, acc []call) bool {
		return count(acc, func(c call) bool { return c.Payload == "retry" }) == 1
	})
	if s := b.Stats(); s.Devices["cam-02"].HandlerErrors != 1 || s.Devices["cam-02"].Connects != 2 {
		t.Fatalf("cam-02 stats %+v", s.Devices["cam-02"])
	}
	// A client that does not trust the certificate cannot connect.
	o2 := clientOpts(b.TLSAddr(), "u-cam-01", "pw-cam-01", "cam-01b", true)
	o2.Servers = nil
	o2.AddBroker("ssl://" + b.TLSAddr()).SetTLSConfig(&tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12})
	if err := connectErr(t, o2); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fieldbroker test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
