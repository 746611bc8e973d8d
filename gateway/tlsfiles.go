package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/config"
)

// ErrTLS reports unusable certificate files (certs.ErrTLS).
var ErrTLS = certs.ErrTLS

// SetupError is a problem with something the config names — a file, a
// serial port, a listen address — at its config path (as in
// config.Error.Path, e.g. "uplink.key", "lines[0].port"), so that
// `townlink check` can point at file:line:col with config.Find.
type SetupError struct {
	Path string
	Err  error
}

func (e *SetupError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// errRedacted is a secret file's path that the config command replaced
// with config.RedactedMark.
var errRedacted = fmt.Errorf("the path is %s (the config command leaves secret files' paths out): write the file's path", config.RedactedMark)

// CheckSecrets checks every file the config names that run would read:
// the secret files (uplink password file and TLS key, the field broker's
// key, the field devices' password files, the local page's password file) with certs.CheckSecret, and the
// certificates (uplink CA, client certificate and key as a pair; the
// field broker's certificate and key) by loading them. It reports every
// problem at once, each a *SetupError. New and `townlink check` call it.
func CheckSecrets(cfg *config.Config) error {
	var errs []error
	add := func(path string, err error) {
		if err != nil {
			errs = append(errs, &SetupError{Path: path, Err: err})
		}
	}
	check := func(path, file string) {
		switch file {
		case "":
		case config.RedactedMark: // a copy of the config command's answer
			add(path, errRedacted)
		default:
			add(path, certs.CheckSecret(file))
		}
	}
	u := cfg.Uplink
	check("uplink.password_file", u.PasswordFile)
	check("uplink.key", u.Key)
	if (u.CA != "" || u.Cert != "") && u.Key != config.RedactedMark {
		if _, err := certs.NewClient(u.CA, u.Cert, u.Key); err != nil && !errors.Is(err, certs.ErrPerm) {
			path := "uplink.cert"
			if u.Cert == "" || strings.Contains(err.Error(), u.CA) {
				path = "uplink.ca"
			}
			add(path, err)
		}
	}
	if fb := cfg.FieldBroker; fb.TLSListen != "" {
		check("field_broker.key", fb.Key)
		if fb.Cert != "" && fb.Key != "" && fb.Key != config.RedactedMark {
			if _, err := tls.LoadX509KeyPair(fb.Cert, fb.Key); err != nil {
				add("field_broker.cert", fmt.Errorf("%w: %s with %s: %w", ErrTLS, fb.Cert, fb.Key, err))
			}
		}
	}
	for i, d := range cfg.Devices {
		if d.PasswordFile == config.RedactedMark {
			add(fmt.Sprintf("devices[%d].password_file", i), fmt.Errorf("device %s: %w", d.ID, errRedacted))
		} else if d.PasswordFile != "" {
			if err := certs.CheckSecret(d.PasswordFile); err != nil {
				add(fmt.Sprintf("devices[%d].password_file", i), fmt.Errorf("device %s: %w", d.ID, err))
			}
		}
	}
	check("web.password_file", cfg.Web.PasswordFile)
	return errors.Join(errs...)
}

// CheckPorts reports serial ports that do not exist or cannot be opened
// now. Run does not refuse them (a line owner keeps retrying its port, so
// an adapter plugged in later is picked up); check reports them as
// warnings unless asked to be strict.
func CheckPorts(cfg *config.Config) error {
	var errs []error
	for i, l := range cfg.Lines {
		dev := l.Device
		if dev == "" {
			dev = l.Port
		}
		if err := checkPort(dev); err != nil {
			errs = append(errs, &SetupError{Path: fmt.Sprintf("lines[%d].port", i), Err: err})
		}
	}
	return errors.Join(errs...)
}

// CheckListen reports listen addresses (metrics, field broker, the local
// page) that cannot be bound now: run refuses or loses those parts.
func CheckListen(cfg *config.Config) error {
	var errs []error
	for _, a := range []struct{ path, addr string }{
		{"gateway.metrics_listen", cfg.Gateway.MetricsListen},
		{"field_broker.listen", cfg.FieldBroker.Listen},
		{"field_broker.tls_listen", cfg.FieldBroker.TLSListen},
		{"web.listen", cfg.Web.Listen},
	} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			errs = append(errs, &SetupError{Path: a.path, Err: fmt.Errorf(
				"%w: cannot listen on %s: %w (another program, or a running gateway, has it: `ss -ltnp | grep %s`; pick another port)",
				ErrHost, a.addr, err, portOf(a.addr))})
			continue
		}
		l.Close()
	}
	return errors.Join(errs...)
}

// ErrHost reports a serial port or listen address this machine does not
// offer.
var ErrHost = errors.New("gateway: not available on this machine")

func checkPort(dev string) error {
	fi, err := os.Stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: serial port %s does not exist (is the adapter plugged in? `townlink ports` lists the ports; `dmesg | tail` shows a new USB adapter)", ErrHost, dev)
	case err != nil:
		return fmt.Errorf("%w: serial port %s: %w", ErrHost, dev, err)
	case fi.Mode()&fs.ModeCharDevice == 0:
		return fmt.Errorf("%w: serial port %s is not a character device (%v); name the tty, e.g. /dev/ttyUSB0", ErrHost, dev, fi.Mode().Type())
	}
	f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: serial port %s: permission denied (add the gateway's user to the port's group, usually dialout: `usermod -a -G dialout townlink`)", ErrHost, dev)
	}
	if err == nil {
		f.Close()
	}
	return nil
}

func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return ":" + p
	}
	return addr
}
