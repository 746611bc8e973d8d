package wire

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Status states, clock states and device health.
const (
	StateOnline    = "online"
	StateOffline   = "offline"
	ClockSynced    = "synced"
	ClockUnsynced  = "unsynced"
	DeviceOK       = "ok"
	DeviceDegraded = "degraded"
	DeviceDown     = "down"
)

// Status is the retained message on the status stream, also registered as
// the MQTT last will with State "offline". Every key up to clock is present
// on the wire (maps may be empty); the v1 additions after it are optional
// and omitted when empty, so a status without them still decodes.
type Status struct {
	V              uint64            `cbor:"v"`
	GW             string            `cbor:"gw"`
	State          string            `cbor:"state"`            // online | offline
	TS             int64             `cbor:"ts"`               // ms since the Unix epoch, UTC
	Version        string            `cbor:"version"`          // gateway software version
	Boot           string            `cbor:"boot"`             // boot id: changes at every start
	Backlog        map[string]uint64 `cbor:"backlog"`          // stream → records waiting
	OldestUnsentMS uint64            `cbor:"oldest_unsent_ms"` // age at TS of the oldest record not yet acknowledged; 0 when none waits
	Dropped        map[string]uint64 `cbor:"dropped"`          // reason → records discarded
	Devices        map[string]string `cbor:"devices"`          // device → ok | degraded | down
	Clock          string            `cbor:"clock"`            // synced | unsynced

	// v1 additions (optional).

	// LastSeq: stream → seq of the last record committed to the store
	// (delivered or not). A platform that has less knows the tail is still
	// on its way, or was cut off.
	LastSeq map[string]uint64 `cbor:"last_seq,omitempty"`
	// EvidenceHead: the hash of evidence record LastSeq["evidence"].
	EvidenceHead []byte `cbor:"evidence_head,omitempty"`
	// EvidenceHeadSig: the gateway key's signature of HeadMessage(GW,
	// LastSeq["evidence"], EvidenceHead), in the evidence records' alg.
	EvidenceHeadSig []byte `cbor:"evidence_head_sig,omitempty"`
	// Certs: certificate name → whole days until it expires (negative:
	// expired that many days ago).
	Certs map[string]int64 `cbor:"certs,omitempty"`
	// Restarts: gateway part (a serial line, a forwarder, a device
	// source) → times it stopped on its own and was restarted since the
	// gateway started. A part missing here never stopped.
	Restarts map[string]uint64 `cbor:"restarts,omitempty"`
	// Alarms: the gateway's active alarms, alarm id → a short text
	// ("sev2 night-leak device:w1: w1: night flow 0.8 m³/h above 0.05").
	Alarms map[string]string `cbor:"alarms,omitempty"`
}

func checkStatus(s *Status) error {
	if s.V != Version {
		return &Error{Err: ErrVersion, Path: "v", Msg: fmt.Sprintf("got %d, want %d", s.V, Version)}
	}
	if msg := gatewayIDProblem(s.GW); msg != "" {
		return schemaErr("gw", msg)
	}
	if s.State != StateOnline && s.State != StateOffline {
		return schemaErr("state", fmt.Sprintf("%q, want online or offline", s.State))
	}
	if err := validText("version", s.Version); err != nil {
		return err
	}
	if err := validText("boot", s.Boot); err != nil {
		return err
	}
	for k := range s.Backlog {
		if !IsRecordStream(k) && k != StreamCmdResult {
			return schemaErr(keyed("backlog", k), "not an up stream")
		}
	}
	for k := range s.Dropped {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed("dropped", k), msg)
		}
	}
	for k, v := range s.Devices {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed("devices", k), msg)
		}
		if v != DeviceOK && v != DeviceDegraded && v != DeviceDown {
			return schemaErr(keyed("devices", k), fmt.Sprintf("%q, want ok, degraded or down", v))
		}
	}
	if s.Clock != ClockSynced && s.Clock != ClockUnsynced {
		return schemaErr("clock", fmt.Sprintf("%q, want synced or unsynced", s.Clock))
	}
	return checkStatusAdditions(s)
}

// checkStatusAdditions checks the optional v1 additions.
func checkStatusAdditions(s *Status) error {
	for k, n := range s.LastSeq {
		if !IsRecordStream(k) {
			return schemaErr(keyed("last_seq", k), "not a record stream")
		}
		if n > MaxSeq {
			return schemaErr(keyed("last_seq", k), fmt.Sprintf("%d above %d (2^63-1), the highest seq", n, uint64(MaxSeq)))
		}
	}
	if len(s.EvidenceHead) != 0 {
		if len(s.EvidenceHead) != HashSize {
			return schemaErr("evidence_head", fmt.Sprintf("%d bytes, want %d", len(s.EvidenceHead), HashSize))
		}
		if s.LastSeq[StreamEvidence] == 0 {
			return schemaErr("evidence_head", `requires last_seq["evidence"] ≥ 1, the seq it is the hash of`)
		}
	}
	if len(s.EvidenceHeadSig) != 0 {
		if len(s.EvidenceHead) == 0 {
			return schemaErr("evidence_head_sig", "requires evidence_head")
		}
		if len(s.EvidenceHeadSig) > maxSigSize {
			return schemaErr("evidence_head_sig", fmt.Sprintf("%d bytes, limit %d", len(s.EvidenceHeadSig), maxSigSize))
		}
	}
	for k := range s.Certs {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed("certs", k), msg)
		}
	}
	for k := range s.Restarts {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed("restarts", k), msg)
		}
	}
	for k, v := range s.Alarms {
		if msg := textProblem(k); msg != "" {
			return schemaErr(keyed("alarms", k), msg)
		}
		if err := validText(keyed("alarms", k), v); err != nil {
			return err
		}
	}
	return nil
}

// EncodeStatus validates s and encodes it deterministically.
func EncodeStatus(s *Status) ([]byte, error) {
	if err := checkStatus(s); err != nil {
		return nil, err
	}
	return marshal(s)
}

func marshal(v any) ([]byte, error) {
	p, err := modes.enc.Marshal(v)
	if err != nil {
		return nil, &Error{Err: ErrSchema, Msg: err.Error()}
	}
	return p, nil
}

var (
	statusKeys     = []string{"v", "gw", "state", "ts", "version", "boot", "backlog", "oldest_unsent_ms", "dropped", "devices", "clock"}
	statusOptional = []string{"last_seq", "evidence_head", "evidence_head_sig", "certs", "restarts", "alarms"}
)

// DecodeStatus decodes and validates a status message strictly.
func DecodeStatus(p []byte) (*Status, error) {
	m, err := topMap(p, "status")
	if err != nil {
		return nil, err
	}
	s := &Status{}
	raw, ok := m["v"]
	if !ok {
		return nil, schemaErr("v", "missing required key")
	}
	if s.V, err = wantUint(raw); err != nil {
		return nil, schemaErr("v", err.Error())
	}
	if s.V != Version {
		return nil, &Error{Err: ErrVersion, Path: "v", Msg: fmt.Sprintf("got %d, want %d", s.V, Version)}
	}
	if err := keys(m, statusKeys, statusOptional); err != nil {
		return nil, err
	}
	texts := []struct {
		key string
		dst *string
	}{{"gw", &s.GW}, {"state", &s.State}, {"version", &s.Version}, {"boot", &s.Boot}, {"clock", &s.Clock}}
	for _, t := range texts {
		if *t.dst, err = wantText(m[t.key]); err != nil {
			return nil, schemaErr(t.key, err.Error())
		}
	}
	if s.TS, err = wantInt(m["ts"]); err != nil {
		return nil, schemaErr("ts", err.Error())
	}
	if s.OldestUnsentMS, err = wantUint(m["oldest_unsent_ms"]); err != nil {
		return nil, schemaErr("oldest_unsent_ms", err.Error())
	}
	if s.Backlog, err = decodeUintMap("backlog", m["backlog"]); err != nil {
		return nil, err
	}
	if s.Dropped, err = decodeUintMap("dropped", m["dropped"]); err != nil {
		return nil, err
	}
	dm, err := wantMap(m["devices"])
	if err != nil {
		return nil, schemaErr("devices", err.Error())
	}
	s.Devices = make(map[string]string, len(dm))
	for k, raw := range dm {
		if s.Devices[k], err = wantText(raw); err != nil {
			return nil, schemaErr(keyed("devices", k), err.Error())
		}
	}
	if err := decodeStatusAdditions(s, m); err != nil {
		return nil, err
	}
	if err := checkStatus(s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeStatusAdditions decodes the optional v1 keys present in m.
func decodeStatusAdditions(s *Status, m map[string]cbor.RawMessage) error {
	var err error
	if raw, ok := m["last_seq"]; ok {
		if s.LastSeq, err = decodeUintMap("last_seq", raw); err != nil {
			return err
		}
	}
	if raw, ok := m["evidence_head"]; ok {
		if s.EvidenceHead, err = wantHash(raw); err != nil {
			return schemaErr("evidence_head", err.Error())
		}
	}
	if raw, ok := m["evidence_head_sig"]; ok {
		if s.EvidenceHeadSig, err = wantBytes(raw); err != nil {
			return schemaErr("evidence_head_sig", err.Error())
		}
		if len(s.EvidenceHeadSig) == 0 {
			return schemaErr("evidence_head_sig", "must not be empty when present")
		}
	}
	if raw, ok := m["alarms"]; ok {
		am, err := wantMap(raw)
		if err != nil {
			return schemaErr("alarms", err.Error())
		}
		s.Alarms = make(map[string]string, len(am))
		for k, raw := range am {
			if s.Alarms[k], err = wantText(raw); err != nil {
				return schemaErr(keyed("alarms", k), err.Error())
			}
		}
	}
	if raw, ok := m["certs"]; ok {
		cm, err := wantMap(raw)
		if err != nil {
			return schemaErr("certs", err.Error())
		}
		s.Certs = make(map[string]int64, len(cm))
		for k, raw := range cm {
			if s.Certs[k], err = wantInt(raw); err != nil {
				return schemaErr(keyed("certs", k), err.Error())
			}
		}
	}
	if raw, ok := m["restarts"]; ok {
		if s.Restarts, err = decodeUintMap("restarts", raw); err != nil {
			return err
		}
	}
	return nil
}

func decodeUintMap(name string, raw []byte) (map[string]uint64, error) {
	m, err := wantMap(raw)
	if err != nil {
		return nil, schemaErr(name, err.Error())
	}
	out := make(map[string]uint64, len(m))
	for k, raw := range m {
		if out[k], err = wantUint(raw); err != nil {
			return nil, schemaErr(keyed(name, k), err.Error())
		}
	}
	return out, nil
}
