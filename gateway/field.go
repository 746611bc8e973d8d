package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/kiosk"
	"github.com/townlink/townlink/drivers/recorder"
	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/fieldbroker"
	"github.com/townlink/townlink/gateway/fieldin"
	"github.com/townlink/townlink/gateway/health"
	"github.com/townlink/townlink/gateway/metrics"
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
			g.sources = append(g.sources, source{id: d.ID, src: k})
		default:
			continue
		}
		pw, err := certs.ReadSecret(d.PasswordFile)
		if err != nil {
			return fmt.Errorf("%w: device %s: password_file: %w (it holds the device's MQTT password, mode 0600)", ErrStart, d.ID, err)
		}
		g.fieldDevs = append(g.fieldDevs, fieldbroker.Device{ID: d.ID, Username: d.Username, Password: []byte(pw)})
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
	if fb.TLSListen != "" {
		if err := certs.CheckSecret(fb.Key); err != nil {
			return fmt.Errorf("%w: field_broker key: %w", ErrStart, err)
		}
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

// fieldStates are the recorders' and kiosks' health: ok while connected
// to the field broker, down otherwise (and before it listens).
func (g *Gateway) fieldStates() map[string]health.State {
	m := make(map[string]health.State, len(g.field))
	var online map[string]bool
	if b := g.fieldBroker.Load(); b != nil {
		online = b.Online()
	}
	for id := range g.field {
		m[id] = health.Down
		if online[id] {
			m[id] = health.Ok
		}
	}
	return m
}

// fieldCounts are the field broker's counters for the metrics.
func (g *Gateway) fieldCounts() metrics.FieldCounts {
	b := g.fieldBroker.Load()
	if b == nil {
		return metrics.FieldCounts{}
	}
	s := b.Stats()
	return metrics.FieldCounts{Connects: s.Connects, AuthFailures: s.AuthFailures, ACLDenied: s.ACLDenied, TooLarge: s.TooLarge,
		Malformed: s.Malformed, HandlerErrors: s.HandlerErrors, DecodePanics: s.DecodePanics, Accepted: s.Accepted, Online: s.Online}
}
