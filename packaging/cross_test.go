package packaging

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

// crossTargets are the boards' architectures and the qemu-user emulators
// that run them (Debian's qemu-user-static; this machine has no
// binfmt_misc, so every run names its emulator).
var crossTargets = []struct {
	name, goarch, goarm, qemu string
}{
	{"arm64", "arm64", "", "qemu-aarch64-static"},
	{"armv7", "arm", "7", "qemu-arm-static"},
}

// crossBuild cross-compiles a package's test binary (test) or a command.
func crossBuild(t *testing.T, goarch, goarm, out string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Args = append(cmd.Args[:2], append([]string{"-o", out}, cmd.Args[2:]...)...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
}

func qemu(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): apt-get install qemu-user-static (scripts/deps.sh)", name, err)
	}
	return p
}

// TestCrossQueueCrashRecovery runs badgerq's kill -9 crash-recovery test,
// cross-compiled, under qemu-user for each board architecture: the child
// the test kills is the same emulated binary.
func TestCrossQueueCrashRecovery(t *testing.T) {
	for _, tg := range crossTargets {
		t.Run(tg.name, func(t *testing.T) {
			emu := qemu(t, tg.qemu)
			bin := filepath.Join(t.TempDir(), "badgerq.test")
			crossBuild(t, tg.goarch, tg.goarm, bin, "test", "-c", "./uplink/badgerq")
			start := time.Now()
			cmd := exec.Command(emu, bin, "-test.run=^TestCrashRecovery$", "-test.count=1", "-test.short", "-test.v")
			cmd.Env = append(os.Environ(), "TOWNLINK_TEST_EXEC_WRAPPER="+emu)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestCrashRecovery") {
				t.Fatalf("%s: crash recovery under %s: %v\n%s", tg.name, tg.qemu, err, out)
			}
			t.Logf("%s: TestCrashRecovery passed under %s in %v", tg.name, tg.qemu, time.Since(start).Round(time.Second))
		})
	}
}

// TestCrossGatewayOnPTY runs the cross-built gateway under qemu-user
// against a simulated DL/T 645 meter on a PTY, with no county broker, and
// reads its metrics until the meter's readings were polled and stored.
func TestCrossGatewayOnPTY(t *testing.T) {
	for _, tg := range crossTargets {
		t.Run(tg.name, func(t *testing.T) {
			emu := qemu(t, tg.qemu)
			dir := t.TempDir()
			bin := filepath.Join(dir, "townlink")
			crossBuild(t, tg.goarch, tg.goarm, bin, "build", "./gateway/cmd/townlink")
			runGatewayOnPTY(t, dir, emu, bin)
		})
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func runGatewayOnPTY(t *testing.T, dir, emu, bin string) {
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	line := dlt645sim.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, dlt645sim.NewMeter("202612070001", dlt645sim.V2007))
	go line.Serve(ctx, pty)

	metrics := freePort(t)
	cfg := fmt.Sprintf(`gateway:
  id: gw-cross
  county: "320583"
  township: "320583104"
  data_dir: %q
  metrics_listen: %q
uplink:
  brokers: ["tcp://%s"]
lines:
  - name: RS485-1
    port: %q
    baud: 2400
    parity: even
devices:
  - id: meter-1
    kind: power
    driver: dlt645
    line: RS485-1
    address: "202612070001"
    interval: 2s
    timeout: 1500ms
`, filepath.Join(dir, "data"), metrics, freePort(t), pty.Path())
	path := filepath.Join(dir, "townlink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(emu, bin, "check", path).CombinedOutput(); err != nil {
		t.Fatalf("townlink check under %s: %v\n%s", emu, err, out)
	}
	cmd := exec.Command(emu, bin, "run", "-c", path)
	logs, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	reads, accepted := 0, 0
	deadline := time.Now().Add(3 * time.Minute)
	for reads < 3 || accepted < 3 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("under %s the gateway read the meter %d times and stored %d readings in 3 minutes; log:\n%s", emu, reads, accepted, b)
		}
		time.Sleep(time.Second)
		reads, accepted = scrape(metrics)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("gateway under %s did not stop cleanly: %v\n%s", emu, err, b)
	}
	t.Logf("under %s: %d polls answered, %d readings stored", emu, reads, accepted)
}

var (
	reReads    = regexp.MustCompile(`(?m)^townlink_line_transactions_total\{line="RS485-1",result="ok"\} (\d+)`)
	reAccepted = regexp.MustCompile(`(?m)^townlink_readings_accepted_total (\d+)`)
)

// scrape returns the meter's answered polls and the stored readings (0, 0
// while the endpoint is not up).
func scrape(addr string) (reads, accepted int) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	if m := reReads.FindSubmatch(b); m != nil {
		reads, _ = strconv.Atoi(string(m[1]))
	}
	if m := reAccepted.FindSubmatch(b); m != nil {
		accepted, _ = strconv.Atoi(string(m[1]))
	}
	return reads, accepted
}

// TestCross32BitStoreSurvivesCompaction fills a store with 96 MiB of
// 200-byte records (many compactions) in 32-bit builds: natively as 386
// and under qemu-arm as armv7. Before badgerq's thirtyTwoBit options this
// panicked at the first compaction (tens of MB) on both.
func TestCross32BitStoreSurvivesCompaction(t *testing.T) {
	for _, tg := range []struct{ name, goarch, goarm, emu string }{
		{"386", "386", "", ""},
		{"armv7", "arm", "7", "qemu-arm-static"},
	} {
		t.Run(tg.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "packaging.test")
			crossBuild(t, tg.goarch, tg.goarm, bin, "test", "-c", "./packaging")
			args := []string{bin, "-test.run=^TestFillHelper$", "-test.count=1"}
			if tg.emu != "" {
				args = append([]string{qemu(t, tg.emu)}, args...)
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), fillEnv+"="+filepath.Join(dir, "store")+":200:96")
			out, err := cmd.CombinedOutput()
			if err != nil || !regexp.MustCompile(`(?m)^FILLED \d+ ok$`).Match(out) {
				t.Fatalf("%s: filling a store with 96 MiB: %v\n%.4000s", tg.name, err, out)
			}
			t.Logf("%s: %s", tg.name, regexp.MustCompile(`(?m)^FILLED .*$`).Find(out))
		})
	}
}
