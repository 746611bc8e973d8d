package recorder

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/internal/fieldmsg"
)

// Config describes one recorder.
type Config struct {
	// Device is the device id from the gateway's config; an envelope's
	// device_id must equal it.
	Device string
	// Now is the gateway's clock, used to judge device times for skew (nil
	// = time.Now).
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Device == "" {
		return fmt.Errorf("%w: recorder: device id is empty", drivers.ErrConfig)
	}
	return nil
}

// Recorder decodes the messages of one enforcement recorder. It holds no
// state between messages: Decode is safe for concurrent use.
type Recorder struct {
	device string
	now    func() time.Time
}

// New returns a decoder for one recorder. It does no I/O.
func New(c Config) (*Recorder, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Recorder{device: c.Device, now: c.Now}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Events returns the topic levels Decode understands.
func Events() []string {
	return []string{
		"device.status", "device.position", "recording.started", "recording.stopped",
		"evidence.file", "alarm.sos", "alarm.device", "command.ack",
	}
}

// QualityInvalidFields is set on an SOS alarm that carried invalid
// optional fields: they are left out and named in the "invalid" point
// instead of refusing the alarm. It is drivers.QualityInvalidFields.
const QualityInvalidFields = drivers.QualityInvalidFields

// Value limits.
var (
	latBound     = fieldmsg.Bound{Lo: "-90", Hi: "90"}
	lonBound     = fieldmsg.Bound{Lo: "-180", Hi: "180"}
	headingBound = fieldmsg.Bound{Lo: "0", Hi: "360", HiOpen: true}
	altBound     = fieldmsg.Bound{Lo: "-1000", Hi: "20000"}
	speedBound   = fieldmsg.Bound{Lo: "0", Hi: "1000"}
	tempBound    = fieldmsg.Bound{Lo: "-60", Hi: "150"}
	durBound     = fieldmsg.Bound{Lo: "0", Hi: "1000000"}
)

const (
	maxText     = 256
	maxOfficer  = 32  // officer_id: letters, digits, '-', '_'
	maxFileID   = 128 // file_id
	maxEventLen = 64  // an unknown event is named in the error up to this
)

// Decode turns one message into readings. event is the topic's last level;
// payload is a JSON object or a CBOR map, either the gw.v1 envelope (a
// map with a "payload" object) or the bare payload object. Unknown keys
// are ignored. There is no size limit: the field broker's max_payload is
// the only one. It returns one reading, or a *FieldError.
func (r *Recorder) Decode(event string, payload []byte) ([]drivers.Reading, error) {
	if !slices.Contains(Events(), event) {
		return nil, &FieldError{Device: r.device, Event: strconv.Quote(fieldmsg.Clip(event, maxEventLen)), Reason: "unknown event", Err: ErrUnknownEvent}
	}
	top, _, err := fieldmsg.Parse(payload)
	if err != nil {
		return nil, &FieldError{Device: r.device, Event: event, Reason: err.Error(), Err: ErrMalformed}
	}
	env, err := fieldmsg.ReadEnvelope[driver](top, r.device, event, "bodycam")
	if err != nil {
		return nil, err
	}
	skew := fieldmsg.NewSkew(r.now())
	rd := drivers.Reading{Device: r.device, Values: map[string]drivers.Value{}}
	if env.HasTS {
		skew.Message(env.TS)
		if fieldmsg.Plausible(env.TS) {
			rd.Time, rd.DeviceTime = time.UnixMilli(env.TS).UTC(), true
		}
	}
	if env.MsgID != "" {
		rd.Values["msg_id"] = drivers.Text(env.MsgID)
	}
	lastWill, err := r.fill(event, env.Body, &rd, skew)
	if err != nil {
		return nil, err
	}
	if !lastWill {
		skew.Mark(&rd)
	}
	return []drivers.Reading{rd}, nil
}

// fill maps one event's payload to rd; lastWill reports a last will
// (device.status online:false), whose ts is stale and not judged.
func (r *Recorder) fill(event string, f *fields, rd *drivers.Reading, skew *fieldmsg.Skew) (lastWill bool, err error) {
	v := points(rd.Values)
	switch event {
	case "device.status":
		online, ok := f.Bool("online", false)
		if ok && !online {
			// A last will is composed at connect time: its ts is not the
			// time the device went away. The gateway stamps it.
			rd.Class = drivers.Event
			rd.Time, rd.DeviceTime = time.Time{}, false
			v["event"] = drivers.Text("offline")
			return true, f.Err()
		}
		rd.Class = drivers.Telemetry
		status(f, v)

	case "device.position":
		rd.Class = drivers.Telemetry
		position(f, v, true)
		v.dec("alt_m")(f.Decimal("alt_m", false, altBound))
		v.dec("speed_kmh")(f.Decimal("speed_kmh", false, speedBound))
		v.dec("heading_deg")(f.Decimal("heading_deg", false, headingBound))
		v.text("fix")(f.Enum("fix", false, "none", "2d", "3d", "lbs", "wifi"))
		v.int("sats")(f.Int("sats", false, 0, 255))

	case "recording.started", "recording.stopped":
		rd.Class = drivers.Event
		if event == "recording.started" {
			v["event"] = drivers.Text("record_start")
		} else {
			v["event"] = drivers.Text("record_stop")
		}
		v.text("file_id")(f.Text("file_id", true, maxFileID))
		v.text("trigger")(f.Enum("trigger", false, "manual", "remote", "pre-record", "sos", "auto"))
		position(f, v, false)

	case "alarm.sos":
		// The officer's report is an event; the gateway's rules engine
		// raises and clears the alarm from it (the default rule sos).
		rd.Class = drivers.Event
		sos(f, rd)

	case "alarm.device":
		// Like an SOS, an event: the default rules recorder-<code> raise
		// and clear the alarm from it.
		rd.Class = drivers.Event
		v["event"] = drivers.Text(EventDeviceAlarm)
		v.text("code")(f.Enum("code", true, DeviceAlarmCodes()...))
		active, ok := f.Bool("active", false)
		v[PointActive] = drivers.Bool(active || !ok)
		v.int("priority")(f.Int("priority", false, 1, 4))

	case "evidence.file":
		rd.Class = drivers.Evidence
		evidence(f, v, skew)

	case "command.ack":
		rd.Class = drivers.Event
		v["event"] = drivers.Text("command_ack")
		v.text("cmd_id")(f.Text("cmd_id", true, 128))
		v.text("result")(f.Enum("result", true, "ok", "error"))
		v.text("detail")(f.Text("detail", false, maxText))
	}
	return false, f.Err()
}

// points are a reading's points. Each put method takes a reader's (value,
// ok) pair, as in v.int("x")(f.Int(…)), and stores the value when ok.
type points map[string]drivers.Value

func (p points) text(name string) func(string, bool) {
	return func(s string, ok bool) {
		if ok {
			p[name] = drivers.Text(s)
		}
	}
}

func (p points) int(name string) func(int64, bool) {
	return func(i int64, ok bool) {
		if ok {
			p[name] = drivers.Int(i)
		}
	}
}

func (p points) bool(name string) func(bool, bool) {
	return func(b, ok bool) {
		if ok {
			p[name] = drivers.Bool(b)
		}
	}
}

func (p points) dec(name string) func(drivers.Value, bool) {
	return func(d drivers.Value, ok bool) {
		if ok {
			p[name] = d
		}
	}
}

// status reads a device.status that is not a last will.
func status(f *fields, v points) {
	v.int("battery_pct")(f.Int("battery_pct", true, 0, 100))
	v.int("storage_free_mb")(f.Int("storage_free_mb", true, 0, 1<<40))
	v.bool("recording")(f.Bool("recording", true))
	v.bool("charging")(f.Bool("charging", false))
	v.text("network")(f.Text("network", false, 16))
	v.int("signal_dbm")(f.Int("signal_dbm", false, -150, 0))
	v.dec("temperature_c")(f.Decimal("temperature_c", false, tempBound))
	v.text("officer")(f.ID("officer_id", false, maxOfficer))
	v.text("serial")(f.Text("serial", false, 64))
}

// position reads lat/lon (both or neither) and the datum with them.
func position(f *fields, v points, required bool) {
	lat, okLat := f.Decimal("lat", required, latBound)
	lon, okLon := f.Decimal("lon", required || okLat, lonBound)
	if okLon && !okLat {
		f.Get("lat", true)
	}
	d, okD := readDatum(f, okLat && required)
	if okLat && okLon {
		v["lat"], v["lon"] = lat, lon
		v.text("datum")(d, okD)
	}
}

// sos reads an alarm.sos. An SOS is never refused for a bad optional
// field: each is checked on its own, a bad one is left out, named in
// "invalid" and the reading marked QualityInvalidFields. active defaults
// to true, priority to 1 (the highest, GB/T 28181).
func sos(f *fields, rd *drivers.Reading) {
	v := points(rd.Values)
	v["event"] = drivers.Text(EventSOS)
	var invalid []string
	try := func(read func(g *fields)) {
		g := f.Fork()
		read(g)
		var fe *FieldError
		if errors.As(g.Err(), &fe) {
			invalid = append(invalid, fe.Field+": "+fe.Reason)
		}
	}
	try(func(g *fields) {
		position(g, v, false)
		if g.Err() != nil {
			delete(v, "lat")
			delete(v, "lon")
			delete(v, "datum")
		}
	})
	active, priority := true, int64(1)
	try(func(g *fields) {
		if b, ok := g.Bool("active", false); ok {
			active = b
		}
	})
	try(func(g *fields) {
		if p, ok := g.Int("priority", false, 1, 4); ok {
			priority = p
		}
	})
	v[PointActive], v["priority"] = drivers.Bool(active), drivers.Int(priority)
	if len(invalid) > 0 {
		rd.Quality |= QualityInvalidFields
		v["invalid"] = drivers.Text(strings.Join(invalid, "; "))
	}
}

// evidence reads an evidence.file; its start_at and end_at are judged for
// clock skew too (a recording cannot end in the future).
func evidence(f *fields, v points, skew *fieldmsg.Skew) {
	v.text("file_id")(f.Text("file_id", true, maxFileID))
	v.text("sha256")(f.Hex("sha256", true, 64))
	v.int("size_bytes")(f.Int("size_bytes", true, 1, 1<<50))
	v.dec("duration_s")(f.Decimal("duration_s", false, durBound))
	v.text("officer")(f.ID("officer_id", true, maxOfficer))
	v.text("serial")(f.Text("serial", false, 64))
	start, okS := f.Instant("start_at", true)
	end, okE := f.Instant("end_at", true)
	if okS && okE && end < start {
		f.Fail(ErrSchema, "end_at", f.Obj["end_at"], "is before start_at")
	}
	if okS && okE {
		skew.Event(start)
		skew.Event(end)
	}
	v.int("started")(start, okS)
	v.int("ended")(end, okE)
	v.bool("important")(f.Bool("important", false))
	v.text("media_type")(f.Enum("media_type", false, "video", "audio", "photo", "log"))
	v.text("file_name")(f.Text("file_name", false, maxText))
	v.text("sm3")(f.Hex("sm3", false, 64))
	v.text("md5")(f.Hex("md5", false, 32))
}

// datums are the coordinate systems a position may be in.
var datums = []string{"WGS84", "GCJ02", "BD09"}

// readDatum reads datum: one of datums in any ASCII case, with or without
// hyphens ("wgs-84", "GCJ-02"); it returns the spelling in datums.
func readDatum(f *fields, required bool) (string, bool) {
	n := f.Typed("datum", required, fieldmsg.KindStr)
	if n == nil {
		return "", false
	}
	b := make([]byte, 0, len(n.Text))
	for i := 0; i < len(n.Text); i++ {
		switch c := n.Text[i]; {
		case c == '-':
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			b = append(b, c)
		}
	}
	if i := slices.Index(datums, string(b)); i >= 0 {
		return datums[i], true
	}
	f.Fail(ErrSchema, "datum", n, "is not one of "+strings.Join(datums, ", "))
	return "", false
}

// The events of an SOS and of a device alarm (their "event" point), and
// the point that says whether one is active: the gateway's default rules
// raise and clear alarms from them.
const (
	EventSOS         = "sos"
	EventDeviceAlarm = "device_alarm"
	PointActive      = "active"
)

// DeviceAlarmCodes returns the codes of an alarm.device message (its
// "code"), in the order of the protocol's table.
func DeviceAlarmCodes() []string {
	return []string{"low_battery", "storage_full", "tamper", "overheat", "video_loss", "fall"}
}

// Stream is the class a message of event belongs to, known before it is
// decoded: the gateway keeps a message that fails to decode on the stream
// it was meant for (evidence inside the evidence chain). Unknown events
// are events.
func Stream(event string) drivers.Class {
	switch event {
	case "evidence.file":
		return drivers.Evidence
	case "device.status", "device.position":
		return drivers.Telemetry
	}
	return drivers.Event
}
