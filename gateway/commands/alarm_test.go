package commands

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/wire"
)

// acker is the rules engine seen from the command path (a fake for this
// package's unit test only).
type acker struct{ acked []string }

var errNoAlarm = errors.New("no active alarm with this id")

func (a *acker) Ack(_ context.Context, id, by string) error {
	if id != "leak:w1:1" {
		return errNoAlarm
	}
	a.acked = append(a.acked, id+" by "+by)
	return nil
}

// alarm-ack reaches the engine with its args; an unknown id, a missing
// alarm_id or a gateway without rules are refused, saying why.
func TestAlarmAck(t *testing.T) {
	s, res := unitService(t, "", 8)
	s.Handle(t.Context(), &wire.Command{ID: "a0", Op: wire.OpAlarmAck, Args: map[string]wire.Value{"alarm_id": wire.Text("leak:w1:1")}})
	a := &acker{}
	s.o.Alarms = a
	s.Handle(t.Context(), &wire.Command{ID: "a1", Op: wire.OpAlarmAck, Args: map[string]wire.Value{"alarm_id": wire.Text("leak:w1:1"), "by": wire.Text("duty officer")}})
	s.Handle(t.Context(), &wire.Command{ID: "a2", Op: wire.OpAlarmAck, Args: map[string]wire.Value{"alarm_id": wire.Text("nope")}})
	s.Handle(t.Context(), &wire.Command{ID: "a3", Op: wire.OpAlarmAck})
	got := res.all()
	if len(got) != 4 {
		t.Fatalf("%d answers", len(got))
	}
	want := []struct {
		status, errHas string
	}{
		{wire.ResultRefused, "no rules"},
		{wire.ResultDone, ""},
		{wire.ResultRefused, "no active alarm"},
		{wire.ResultRefused, "args.alarm_id"},
	}
	for i, w := range want {
		if got[i].Status != w.status || !strings.Contains(got[i].Err, w.errHas) {
			t.Errorf("answer %d = %+v, want %s mentioning %q", i, got[i], w.status, w.errHas)
		}
	}
	if len(a.acked) != 1 || a.acked[0] != "leak:w1:1 by duty officer" {
		t.Errorf("engine saw %q", a.acked)
	}
}
