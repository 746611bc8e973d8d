package wire

import (
	"fmt"
)

// Command operations the gateway implements. Others decode (so the
// gateway can refuse them on cmd-result with the command's id) but must be
// refused, never ignored.
const (
	OpPing     = "ping"
	OpRead     = "read"      // poll a device now
	OpTimeSync = "time-sync" // broadcast the time to meters
	OpSet      = "set"       // set an output, where the config allows it
	OpConfig   = "config"    // fetch the running config without secrets
	OpAlarmAck = "alarm-ack" // acknowledge an active alarm (args: alarm_id, optional by); recorded, not cleared
)

// KnownOp reports whether op is one of the operations above.
func KnownOp(op string) bool {
	switch op {
	case OpPing, OpRead, OpTimeSync, OpSet, OpConfig, OpAlarmAck:
		return true
	}
	return false
}

// Command is a message on the cmd stream (platform → gateway).
type Command struct {
	ID   string           `cbor:"id"`
	Op   string           `cbor:"op"`
	Dev  string           `cbor:"dev,omitempty"`
	Args map[string]Value `cbor:"args,omitempty"`
	// Expires (v1 addition, optional): ms since the Unix epoch, UTC, after
	// which the gateway must not run the command (it answers "expired").
	// 0 (absent): no deadline.
	Expires int64 `cbor:"expires,omitempty"`
}

// Command result statuses ("status", v1 addition). OK is true exactly for
// ResultDone.
const (
	ResultDone      = "done"      // run; vals holds what it returned
	ResultFailed    = "failed"    // run, and it failed (err says why)
	ResultExpired   = "expired"   // not run: received after its expires
	ResultRefused   = "refused"   // not run: unknown op, not allowed by the config, unknown device
	ResultMalformed = "malformed" // not run: the command did not decode (answered with its id when CommandID found one)
	ResultOverflow  = "overflow"  // not run: too many commands waiting
	ResultDuplicate = "duplicate" // not run again: a command with this id was already received
)

// IsResultStatus reports whether s is one of the result statuses.
func IsResultStatus(s string) bool {
	switch s {
	case ResultDone, ResultFailed, ResultExpired, ResultRefused, ResultMalformed, ResultOverflow, ResultDuplicate:
		return true
	}
	return false
}

// CommandResult is the gateway's answer on cmd-result. OK false needs Err.
type CommandResult struct {
	ID   string           `cbor:"id"`
	OK   bool             `cbor:"ok"`
	Err  string           `cbor:"err,omitempty"`
	Vals map[string]Value `cbor:"vals,omitempty"`
	// Status (v1 addition, optional): what became of the command, one of
	// the Result constants; "done" exactly when OK. Old platforms read OK
	// and Err only.
	Status string `cbor:"status,omitempty"`
}

// MaxCommandID bounds the id CommandID extracts from a malformed command.
const MaxCommandID = 256

// CommandID extracts the id of a command that may not decode, so that the
// gateway can answer it ("malformed") instead of staying silent: p must
// begin with one well-formed CBOR map (anything may follow it) holding the
// text key "id" with a non-empty valid UTF-8 text of at most MaxCommandID
// bytes. It reports false otherwise, or when "id" appears twice.
func CommandID(p []byte) (string, bool) {
	if len(p) == 0 || len(p) > MaxInputBytes {
		return "", false
	}
	end, err := skip(p, 0, 0)
	if err != nil {
		return "", false
	}
	var id string
	found, dup := false, false
	err = eachPair(p[:end], func(k, v []byte) error {
		if string(k) != "id" {
			return nil
		}
		dup = dup || found
		found = true
		id, _ = wantText(v)
		return nil
	})
	if err != nil || !found || dup || textProblem(id) != "" || len(id) > MaxCommandID {
		return "", false
	}
	return id, true
}

// PlatformAck (on ack, in "ack: platform" mode) says the platform has
// stored every record of Stream up to and including seq Upto.
type PlatformAck struct {
	Stream string `cbor:"stream"`
	Upto   uint64 `cbor:"upto"`
}

func checkCommand(c *Command) error {
	if err := validText("id", c.ID); err != nil {
		return err
	}
	if err := validText("op", c.Op); err != nil {
		return err
	}
	if c.Dev != "" {
		if err := validText("dev", c.Dev); err != nil {
			return err
		}
	}
	if c.Expires < 0 {
		return schemaErr("expires", fmt.Sprintf("%d; want ms since the Unix epoch, > 0", c.Expires))
	}
	return checkVals("args", c.Args)
}

// EncodeCommand validates c and encodes it deterministically.
func EncodeCommand(c *Command) ([]byte, error) {
	if err := checkCommand(c); err != nil {
		return nil, err
	}
	return marshal(c)
}

// DecodeCommand decodes and validates a command strictly. An unknown op
// is not an error here (see KnownOp).
func DecodeCommand(p []byte) (*Command, error) {
	m, err := topMap(p, "command")
	if err != nil {
		return nil, err
	}
	if err := keys(m, []string{"id", "op"}, []string{"dev", "args", "expires"}); err != nil {
		return nil, err
	}
	c := &Command{}
	if c.ID, err = wantText(m["id"]); err != nil {
		return nil, schemaErr("id", err.Error())
	}
	if c.Op, err = wantText(m["op"]); err != nil {
		return nil, schemaErr("op", err.Error())
	}
	if raw, ok := m["dev"]; ok {
		if c.Dev, err = wantText(raw); err != nil {
			return nil, schemaErr("dev", err.Error())
		}
		if c.Dev == "" {
			return nil, schemaErr("dev", "must not be empty when present")
		}
	}
	if raw, ok := m["args"]; ok {
		if c.Args, err = decodeVals("args", raw); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["expires"]; ok {
		if c.Expires, err = wantInt(raw); err != nil {
			return nil, schemaErr("expires", err.Error())
		}
		if c.Expires <= 0 {
			return nil, schemaErr("expires", fmt.Sprintf("%d; want ms since the Unix epoch, > 0", c.Expires))
		}
	}
	if err := checkCommand(c); err != nil {
		return nil, err
	}
	return c, nil
}

func checkResult(r *CommandResult) error {
	if err := validText("id", r.ID); err != nil {
		return err
	}
	switch {
	case !r.OK && r.Err == "":
		return schemaErr("err", "required when ok is false")
	case r.OK && r.Err != "":
		return schemaErr("err", "not allowed when ok is true")
	}
	if err := validText("err", r.Err); r.Err != "" && err != nil {
		return err
	}
	if r.Status != "" {
		if !IsResultStatus(r.Status) {
			return schemaErr("status", fmt.Sprintf("%q; want done, failed, expired, refused, malformed, overflow or duplicate", r.Status))
		}
		if (r.Status == ResultDone) != r.OK {
			return schemaErr("status", fmt.Sprintf("%q with ok %v; ok is true exactly for done", r.Status, r.OK))
		}
	}
	return checkVals("vals", r.Vals)
}

// EncodeCommandResult validates r and encodes it deterministically.
func EncodeCommandResult(r *CommandResult) ([]byte, error) {
	if err := checkResult(r); err != nil {
		return nil, err
	}
	return marshal(r)
}

// DecodeCommandResult decodes and validates a command result strictly.
func DecodeCommandResult(p []byte) (*CommandResult, error) {
	m, err := topMap(p, "command result")
	if err != nil {
		return nil, err
	}
	if err := keys(m, []string{"id", "ok"}, []string{"err", "vals", "status"}); err != nil {
		return nil, err
	}
	r := &CommandResult{}
	if r.ID, err = wantText(m["id"]); err != nil {
		return nil, schemaErr("id", err.Error())
	}
	if r.OK, err = wantBool(m["ok"]); err != nil {
		return nil, schemaErr("ok", err.Error())
	}
	if raw, ok := m["err"]; ok {
		if r.Err, err = wantText(raw); err != nil {
			return nil, schemaErr("err", err.Error())
		}
		if r.Err == "" {
			return nil, schemaErr("err", "must not be empty when present")
		}
	}
	if raw, ok := m["vals"]; ok {
		if r.Vals, err = decodeVals("vals", raw); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["status"]; ok {
		if r.Status, err = wantText(raw); err != nil {
			return nil, schemaErr("status", err.Error())
		}
		if r.Status == "" {
			return nil, schemaErr("status", "must not be empty when present")
		}
	}
	if err := checkResult(r); err != nil {
		return nil, err
	}
	return r, nil
}

func checkAck(a *PlatformAck) error {
	if !IsRecordStream(a.Stream) {
		return schemaErr("stream", fmt.Sprintf("%q is not a record stream", a.Stream))
	}
	if a.Upto == 0 {
		return schemaErr("upto", "0; sequence numbers start at 1")
	}
	return nil
}

// EncodeAck validates a and encodes it deterministically.
func EncodeAck(a *PlatformAck) ([]byte, error) {
	if err := checkAck(a); err != nil {
		return nil, err
	}
	return marshal(a)
}

// DecodeAck decodes and validates a platform acknowledgement strictly.
func DecodeAck(p []byte) (*PlatformAck, error) {
	m, err := topMap(p, "ack")
	if err != nil {
		return nil, err
	}
	if err := keys(m, []string{"stream", "upto"}, nil); err != nil {
		return nil, err
	}
	a := &PlatformAck{}
	if a.Stream, err = wantText(m["stream"]); err != nil {
		return nil, schemaErr("stream", err.Error())
	}
	if a.Upto, err = wantUint(m["upto"]); err != nil {
		return nil, schemaErr("upto", err.Error())
	}
	if err := checkAck(a); err != nil {
		return nil, err
	}
	return a, nil
}
