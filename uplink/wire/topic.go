package wire

import (
	"fmt"
	"strings"
)

// Version is the contract version carried in every batch and status ("v")
// and in the topic ("v1").
const Version = 1

// Stream names: the last topic level. Records travel on telemetry, events,
// alarms and evidence; status and cmd-result go up, cmd and ack come down.
const (
	StreamTelemetry = "telemetry"
	StreamEvents    = "events"
	StreamAlarms    = "alarms"
	StreamEvidence  = "evidence"
	StreamStatus    = "status"
	StreamCmd       = "cmd"
	StreamCmdResult = "cmd-result"
	StreamAck       = "ack"
)

// TopicRoot is the first two levels of every topic.
const TopicRoot = "townlink/v1"

// Topic returns townlink/v1/{county}/{township}/{gw}/{stream}. It does not
// validate; the gateway validates its identity once at start-up with
// ValidateCounty, ValidateTownship and ValidateGatewayID.
func Topic(county, township, gw, stream string) string {
	return TopicRoot + "/" + county + "/" + township + "/" + gw + "/" + stream
}

// ParseTopic splits and validates a Townlink topic. Wildcards are not
// topics and are rejected.
func ParseTopic(topic string) (county, township, gw, stream string, err error) {
	parts := strings.Split(topic, "/")
	if len(parts) != 6 || parts[0] != "townlink" || parts[1] != "v1" {
		return "", "", "", "", fmt.Errorf("%w: %q is not townlink/v1/{county}/{township}/{gateway}/{stream}", ErrTopic, topic)
	}
	county, township, gw, stream = parts[2], parts[3], parts[4], parts[5]
	if err := ValidateCounty(county); err != nil {
		return "", "", "", "", err
	}
	if err := ValidateTownship(county, township); err != nil {
		return "", "", "", "", err
	}
	if err := ValidateGatewayID(gw); err != nil {
		return "", "", "", "", err
	}
	if !IsStream(stream) {
		return "", "", "", "", fmt.Errorf("%w: unknown stream %q", ErrTopic, stream)
	}
	return county, township, gw, stream, nil
}

// IsStream reports whether s is one of the eight stream names.
func IsStream(s string) bool {
	switch s {
	case StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence,
		StreamStatus, StreamCmd, StreamCmdResult, StreamAck:
		return true
	}
	return false
}

// IsRecordStream reports whether s carries batches of records: telemetry,
// events, alarms or evidence.
func IsRecordStream(s string) bool {
	switch s {
	case StreamTelemetry, StreamEvents, StreamAlarms, StreamEvidence:
		return true
	}
	return false
}

// ValidateGatewayID checks id against [a-z0-9][a-z0-9-]{0,62}.
func ValidateGatewayID(id string) error {
	if msg := gatewayIDProblem(id); msg != "" {
		return fmt.Errorf("%w: %s", ErrTopic, msg)
	}
	return nil
}

// gatewayIDProblem explains why id is not a gateway id, or returns "".
func gatewayIDProblem(id string) string {
	if len(id) == 0 || len(id) > 63 {
		return fmt.Sprintf("gateway id %q must be 1 to 63 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return fmt.Sprintf("gateway id %q: character %d (%q) not allowed; want [a-z0-9][a-z0-9-]{0,62}", id, i, c)
		}
	}
	return ""
}

// ValidateCounty checks a 6-digit county-level division code (GB/T 2260).
func ValidateCounty(code string) error {
	if len(code) != 6 || !allDigits(code) {
		return fmt.Errorf("%w: county code %q must be 6 digits", ErrTopic, code)
	}
	return nil
}

// ValidateTownship checks a 9-digit township/street code that begins with
// its county's 6-digit code.
func ValidateTownship(county, township string) error {
	if err := ValidateCounty(county); err != nil {
		return err
	}
	if len(township) != 9 || !allDigits(township) {
		return fmt.Errorf("%w: township code %q must be 9 digits", ErrTopic, township)
	}
	if township[:6] != county {
		return fmt.Errorf("%w: township code %q is not in county %q", ErrTopic, township, county)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DecodeTopic decodes a batch that arrived on topic: it parses the topic
// (ParseTopic), requires a record stream, decodes the payload (Decode) and
// refuses a batch whose gw or stream differ from the topic's, with an
// error wrapping ErrIdentity. A platform must decode with DecodeTopic, not
// Decode: the broker authenticates the topic (the gateway's client
// certificate and ACL), not what the payload says about itself.
func DecodeTopic(topic string, payload []byte) (*Batch, error) {
	_, _, gw, stream, err := ParseTopic(topic)
	if err != nil {
		return nil, err
	}
	if !IsRecordStream(stream) {
		return nil, fmt.Errorf("%w: %s: stream %q carries no records", ErrTopic, topic, stream)
	}
	b, err := Decode(payload)
	if err != nil {
		return nil, err
	}
	if err := matchTopic(topic, gw, stream, b.GW, b.Stream); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeStatusTopic decodes a status that arrived on topic and refuses one
// whose gw differs from the topic's (ErrIdentity).
func DecodeStatusTopic(topic string, payload []byte) (*Status, error) {
	_, _, gw, stream, err := ParseTopic(topic)
	if err != nil {
		return nil, err
	}
	if stream != StreamStatus {
		return nil, fmt.Errorf("%w: %s: not a status topic", ErrTopic, topic)
	}
	s, err := DecodeStatus(payload)
	if err != nil {
		return nil, err
	}
	if err := matchTopic(topic, gw, stream, s.GW, stream); err != nil {
		return nil, err
	}
	return s, nil
}

func matchTopic(topic, gw, stream, pgw, pstream string) error {
	switch {
	case pgw != gw:
		return fmt.Errorf("%w: payload says gateway %q, topic %s is gateway %q's", ErrIdentity, pgw, topic, gw)
	case pstream != stream:
		return fmt.Errorf("%w: payload says stream %q, topic %s is stream %q", ErrIdentity, pstream, topic, stream)
	}
	return nil
}
