package commands

import (
	"testing"

	"github.com/townlink/townlink/uplink/wire"
)

// FuzzReceive: whatever arrives on cmd, a command whose id can be read gets
// exactly one answer with that id, and nothing else is answered.
func FuzzReceive(f *testing.F) {
	for _, c := range []*wire.Command{
		{ID: "p", Op: wire.OpPing},
		{ID: "s", Op: wire.OpSet, Dev: "pump-station", Args: map[string]wire.Value{"point": wire.Text("setpoint_cm"), "value": wire.Dec(1, 1<<31-1)}},
		{ID: "r", Op: wire.OpRead, Dev: "pump-station", Expires: 1},
		{ID: "c", Op: wire.OpConfig},
		{ID: "t", Op: wire.OpTimeSync},
		{ID: "x", Op: "reboot"},
	} {
		b, _ := wire.EncodeCommand(c)
		f.Add(b)
	}
	f.Add([]byte{0xa2, 0x62, 'i', 'd', 0x62, 'm', '1', 0x62, 'o', 'p', 0x07})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, res := unitService(t, "", 1)
		s.Receive(t.Context(), p)
		drain(t.Context(), s)
		got := res.all()
		id, ok := wire.CommandID(p)
		switch {
		case !ok && len(got) != 0:
			t.Fatalf("answered a command without an id: %+v", got)
		case ok && (len(got) != 1 || got[0].ID != id):
			t.Fatalf("command %q: answers %+v", id, got)
		case ok && got[0].Status == "":
			t.Fatalf("answer without a status: %+v", got[0])
		}
	})
}
