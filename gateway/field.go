package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/kiosk"
	"github.com/townlink/townlink/drivers/recorder"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/fieldbroker"
	"github.com/townlink/townlink/gateway/fieldin"
)

// buildField sets up the recorders and kiosks that publish to the
// embedded field broker and the ingest that keeps their messages. It reads
// their password files; the broker itself opens its sockets in Run.
func (g *Gateway) buildField() error {
	g.field = map[string]fieldin.Device{}
	for _, d := range g.cfg.Devices {
		switch d.Driver {
		case config.DriverRecorder:
			r, err := recorder.New(recorder.Config{Device: d.ID})
			if err != nil {
				return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
			}
			g.field[d.ID] = fieldin.Device{Decoder: r, Stream: recorder.Stream}
		case config.DriverKiosk:
			k, err := kiosk.New(kiosk.Config{Device: d.ID, WaitAlarm: d.WaitAlarm})
			if err != nil {
				return fmt.Errorf("%w: device %s: %w", ErrStart, d.ID, err)
			}
			g.field[d.ID] = fieldin.Device{Decoder: k, Stream: kiosk.Stream,
				Private: func(err error) bool { return errors.Is(err, kiosk.ErrPersonalData) }}
			g.sources = append(g.sources, source{id: d.ID, src: k, field: true})
		default:
			continue
		}
		pw, err := os.ReadFile(d.PasswordFile)
		if err != nil {
			return fmt.Errorf("%w: device %s: password_file: %w (create it with the device's MQTT password, mode 0600)", ErrStart, d.ID, err)
		}
		g.fieldDevs = append(g.fieldDevs, fieldbroker.Device{ID: d.ID, Username: d.Username, Password: []byte(strings.TrimRight(string(pw), "\r\n"))})
	}
	in, err := fieldin.New(fieldin.Options{Devices: g.field, Sink: g.pipe, Logger: g.log.With("part", "field-ingest")})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	g.ingest = in
	return nil
}

// handleField keeps one field message (decoded, or raw as a rejected
// record) and returns nil once it is durably queued: only then does the
// device get its PUBACK. The broker's own "offline" event is an event.
func (g *Gateway) handleField(ctx context.Context, id, event string, payload []byte) error {
	if event == fieldbroker.EventOffline {
		if _, ok := g.field[id]; !ok {
			return fmt.Errorf("%w: %s", fieldin.ErrUnknownDevice, id)
		}
		return g.pipe.Emit(ctx, []drivers.Reading{{Device: id, Class: drivers.Event, Values: map[string]drivers.Value{"event": drivers.Text("offline")}}})
	}
	return g.ingest.Handle(ctx, id, event, payload)
}

// startField starts the field broker when the config has one.
func (g *Gateway) startField() error {
	fb := g.cfg.FieldBroker
	if !fb.Enabled() {
		return nil
	}
	// The broker re-reads cert and key when they change (renewal without a restart).
	b, err := fieldbroker.Start(fieldbroker.Options{
		Listen: fb.Listen, TLSListen: fb.TLSListen, TLSCertFile: fb.Cert, TLSKeyFile: fb.Key, Devices: g.fieldDevs,
		MaxPayload: int(fb.MaxPayload), Keepalive: fb.KeepaliveMax, MaxPendingPerAddr: fb.MaxPendingPerAddr,
		Handle: g.handleField, Logger: g.log.With("part", "field-broker"),
	})
	if err != nil {
		return fmt.Errorf("%w: field broker: %w", ErrStart, err)
	}
	g.fieldBroker.Store(b)
	g.log.Info("field broker listening", "addr", b.Addr(), "tls", b.TLSAddr(), "devices", len(g.fieldDevs))
	return nil
}

// FieldAddr is the field broker's plain listener address ("" if none).
func (g *Gateway) FieldAddr() string {
	if b := g.fieldBroker.Load(); b != nil {
		return b.Addr()
	}
	return ""
}

// fieldState is a field device's state: ok while it is connected.
func (g *Gateway) fieldState(id string) (string, bool) {
	b := g.fieldBroker.Load()
	if _, ok := g.field[id]; !ok || b == nil {
		return "", false
	}
	if b.Online()[id] {
		return "ok", true
	}
	return "down", true
}
