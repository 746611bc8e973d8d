package gateway_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/townlink/townlink/firmware-sim/dlt645sim"
	"github.com/townlink/townlink/firmware-sim/modbussim"
	"github.com/townlink/townlink/gateway"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

// chromiumPath is Debian's chromium, which the test installs when it is
// missing (scripts/deps.sh lists it too).
const chromiumPath = "/usr/bin/chromium"

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	t.Log("chromium is missing: apt-get install chromium")
	if _, err := apt("install", "-y", "--no-install-recommends", "chromium"); err == nil {
		return
	}
	apt("update") // stale package lists on a fresh machine
	if out, err := apt("install", "-y", "--no-install-recommends", "chromium"); err != nil {
		t.Fatalf("chromium is missing and apt-get install chromium failed (run scripts/deps.sh as root): %v\n%s", err, out)
	}
}

// browser starts headless Chromium with a fresh profile; the returned
// context drives one tab. Any uncaught JavaScript exception fails the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	needChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var jsErrs []string
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			mu.Lock()
			jsErrs = append(jsErrs, msg)
			mu.Unlock()
		}
	}))
	t.Cleanup(func() { cancel(); acancel() })
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range jsErrs {
			t.Errorf("JavaScript exception on the page: %s", e)
		}
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatal(err)
	}
	return ctx
}

// The local page, end to end in a real browser: it shows a simulated
// meter's value and follows its changes without a reload, refuses a
// wrong password, logs in with the right one, "Sync meter clocks" answers
// and "Read now" polls the meter at once. TOWNLINK_SCREENSHOT=docs/screenshot.png (relative to the
// repository) keeps the phone-sized screenshot for the README.
func TestLocalPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Log("slow: a browser; still run by make test")
	}
	broker := mosquittotest.Start(t)
	meter := dlt645sim.NewMeter("218231000114", dlt645sim.V2007)
	meter.Set("energy_kwh", "1520.40")
	meter.Set("voltage_a_v", "229.7")
	meter.Set("current_a_a", "3.120")
	mePath := serve(t, dlt645sim.NewLine(hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}, meter))
	tank := modbussim.NewUnit(3)
	tank.Animate(func(now time.Time, u *modbussim.Unit) {
		u.SetHolding(0, uint16(200+now.Second()%20)) // 20.0 .. 21.9 °C
	})
	mbPath := serve(t, modbussim.NewBus(hardware.Mode{Baud: 9600}, tank))

	dir := t.TempDir()
	pw := filepath.Join(dir, "web.pw")
	if err := os.WriteFile(pw, []byte("tech-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, dir, broker.URL, `
- {name: RS485-1, port: "`+mbPath+`", baud: 9600}
- {name: RS485-2, port: "`+mePath+`", baud: 2400, parity: even}`, `
- id: pump-station-tank
  driver: modbus
  line: RS485-1
  unit: 3
  interval: 500ms
  timeout: 200ms
  points:
    - {name: temp_c, table: holding, address: 0, type: int16, scale: 0.1}
- id: office-meter
  driver: dlt645
  line: RS485-2
  address: "218231000114"
  interval: 1s
  timeout: 500ms
  read: [energy_kwh, voltage_a_v, current_a_a]`)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("web: {listen: \"127.0.0.1:0\", password_file: \"" + pw + "\"}\n")
	f.Close()
	url := startWeb(t, path)

	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	energy := `[data-device="office-meter"] [data-point="energy_kwh"] .val`
	textOf := func(sel string) string {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+jsString(sel)+`); return e ? e.textContent : "(no element)"; })()`))
		return got
	}
	waitText := func(sel, want string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const e = document.querySelector(`+jsString(sel)+`); return !!e && e.textContent.includes(`+jsString(want)+`); })()`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second)))
		if err != nil {
			t.Fatalf("waiting for %q in %s: %v (it shows %q)", want, sel, err, textOf(sel))
		}
	}
	navigations := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("navigation").length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Read-only: the page shows the meter's value, then follows it live.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(412, 915), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitText(energy, "1520.40")
	navs := navigations()
	meter.Set("energy_kwh", "1520.87")
	waitText(energy, "1520.87")
	waitText(`[data-device="office-meter"] .state`, "ok")
	waitText(`#uplink`, "uplink connected")
	waitText(`[data-line="RS485-2"]`, "2400 8E1")
	if after := navigations(); after != navs {
		t.Errorf("the page reloaded (%d navigations, then %d); it should update in place", navs, after)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector('[data-device="office-meter"] button[data-action="read"]').hidden`))
	if err != nil || visible {
		t.Error(`"Read now" is offered before login`)
	}

	// A wrong password is refused; the right one (after the back-off) logs in.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#password`), "not-it"),
		chromedp.Click(chromedp.CSS(`#login-btn`)),
	); err != nil {
		t.Fatal(err)
	}
	waitText(`#result`, "wrong password")
	time.Sleep(1100 * time.Millisecond) // the first back-off is one second
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("password").value = ""`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#password`), "tech-pass"),
		chromedp.Click(chromedp.CSS(`#login-btn`)),
	); err != nil {
		t.Fatal(err)
	}
	waitText(`#result`, "Logged in.")
	visible, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.querySelector('[data-device="office-meter"] button[data-action="read"]').hidden && !document.getElementById("logged").hidden`))
	if err != nil || !visible {
		t.Fatalf(`after login "Read now" is not offered (%v)`, err)
	}

	// Sync meter clocks: broadcast on the meter's line, or refused with
	// the reason while this machine's clock is not synchronised.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#time-sync`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const t = document.getElementById("result").textContent; return t.includes("Time broadcast on 1 line(s)") || t.includes("clock is not synchronised"); })()`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		t.Fatalf("time sync: %v (the page shows %q)", err, textOf("#result"))
	}

	// Read now: the meter's new value comes back in the answer.
	meter.Set("energy_kwh", "1521.05")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-device="office-meter"] button[data-action="read"]`))); err != nil {
		t.Fatal(err)
	}
	waitText(`#result`, "Read office-meter at")
	waitText(`#result`, "energy_kwh = 1521.05")
	waitText(energy, "1521.05")
	waitText(`[data-device="pump-station-tank"] [data-point="temp_c"] .val`, ".")

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 380 || b.Dy() < 900 {
		t.Errorf("screenshot %v, want the whole phone-sized page", b)
	}
	out := filepath.Join(t.TempDir(), "screenshot.png")
	if p := os.Getenv("TOWNLINK_SCREENSHOT"); p != "" {
		out = filepath.Join("..", p)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}

// startWeb runs the gateway of the config at path and returns its page's URL.
func startWeb(t *testing.T, path string) string {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for g.WebAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the page is not listening after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + g.WebAddr() + "/"
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
