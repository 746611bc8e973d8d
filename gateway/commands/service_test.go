package commands

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/wire"
)

const testConfig = `gateway:
  id: gw-unit-01
  county: "320583"
  township: "320583104"
  data_dir: /var/lib/townlink
uplink:
  brokers: ["tcp://127.0.0.1:1883"]
%slines:
  - {name: RS485-1, port: /dev/ttyUSB0, baud: 9600}
devices:
  - id: pump-station
    kind: enterprise
    driver: modbus
    line: RS485-1
    unit: 1
    interval: 1h
    outputs: [setpoint_cm]
    points:
      - {name: setpoint_cm, table: holding, address: 0, type: uint16}
`

func unitService(t testing.TB, extraUplink string, queue int) (*Service, *memResults) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(testConfig, extraUplink)))
	if err != nil {
		t.Fatal(err)
	}
	seen, err := OpenSeen(newMemStore(), SeenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := &memResults{}
	s, err := New(Options{Config: cfg, Results: res, Seen: seen, Synced: func() bool { return false }, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return s, res
}

func encode(t testing.TB, c *wire.Command) []byte {
	t.Helper()
	b, err := wire.EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drain runs the waiting commands, as Run does.
func drain(ctx context.Context, s *Service) {
	for _, id := range s.o.Seen.Pending() {
		s.runPending(ctx, id)
	}
}

// A full queue answers overflow at once, and that stays the id's answer.
func TestOverflow(t *testing.T) {
	s, res := unitService(t, "", 2)
	ctx := t.Context()
	for i := range 3 {
		s.Receive(ctx, encode(t, &wire.Command{ID: fmt.Sprintf("p%d", i), Op: wire.OpPing}))
	}
	got := res.all()
	if len(got) != 1 || got[0].ID != "p2" || got[0].Status != wire.ResultOverflow || got[0].OK {
		t.Fatalf("after 3 commands into a queue of 2: %+v", got)
	}
	drain(ctx, s)
	// The overflowed id sent again is answered the same, not run.
	s.Receive(ctx, encode(t, &wire.Command{ID: "p2", Op: wire.OpPing}))
	drain(ctx, s)
	got = res.all()
	if len(got) != 4 {
		t.Fatalf("answers: %+v", got)
	}
	for i, want := range []string{wire.ResultOverflow, wire.ResultDone, wire.ResultDone, wire.ResultOverflow} {
		if got[i].Status != want {
			t.Errorf("answer %d = %+v, want %s", i, got[i], want)
		}
	}
	if !bytes.Equal(res.raw[0], res.raw[3]) {
		t.Error("the overflowed id got two different answers")
	}
}

// What cannot carry an id cannot be answered; what can is answered malformed.
func TestMalformed(t *testing.T) {
	s, res := unitService(t, "", 4)
	s.Receive(t.Context(), []byte{0xff, 0x00})
	s.Receive(t.Context(), []byte{0xa1, 0x62, 'o', 'p', 0x61, 'x'})
	if got := res.all(); len(got) != 0 {
		t.Fatalf("answers to commands without an id: %+v", got)
	}
	// {"id": "m1", "op": "ping", "extra": 1}: strict decoding refuses the key.
	s.Receive(t.Context(), []byte{0xa3, 0x62, 'i', 'd', 0x62, 'm', '1', 0x62, 'o', 'p', 0x64, 'p', 'i', 'n', 'g', 0x65, 'e', 'x', 't', 'r', 'a', 0x01})
	got := res.all()
	if len(got) != 1 || got[0].ID != "m1" || got[0].Status != wire.ResultMalformed || !strings.Contains(got[0].Err, "extra") {
		t.Fatalf("malformed = %+v", got)
	}
	if s.o.Seen.PendingLen() != 0 {
		t.Error("a malformed command was queued")
	}
}

// The config op returns the running config as YAML that townlink check
// accepts, without the password file's path or content.
func TestConfigOpIsRedactedYAML(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "uplink-secret.pw")
	if err := os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, res := unitService(t, fmt.Sprintf("  username: gw-unit-01\n  password_file: %q\n", pw), 4)
	s.Handle(t.Context(), &wire.Command{ID: "cfg", Op: wire.OpConfig})
	got := res.all()
	if len(got) != 1 || !got[0].OK {
		t.Fatalf("config = %+v", got)
	}
	y := got[0].Vals["config"].String()
	for _, secret := range []string{"s3cret", "uplink-secret.pw", dir} {
		if strings.Contains(y, secret) {
			t.Errorf("the config answer contains %q:\n%s", secret, y)
		}
	}
	back, err := config.Parse("from-platform.yaml", []byte(y))
	if err != nil {
		t.Fatalf("the config answer does not pass townlink check: %v\n%s", err, y)
	}
	if back.Uplink.PasswordFile != config.RedactedMark || back.Uplink.Username != "gw-unit-01" {
		t.Errorf("uplink = %+v", back.Uplink)
	}
	if len(back.Devices) != 1 || back.Devices[0].ID != "pump-station" || fmt.Sprint(back.Devices[0].Outputs) != "[setpoint_cm]" {
		t.Errorf("devices = %+v", back.Devices)
	}
}

// blockedLine runs a job only after the command's own deadline has passed,
// as a line busy with a long poll would.
type blockedLine struct{ cmdDone <-chan struct{} }

func (l *blockedLine) Do(ctx context.Context, fn func(context.Context, hardware.Port) error) error {
	<-l.cmdDone
	return fn(context.Background(), nil)
}

func (l *blockedLine) PollNow(context.Context, string) ([]drivers.Reading, error) { return nil, nil }

type recordWriter struct{ writes int }

func (w *recordWriter) WritePoint(context.Context, string, drivers.Value) error {
	w.writes++
	return nil
}

// A write whose deadline passed while it waited for the line does not
// touch the device.
func TestWriteNotAfterDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	w := &recordWriter{}
	d := OnLine(&blockedLine{cmdDone: ctx.Done()}, config.Device{ID: "pump"}, func(config.Device, hardware.Port) (PointWriter, error) { return w, nil })
	err := d.Write(ctx, "setpoint_cm", drivers.Int(1))
	if err == nil || !strings.Contains(err.Error(), "deadline passed while it waited") {
		t.Errorf("err = %v", err)
	}
	if w.writes != 0 {
		t.Error("the device was written after the command's deadline")
	}
}

// The job's context ends with the command's deadline.
func TestWithinEndsWithCommand(t *testing.T) {
	cmd, cancel := context.WithTimeout(t.Context(), time.Hour)
	jctx, stop, err := within(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if dl, ok := jctx.Deadline(); !ok || dl.After(time.Now().Add(time.Hour)) {
		t.Errorf("job deadline = %v, %v", dl, ok)
	}
	cancel()
	<-jctx.Done() // hangs (and the test times out) if the command's end is not passed on
}

func TestSeenBounds(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	st := newMemStore()
	o := SeenOptions{Max: 10, Keep: time.Hour, Now: func() time.Time { return now }}
	s, err := OpenSeen(st, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		now = now.Add(time.Second)
		if err := s.Put(fmt.Sprintf("id%02d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > 11 || n < 10 {
		t.Errorf("Len = %d, want 10..11 (Max 10, pruned past 11)", n)
	}
	if _, ok, _ := s.Get("id29"); !ok {
		t.Error("the newest id was forgotten")
	}
	if _, ok, _ := s.Get("id00"); ok {
		t.Error("the oldest id was kept")
	}
	if v, ok, _ := s.Get("id29"); !ok || !bytes.Equal(v.Result, []byte{29}) {
		t.Errorf("Get id29 = %v %v", v, ok)
	}
	// Reopened: bounded to Max at once; reopened two hours later: empty.
	s, err = OpenSeen(st, o)
	if err != nil || s.Len() != 10 || len(st.m) != 10 {
		t.Fatalf("reopened: Len %d, store %d, %v", s.Len(), len(st.m), err)
	}
	now = now.Add(2 * time.Hour)
	st.m["corrupt"] = []byte{1}
	s, err = OpenSeen(st, o)
	if err != nil || s.Len() != 0 || len(st.m) != 0 {
		t.Fatalf("reopened after Keep: Len %d, store %v, %v", s.Len(), st.m, err)
	}
}

func TestDriverValueBounds(t *testing.T) {
	for _, v := range []wire.Value{wire.Dec(1, 1<<31-1), wire.Dec(1, -(1 << 31)), wire.Dec(5, 21), wire.Text("1"), wire.Float(0)} {
		if _, err := driverValue(v); (err == nil) != (v.Kind() == wire.KindFloat) {
			t.Errorf("driverValue(kind %v) err = %v", v.Kind(), err)
		}
	}
	if dv, err := driverValue(wire.Dec(12345, -20)); err != nil || dv.String() != "0.00000000000000012345" {
		t.Errorf("driverValue(12345e-20) = %v, %v", dv, err)
	}
}

// A command acknowledged to the broker is stored before the PUBACK: a
// restart before it ran still runs it, once. One the gateway stopped in is
// answered "outcome unknown" by the next run, never run again.
func TestRestartRunsWaitingAnswersStarted(t *testing.T) {
	st := newMemStore()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(testConfig, "")))
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*Service, *memResults) {
		seen, err := OpenSeen(st, SeenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res := &memResults{}
		s, err := New(Options{Config: cfg, Results: res, Seen: seen, Synced: func() bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		return s, res
	}
	s, res := open()
	s.Receive(t.Context(), encode(t, &wire.Command{ID: "waiting", Op: wire.OpPing}))
	unknown, _ := wire.EncodeCommandResult(&wire.CommandResult{ID: "running", Status: wire.ResultFailed, Err: "outcome unknown"})
	if err := s.o.Seen.PutStarted("running", unknown); err != nil {
		t.Fatal(err)
	}
	if got := res.all(); len(got) != 0 {
		t.Fatalf("answered before running: %+v", got)
	}

	// "Restart": a new service on the same store. Redeliveries arrive
	// before Run starts; they are not answered twice.
	s, res = open()
	s.Receive(t.Context(), encode(t, &wire.Command{ID: "waiting", Op: wire.OpPing}))
	s.Receive(t.Context(), encode(t, &wire.Command{ID: "running", Op: wire.OpPing}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(res.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	got := res.all()
	if len(got) != 2 {
		t.Fatalf("answers after restart: %+v", got)
	}
	byID := map[string]*wire.CommandResult{got[0].ID: got[0], got[1].ID: got[1]}
	if r := byID["running"]; r == nil || r.Status != wire.ResultFailed || r.Err != "outcome unknown" {
		t.Errorf("running = %+v", r)
	}
	if r := byID["waiting"]; r == nil || !r.OK || r.Status != wire.ResultDone {
		t.Errorf("waiting = %+v", r)
	}
	if n := s.o.Seen.PendingLen() + len(s.o.Seen.Started()); n != 0 {
		t.Errorf("%d commands still waiting or started", n)
	}
}
