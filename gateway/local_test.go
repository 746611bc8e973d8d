package gateway_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

// controlRig runs a real gateway with a Modbus unit that answers (tank)
// and one that is silent (pump) on one PTY line, and returns a client of
// its control socket.
func controlRig(t *testing.T, extra string) (*modbussim.Unit, *localapi.Client, string, func()) {
	t.Helper()
	broker := mosquittotest.Start(t)
	tank := modbussim.NewUnit(3)
	tank.SetHolding(0, 215) // 21.5 °C with scale 0.1
	pump := modbussim.NewUnit(4)
	pump.SetFault(modbussim.Silent())
	mbPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, tank, pump))
	dir := t.TempDir()
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+mbPath+`", baud: 9600}`, `
- id: tank
  driver: modbus
  line: RS485-1
  unit: 3
  interval: 200ms
  timeout: 100ms
  points:
    - {name: temp_c, table: holding, address: 0, type: int16, scale: 0.1}
- id: pump
  driver: modbus
  line: RS485-1
  unit: 4
  interval: 200ms
  timeout: 50ms
  retries: 0
  points:
    - {name: speed_rpm, table: holding, address: 0, type: uint16}`)
	if extra != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(extra)
		f.Close()
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	stop := runGateway(t, path)
	return tank, localapi.NewClient(cfg.Gateway.Socket), path, stop
}

// waitStatus polls the socket until cond holds on the status.
func waitStatus(t *testing.T, c *localapi.Client, what string, cond func(*localapi.Status) bool) *localapi.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *localapi.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := c.Status(context.Background())
		if err == nil && cond(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last status %+v, err %v", what, last, lastErr)
	return nil
}

func device(st *localapi.Status, id string) (localapi.Device, bool) {
	for _, d := range st.Devices {
		if d.ID == id {
			return d, true
		}
	}
	return localapi.Device{}, false
}

func value(d localapi.Device, point string) string {
	for _, v := range d.Values {
		if v.Name == point {
			return v.Value
		}
	}
	return ""
}

// The control socket answers townlink status from the running gateway:
// devices with states and last values, the line's polls and errors, the
// streams' backlog and the uplink; read polls a device now; errors say
// which device and why; the socket is 0660 and goes away with the gateway.
func TestControlSocketAnswersFromTheRunningGateway(t *testing.T) {
	tank, c, _, stop := controlRig(t, "")
	st := waitStatus(t, c, "tank ok with 21.5, pump down, uplink connected, telemetry queued", func(st *localapi.Status) bool {
		tk, _ := device(st, "tank")
		pu, _ := device(st, "pump")
		seq := uint64(0)
		for _, s := range st.Streams {
			if s.Name == "telemetry" {
				seq = s.LastSeq
			}
		}
		return tk.State == "ok" && value(tk, "temp_c") == "21.5" && pu.State == "down" && st.Uplink.Connected && seq > 0
	})
	if pu, _ := device(st, "pump"); !strings.Contains(pu.LastError, "unit 4") {
		t.Errorf("the silent pump's last error %q does not name it", pu.LastError)
	}
	if st.Gateway != "gw-test-01" || len(st.Lines) != 1 {
		t.Fatalf("status %+v", st)
	}
	l := st.Lines[0]
	if l.Name != "RS485-1" || l.Mode != "9600 8N1" || !l.PortOpen || l.OK == 0 || l.Timeouts == 0 || l.Utilisation <= 0 {
		t.Errorf("line %+v: want RS485-1 9600 8N1, open, polls answered (tank) and timeouts (pump)", l)
	}
	if len(st.Streams) != 4 || st.Uplink.Brokers == nil {
		t.Errorf("streams %+v, uplink %+v", st.Streams, st.Uplink)
	}

	tank.SetHolding(0, 230)
	ctx := context.Background()
	res, err := c.Read(ctx, "tank")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Values) != 1 || res.Values[0].Name != "temp_c" || res.Values[0].Value != "23.0" {
		t.Errorf("read tank = %+v, want temp_c 23.0", res)
	}
	if _, err := c.Read(ctx, "nope"); !errors.Is(err, localapi.ErrUnknown) {
		t.Errorf("read of an unknown device: %v, want ErrUnknown", err)
	}
	if _, err := c.Read(ctx, "pump"); !errors.Is(err, localapi.ErrDevice) {
		t.Errorf("read of a silent device: %v, want ErrDevice", err)
	}
	// No DL/T 645 meter here: refused, with the reason.
	if _, err := c.TimeSync(ctx); !errors.Is(err, localapi.ErrRefused) {
		t.Errorf("time sync without meters: %v, want ErrRefused", err)
	}
	if _, err := c.Scan(ctx, "RS485-9", localapi.ScanOptions{}, nil); !errors.Is(err, localapi.ErrUnknown) {
		t.Errorf("scan of an unknown line: %v, want ErrUnknown", err)
	}

	fi, err := os.Stat(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != localapi.SocketMode || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a socket with %04o", fi.Mode(), localapi.SocketMode)
	}
	if _, err := localapi.Listen(c.Path()); !errors.Is(err, localapi.ErrInUse) {
		t.Errorf("a second listener on a live socket: %v, want ErrInUse", err)
	}

	stop()
	if _, err := os.Stat(c.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after a clean stop: %v", err)
	}
	if _, err := c.Status(ctx); !errors.Is(err, localapi.ErrNotRunning) {
		t.Errorf("status with the gateway stopped: %v, want ErrNotRunning", err)
	}
}

// A socket file left by a gateway that was killed is replaced at start.
func TestControlSocketReplacesAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := localapi.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// What kill -9 leaves: the file without a listener behind it.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket is not there: %v", err)
	}
	ln, err = localapi.Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localapi.Listen(path); err == nil {
		t.Error("a regular file at the socket path was replaced")
	}
}

// A local page whose password file others may read is refused at start
// (and by townlink check), with the command that fixes it.
func TestWebPasswordFileMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "web.pw")
	if err := os.WriteFile(pw, []byte("pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pw, 0o644)
	path := writeConfig(t, dir, "tcp://127.0.0.1:1", "- {name: RS485-1, port: /dev/null}", "[]")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("web: {listen: \"127.0.0.1:0\", password_file: \"" + pw + "\"}\n")
	f.Close()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, nil)
	if !errors.Is(err, gateway.ErrStart) || !strings.Contains(err.Error(), "web.password_file") || !strings.Contains(err.Error(), "chmod 600 "+pw) {
		t.Fatalf("New with a 0644 web password file: %v", err)
	}
	if err := gateway.CheckSecrets(cfg); err == nil {
		t.Fatal("CheckSecrets (townlink check) accepted a 0644 web password file")
	}
	os.Remove(pw)
	if err := gateway.CheckSecrets(cfg); err == nil || !strings.Contains(err.Error(), "web.password_file") {
		t.Fatalf("CheckSecrets with the web password file missing: %v", err)
	}
}

// A second gateway on the same data_dir (two configs, or run while the
// service runs) is refused with what to do, not only Badger's words.
func TestSecondGatewayOnTheSameDataDirSaysSo(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load(writeConfig(t, dir, "tcp://127.0.0.1:1", "- {name: RS485-1, port: /dev/null}", "[]"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g.Run(ctx) // closes the store
	}()
	_, err = gateway.New(cfg, nil)
	if !errors.Is(err, gateway.ErrStart) || !strings.Contains(err.Error(), "a gateway already runs on this data_dir") {
		t.Fatalf("second New on the same data_dir: %v", err)
	}
}

// The config command's answer has secret files' paths as [redacted]: check
// names each one to fill in, not "stat [redacted]: no such file".
func TestCheckNamesRedactedPaths(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "tcp://127.0.0.1:1", "- {name: RS485-1, port: /dev/null}",
		"- {id: zfy-001, kind: recorder, driver: recorder, username: zfy-001, password_file: \""+config.RedactedMark+"\"}")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("web: {listen: \"127.0.0.1:0\", password_file: \"" + config.RedactedMark + "\"}\nfield_broker: {listen: \"127.0.0.1:0\"}\n")
	f.Close()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	err = gateway.CheckSecrets(cfg)
	for _, want := range []string{"devices[0].password_file: device zfy-001: the path is [redacted]", "web.password_file: the path is [redacted]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSecrets = %v, want it to name %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "stat") {
		t.Errorf("CheckSecrets looked for a file called [redacted]: %v", err)
	}
}
