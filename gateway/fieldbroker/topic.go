package fieldbroker

import (
	"fmt"
	"strings"
)

// TopicPrefix is the first level of every field topic.
const TopicPrefix = "field"

// CmdEvent is the reserved last level of the downlink topic
// field/{device-id}/cmd: devices subscribe to it and never publish to it.
const CmdEvent = "cmd"

const (
	maxIDLen    = 64
	maxEventLen = 64
)

// ParseTopic splits a field topic "field/{device-id}/{event}" (exactly
// three levels). The device id is [A-Za-z0-9._-]{1,64}, the event
// [a-z0-9._-]{1,64}. It does not know who published: the ACL compares the id
// with the device derived from the login (see [Broker]). The error wraps
// [ErrTopic] and says what is wrong.
func ParseTopic(topic string) (deviceID, event string, err error) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix+"/")
	if !ok {
		return "", "", fmt.Errorf("%w: %q does not start with %q", ErrTopic, clip(topic), TopicPrefix+"/")
	}
	deviceID, event, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: %q has no event level (want field/{device}/{event})", ErrTopic, clip(topic))
	}
	if strings.Contains(event, "/") {
		return "", "", fmt.Errorf("%w: %q has more than three levels (want field/{device}/{event})", ErrTopic, clip(topic))
	}
	if err := checkDeviceID(deviceID); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrTopic, clip(topic), err)
	}
	if err := checkEvent(event); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrTopic, clip(topic), err)
	}
	return deviceID, event, nil
}

// CmdTopic is the downlink topic of a device: field/{device-id}/cmd.
func CmdTopic(deviceID string) string { return TopicPrefix + "/" + deviceID + "/" + CmdEvent }

// mayPublish reports whether the device may publish to topic, and the event
// if so. The device comes from the login, never from the topic.
func mayPublish(deviceID, topic string) (event string, err error) {
	id, event, err := ParseTopic(topic)
	if err != nil {
		return "", err
	}
	if id != deviceID {
		return "", fmt.Errorf("%w: device %q may not publish to %q (another device's topic)", ErrTopic, deviceID, clip(topic))
	}
	if event == CmdEvent {
		return "", fmt.Errorf("%w: device %q may not publish to its downlink topic %q", ErrTopic, deviceID, topic)
	}
	return event, nil
}

// maySubscribe reports whether the device may subscribe to filter: only its
// own downlink topic, exactly (no wildcards, no shared subscriptions).
func maySubscribe(deviceID, filter string) bool { return filter == CmdTopic(deviceID) }

func checkDeviceID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("device id must be 1-%d characters, got %d", maxIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("device id has byte %q at %d (allowed: A-Z a-z 0-9 . _ -)", c, i)
		}
	}
	return nil
}

func checkEvent(ev string) error {
	if ev == "" || len(ev) > maxEventLen {
		return fmt.Errorf("event must be 1-%d characters, got %d", maxEventLen, len(ev))
	}
	for i := 0; i < len(ev); i++ {
		c := ev[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("event has byte %q at %d (allowed: a-z 0-9 . _ -)", c, i)
		}
	}
	return nil
}

// clip shortens a topic for an error message (topics may be 64 KiB).
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
