package fieldmsg

import (
	"fmt"
	"strconv"
	"strings"
)

// Envelope is what surrounds a message's payload: the gw.v1 envelope, or
// nothing when a device sends the bare payload object.
type Envelope[D Driver] struct {
	Body  *Fields[D] // the payload object (the whole message when bare)
	MsgID string     // "" when absent
	TS    int64      // the device's time in ms since the epoch, when HasTS
	HasTS bool       // ts was present: plausible or not (see Plausible)
}

// ReadEnvelope reads the envelope around top, one message of device (a
// deviceType such as "queue") for the topic's event. A "payload" key marks
// the gw.v1 envelope: payload must be an object, and schema, event,
// device_type and seq are checked when present (schema and device_type in
// any ASCII case, event exactly as the topic's). device_id (which must be
// device exactly: else D's WrongDevice), msg_id and ts (ms since the epoch
// or RFC 3339; the caller judges whether it is plausible) are read from
// top either way. Every error is a *FieldError[D].
func ReadEnvelope[D Driver](top *Node, device, event, deviceType string) (Envelope[D], error) {
	var d D
	env := NewFields[D](device, event, top.Obj)
	out := Envelope[D]{Body: env}
	if p := top.Obj["payload"]; p != nil {
		if p.Kind != KindObj {
			env.schema("payload", p, fmt.Sprintf("is %s, want an object", p.Kind))
			return Envelope[D]{}, env.Err()
		}
		if s, ok := env.Text("schema", false, 32); ok && !sameWord(s, "gw.v1") {
			env.schema("schema", top.Obj["schema"], `want "gw.v1"`)
		}
		if e, ok := env.Text("event", false, 64); ok && e != event {
			env.schema("event", top.Obj["event"], "does not match the topic's event "+strconv.Quote(event))
		}
		if t, ok := env.Text("device_type", false, 32); ok && !sameWord(t, deviceType) {
			env.schema("device_type", top.Obj["device_type"], "want "+strconv.Quote(deviceType))
		}
		env.Int("seq", false, 0, 1<<62)
		out.Body = NewFields[D](device, event, p.Obj)
	}
	if id, ok := env.Text("device_id", false, 256); ok && id != device {
		env.Fail(d.WrongDevice(), "device_id", top.Obj["device_id"], "names another device; a device may not speak for another")
	}
	out.MsgID, _ = env.Text("msg_id", false, 128)
	out.TS, out.HasTS = env.Timestamp("ts")
	if err := env.Err(); err != nil {
		return Envelope[D]{}, err
	}
	return out, nil
}

// sameWord reports whether a and b are the same ASCII word in any case.
func sameWord(a, b string) bool { return isASCII(a) && strings.EqualFold(a, b) }
