package scan_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/townlink/townlink/gateway/bus"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/hardware/serialsim"
)

var mode2400 = hardware.Mode{Baud: 2400, Parity: hardware.ParityEven}

// serveShared runs simulators on one PTY through a Multidrop, like
// devices of several protocols on one RS-485 line, and returns its path.
func serveShared(t *testing.T, srvs ...interface {
	Serve(context.Context, hardware.Port) error
}) string {
	t.Helper()
	pty, err := serialsim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	md := serialsim.NewMultidrop(pty)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, len(srvs)+1)
	for _, s := range srvs {
		p := md.Attach()
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Serve(ctx, p) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); errs <- md.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, serialsim.ErrMultidropStopped) {
				t.Errorf("simulator on %s: %v", pty.Path(), err)
			}
		}
		pty.Close()
	})
	return pty.Path()
}

// newOwner is a line owner (gateway/bus) for the scan to borrow the line
// from.
func newOwner(t *testing.T, name string, mode hardware.Mode, open func() (bus.Port, error), devs []bus.Device, emit bus.Emit) *bus.Line {
	t.Helper()
	l, err := bus.New(bus.Config{Name: name, Mode: mode, Open: open, Devices: devs, Emit: emit})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
