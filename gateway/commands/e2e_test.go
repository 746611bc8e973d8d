package commands_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
	"github.com/townlink/townlink/uplink/wire"
)

func setCmd(id string, v wire.Value) *wire.Command {
	return &wire.Command{ID: id, Op: wire.OpSet, Dev: "pump-station", Args: map[string]wire.Value{"point": wire.Text("setpoint_cm"), "value": v}}
}

func holding0(t *testing.T, r *rig) uint16 {
	t.Helper()
	v, ok := r.unit.Holding(0)
	if !ok {
		t.Fatal("holding 0 unset")
	}
	return v
}

// A set sent while the gateway is away, valid for one minute, arrives five
// minutes later (by the gateway's clock): it is answered expired, not run.
func TestSetExpiredWhileAway(t *testing.T) {
	r := newRig(t)
	r.unit.SetHolding(0, 250)
	r.start()
	p := newPlatform(t, r.broker.URL, false)
	p.ready()
	r.stop()

	p.send(func() *wire.Command {
		c := setCmd("late-set", wire.Int(999))
		c.Expires = r.clock.Now().Add(time.Minute).UnixMilli()
		return c
	}())
	r.clock.Advance(5 * time.Minute)
	r.start()
	res, _ := p.wait("late-set", 1)
	if res.OK || res.Status != wire.ResultExpired || !strings.Contains(res.Err, "expired") {
		t.Errorf("late set = %+v", res)
	}
	if v := holding0(t, r); v != 250 {
		t.Errorf("holding 0 = %d: the expired set was run", v)
	}
	// One still valid is run.
	c := setCmd("timely-set", wire.Int(300))
	c.Expires = r.clock.Now().Add(time.Minute).UnixMilli()
	p.send(c)
	if res, _ := p.wait("timely-set", 1); !res.OK || res.Status != wire.ResultDone {
		t.Errorf("timely set = %+v", res)
	}
	if v := holding0(t, r); v != 300 {
		t.Errorf("holding 0 = %d, want 300", v)
	}
	// With the clock unsynchronised, a command with expires is refused.
	r.synced.Store(false)
	c = setCmd("unsynced-set", wire.Int(301))
	c.Expires = r.clock.Now().Add(time.Minute).UnixMilli()
	p.send(c)
	if res, _ := p.wait("unsynced-set", 1); res.OK || res.Status != wire.ResultRefused || !strings.Contains(res.Err, "not synchronised") {
		t.Errorf("set on an unsynced clock = %+v", res)
	}
	if v := holding0(t, r); v != 300 {
		t.Errorf("holding 0 = %d: the set on an unsynced clock was run", v)
	}
}

// The same command id delivered again (QoS 1 redelivery, session replay,
// after a restart) changes the output once and gets the same answer.
func TestSameIDRunsOnce(t *testing.T) {
	r := newRig(t)
	r.unit.SetHolding(0, 1)
	r.start()
	p := newPlatform(t, r.broker.URL, false)
	p.ready()
	cmd, _ := wire.EncodeCommand(setCmd("s1", wire.Int(400)))
	p.sendRaw(cmd)
	first, firstRaw := p.wait("s1", 1)
	if !first.OK || first.Status != wire.ResultDone {
		t.Fatalf("set = %+v", first)
	}
	if v := holding0(t, r); v != 400 {
		t.Fatalf("holding 0 = %d, want 400", v)
	}
	// Someone changes the register at the pump station; the redelivered
	// command must not write it again.
	r.unit.SetHolding(0, 7)
	p.sendRaw(cmd)
	_, second := p.wait("s1", 2)
	if !bytes.Equal(firstRaw, second) {
		t.Errorf("second answer differs:\n%x\n%x", firstRaw, second)
	}
	if v := holding0(t, r); v != 7 {
		t.Errorf("holding 0 = %d: the redelivered set ran again", v)
	}

	// After a restart (the store reopened), the id is still known.
	r.stop()
	r.start()
	p.sendRaw(cmd)
	_, third := p.wait("s1", 3)
	if !bytes.Equal(firstRaw, third) {
		t.Errorf("answer after restart differs:\n%x\n%x", firstRaw, third)
	}
	if v := holding0(t, r); v != 7 {
		t.Errorf("holding 0 = %d: the set ran again after a restart", v)
	}
}

// An answer given while the broker is down is published once it is back.
func TestResultSurvivesBrokerOutage(t *testing.T) {
	r := newRig(t, mosquittotest.WithPersistence())
	r.start()
	p := newPlatform(t, r.broker.URL, true)
	p.ready()
	r.broker.Stop()
	// The command reached the gateway just before the link dropped.
	b, _ := wire.EncodeCommand(&wire.Command{ID: "during-outage", Op: wire.OpRead, Dev: "pump-station"})
	r.unit.SetHolding(1, 77)
	r.svc.Receive(t.Context(), b)
	for deadline := time.Now().Add(30 * time.Second); r.results.Stats().LastSeq == 0 || r.results.Stats().Backlog == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the answer was not queued: %+v", r.results.Stats())
		}
		if r.broker.Running() {
			t.Fatal("broker running")
		}
	}
	r.broker.Restart(t)
	res, _ := p.wait("during-outage", 1)
	if !res.OK || res.Vals["level_cm"].String() != "77" {
		t.Errorf("answer after the outage = %+v", res)
	}
}

// Malformed commands are answered malformed with their id; a decimal
// exponent near 2^31 is refused without being computed; an unknown op is
// refused.
func TestRefusals(t *testing.T) {
	r := newRig(t)
	r.unit.SetHolding(0, 5)
	r.start()
	p := newPlatform(t, r.broker.URL, false)
	p.ready()
	// {"id": "bad-1", "op": 7}
	p.sendRaw([]byte{0xa2, 0x62, 'i', 'd', 0x65, 'b', 'a', 'd', '-', '1', 0x62, 'o', 'p', 0x07})
	if res, _ := p.wait("bad-1", 1); res.OK || res.Status != wire.ResultMalformed || !strings.Contains(res.Err, "op") {
		t.Errorf("malformed = %+v", res)
	}
	p.send(setCmd("huge", wire.Dec(1, 1<<31-1)))
	if res, _ := p.wait("huge", 1); res.OK || res.Status != wire.ResultRefused || !strings.Contains(res.Err, "exponent") {
		t.Errorf("huge exponent = %+v", res)
	}
	p.send(setCmd("toobig", wire.Int(70000)))
	if res, _ := p.wait("toobig", 1); res.OK || res.Status != wire.ResultFailed || !strings.Contains(res.Err, "does not fit") {
		t.Errorf("70000 into a uint16 = %+v", res)
	}
	if v := holding0(t, r); v != 5 {
		t.Errorf("holding 0 = %d after refused sets", v)
	}
	p.send(&wire.Command{ID: "reboot", Op: "reboot"})
	if res, _ := p.wait("reboot", 1); res.OK || res.Status != wire.ResultRefused || !strings.Contains(res.Err, `unknown operation "reboot"`) {
		t.Errorf("unknown op = %+v", res)
	}
	p.send(&wire.Command{ID: "coil", Op: wire.OpSet, Dev: "pump-station", Args: map[string]wire.Value{"point": wire.Text("pump_on"), "value": wire.Bool(true)}})
	if res, _ := p.wait("coil", 1); !res.OK {
		t.Errorf("set coil = %+v", res)
	}
	if on, _ := r.unit.Coil(0); !on {
		t.Error("the coil was not written")
	}
}
