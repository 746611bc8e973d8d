package fieldbroker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// quietLog passes the first record of each kind per interval to the log
// and counts the rest; at the end of the interval it logs one summary line
// per kind with the count. A kind is the message plus the device, so one
// device's noise does not hide another's, and a flood of guesses or refused
// messages costs one line a minute, not one a packet.
type quietLog struct {
	h     slog.Handler
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	level  slog.Level
	msg    string
	device string
	more   uint64 // suppressed this interval
}

func newQuietLog(h slog.Handler, every time.Duration) *quietLog {
	return &quietLog{h: h, every: every, kinds: make(map[string]*kind)}
}

// emit logs r now if it is the first of key in this interval, else counts it.
func (q *quietLog) emit(key, device string, r slog.Record) {
	if !q.h.Enabled(context.Background(), r.Level) {
		return
	}
	q.mu.Lock()
	k, seen := q.kinds[key]
	if seen {
		k.more++
	} else {
		q.kinds[key] = &kind{level: r.Level, msg: r.Message, device: device}
	}
	q.mu.Unlock()
	if !seen {
		_ = q.h.Handle(context.Background(), r)
	}
}

// run flushes every interval until ctx ends.
func (q *quietLog) run(ctx context.Context) {
	t := time.NewTicker(q.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			q.flush()
		}
	}
}

// flush logs one summary per kind that was suppressed and starts a new
// interval.
func (q *quietLog) flush() {
	q.mu.Lock()
	var out []*kind
	for _, k := range q.kinds {
		if k.more > 0 {
			out = append(out, k)
		}
	}
	clear(q.kinds)
	q.mu.Unlock()
	for _, k := range out {
		r := slog.NewRecord(time.Now(), k.level, k.msg+" (repeated)", 0)
		r.AddAttrs(slog.Uint64("more", k.more), slog.Duration("interval", q.every))
		if k.device != "" {
			r.AddAttrs(slog.String("device", k.device))
		}
		_ = q.h.Handle(context.Background(), r)
	}
}

// note logs through the quiet log; d may be nil (no device).
func (b *Broker) note(level slog.Level, d *device, msg string, args ...any) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	id := ""
	if d != nil {
		id = d.id
		r.AddAttrs(slog.String("device", id))
	}
	r.Add(args...)
	b.quiet.emit(msg+"\x00"+id, id, r)
}

// mochiLog is mochi's logger. mochi logs whole packets — a CONNECT with
// its password, a PUBLISH with its payload — under the keys "pk" and
// "packet" (server.go receivePacket at WARN, hooks.go and clients.go at
// DEBUG); they are replaced by the packet type. Two messages are debug:
// the keepalive warning a client can trigger before logging in (clients.go
// ParseConnect) and the ERROR mochi logs for every MQTT 5 publish the hook
// refuses with a reason code (hooks.go OnPublish), which the broker logs
// itself. Everything goes through the quiet log.
type mochiLog struct {
	q     *quietLog
	attrs []slog.Attr
	group string
}

func (m *mochiLog) Enabled(ctx context.Context, l slog.Level) bool { return m.q.h.Enabled(ctx, l) }

func (m *mochiLog) Handle(_ context.Context, r slog.Record) error {
	level := r.Level
	if r.Message == mqtt.ErrMinimumKeepalive.Error() || r.Message == "publish packet error" {
		level = slog.LevelDebug
	}
	out := slog.NewRecord(r.Time, level, r.Message, 0)
	out.AddAttrs(m.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrub(a))
		return true
	})
	if m.group != "" {
		g := slog.NewRecord(out.Time, out.Level, out.Message, 0)
		var as []any
		out.Attrs(func(a slog.Attr) bool { as = append(as, a); return true })
		g.AddAttrs(slog.Group(m.group, as...))
		out = g
	}
	m.q.emit("mochi\x00"+r.Message, "", out)
	return nil
}

func (m *mochiLog) WithAttrs(as []slog.Attr) slog.Handler {
	n := *m
	n.attrs = append(append([]slog.Attr(nil), m.attrs...), scrubAll(as)...)
	return &n
}

func (m *mochiLog) WithGroup(name string) slog.Handler {
	n := *m
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

func scrubAll(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = scrub(a)
	}
	return out
}

// scrub replaces a packet by its type: no payload, no password.
func scrub(a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case packets.Packet:
		return slog.String(a.Key+"_type", packetType(v.FixedHeader.Type))
	case *packets.Packet:
		if v == nil {
			return slog.String(a.Key+"_type", "nil")
		}
		return slog.String(a.Key+"_type", packetType(v.FixedHeader.Type))
	}
	if a.Key == "pk" || a.Key == "packet" {
		return slog.String(a.Key, "(omitted)")
	}
	if a.Value.Kind() == slog.KindGroup {
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(scrubAll(a.Value.Group())...)}
	}
	return a
}

func packetType(t byte) string {
	if n, ok := packets.PacketNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", t)
}
