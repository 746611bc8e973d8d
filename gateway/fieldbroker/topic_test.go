package fieldbroker

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	good := map[string][2]string{
		"field/cam-01/device.status":         {"cam-01", "device.status"},
		"field/K_1.a/ticket.issued":          {"K_1.a", "ticket.issued"},
		"field/x/" + strings.Repeat("e", 64): {"x", strings.Repeat("e", 64)},
		"field/x/cmd":                        {"x", "cmd"}, // well-formed; mayPublish refuses it
	}
	for topic, want := range good {
		id, ev, err := ParseTopic(topic)
		if err != nil || id != want[0] || ev != want[1] {
			t.Errorf("ParseTopic(%q) = %q, %q, %v; want %q, %q", topic, id, ev, err, want[0], want[1])
		}
	}
	bad := map[string]string{
		"":                                   "does not start with",
		"field":                              "does not start with",
		"fields/a/b":                         "does not start with",
		"/field/a/b":                         "does not start with",
		"field/a":                            "no event level",
		"field/a/b/c":                        "more than three levels",
		"field//b":                           "device id must be 1-64",
		"field/a/":                           "event must be 1-64",
		"field/a/B":                          "event has byte 'B' at 0",
		"field/a/+":                          "event has byte '+'",
		"field/+/b":                          "device id has byte '+'",
		"field/#":                            "no event level",
		"field/a b/c":                        "device id has byte ' '",
		"field/a/é":                          "event has byte",
		"field/a/" + strings.Repeat("e", 65): "event must be 1-64 characters, got 65",
	}
	for topic, msg := range bad {
		_, _, err := ParseTopic(topic)
		if !errors.Is(err, ErrTopic) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTopic(%q) = %v; want ErrTopic with %q", topic, err, msg)
		}
	}
}

func TestACL(t *testing.T) {
	if ev, err := mayPublish("a", "field/a/alarm.sos"); err != nil || ev != "alarm.sos" {
		t.Errorf("own topic: %q %v", ev, err)
	}
	for _, topic := range []string{"field/b/alarm.sos", "field/a/cmd", "field/A/x", "field/a/x/y"} {
		if _, err := mayPublish("a", topic); !errors.Is(err, ErrTopic) {
			t.Errorf("mayPublish(a, %q) = %v", topic, err)
		}
	}
	if !maySubscribe("a", "field/a/cmd") {
		t.Error("own downlink refused")
	}
	for _, f := range []string{"field/a/#", "field/+/cmd", "#", "field/b/cmd", "$share/g/field/a/cmd", "field/a/cmd/"} {
		if maySubscribe("a", f) {
			t.Errorf("maySubscribe(a, %q) allowed", f)
		}
	}
}

func FuzzTopic(f *testing.F) {
	for _, s := range []string{
		"field/cam-01/device.status", "field/a/b/c", "field//x", "field/a/", "field/a/cmd",
		"field/+/x", "field/#", "", "field", "field/a/\x00", "field/a/" + strings.Repeat("z", 70),
	} {
		f.Add(s, "cam-01")
	}
	f.Fuzz(func(t *testing.T, topic, dev string) {
		id, ev, err := ParseTopic(topic)
		if err != nil {
			if !errors.Is(err, ErrTopic) || id != "" || ev != "" {
				t.Fatalf("ParseTopic(%q) = %q, %q, %v", topic, id, ev, err)
			}
		} else {
			if TopicPrefix+"/"+id+"/"+ev != topic {
				t.Fatalf("ParseTopic(%q) = %q, %q does not rebuild the topic", topic, id, ev)
			}
			if checkDeviceID(id) != nil || checkEvent(ev) != nil || strings.ContainsAny(id+ev, "/+#\x00") {
				t.Fatalf("ParseTopic(%q) accepted %q, %q", topic, id, ev)
			}
		}
		// The ACL: a device may publish only under its own id, never to cmd.
		pev, perr := mayPublish(dev, topic)
		if perr == nil && (err != nil || id != dev || ev == CmdEvent || pev != ev) {
			t.Fatalf("mayPublish(%q, %q) allowed (parsed %q %q %v)", dev, topic, id, ev, err)
		}
		if perr == nil && topic == CmdTopic(dev) {
			t.Fatalf("device %q may publish to its downlink", dev)
		}
		if maySubscribe(dev, topic) != (topic == TopicPrefix+"/"+dev+"/"+CmdEvent) {
			t.Fatalf("maySubscribe(%q, %q) wrong", dev, topic)
		}
	})
}
