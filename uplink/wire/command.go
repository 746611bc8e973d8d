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
)

// KnownOp reports whether op is one of the operations above.
func KnownOp(op string) bool {
	switch op {
	case OpPing, OpRead, OpTimeSync, OpSet, OpConfig:
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
	// Expires (UTC ms, optional): the gateway answers StatusExpired and
	// does not run the command once its clock is past this instant.
	Expires int64 `cbor:"expires,omitempty"`
}

// CommandResult is the gateway's answer on cmd-result. OK false needs Err.
type CommandResult struct {
	ID   string           `cbor:"id"`
	OK   bool             `cbor:"ok"`
	Err  string           `cbor:"err,omitempty"`
	Vals map[string]Value `cbor:"vals,omitempty"`
	// Status (optional) says what became of the command: StatusDone with
	// OK true, any other status with OK false.
	Status string `cbor:"status,omitempty"`
}

// Statuses of a command result.
const (
	StatusDone      = "done"      // run, and it succeeded
	StatusFailed    = "failed"    // run (or started), and it failed
	StatusExpired   = "expired"   // not run: it arrived after its expires
	StatusRefused   = "refused"   // not run: unknown op, bad arguments, not allowed, clock unsynced
	StatusMalformed = "malformed" // not run: the command did not decode (its id did)
	StatusOverflow  = "overflow"  // not run: too many commands were waiting
)

// KnownStatus reports whether s is one of the statuses above.
func KnownStatus(s string) bool {
	switch s {
	case StatusDone, StatusFailed, StatusExpired, StatusRefused, StatusMalformed, StatusOverflow:
		return true
	}
	return false
}

// CommandID returns the id of a command that may not decode as a whole, so
// that even a malformed command can be answered: p must be a CBOR map whose
// "id" is a valid text.
func CommandID(p []byte) (string, bool) {
	m, err := topMap(p, "command")
	if err != nil {
		return "", false
	}
	raw, ok := m["id"]
	if !ok {
		return "", false
	}
	id, err := wantText(raw)
	if err != nil || validText("id", id) != nil {
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
		return schemaErr("expires", "must be positive (UTC milliseconds)")
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
			return nil, schemaErr("expires", "must be positive (UTC milliseconds) when present")
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
	switch {
	case r.Status == "":
	case !KnownStatus(r.Status):
		return schemaErr("status", fmt.Sprintf("%q is not a known status", r.Status))
	case r.OK != (r.Status == StatusDone):
		return schemaErr("status", fmt.Sprintf("%q does not agree with ok %v", r.Status, r.OK))
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
