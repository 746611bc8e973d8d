package mqttpub_test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/townlink/townlink/uplink/mqttpub"
)

func TestParseBroker(t *testing.T) {
	for _, ok := range []string{"tcp://127.0.0.1:1883", "ssl://county.example:8883", "tls://[::1]:8883", "mqtts://h:8883/", "mqtt://h:1"} {
		if _, err := mqttpub.ParseBroker(ok); err != nil {
			t.Errorf("ParseBroker(%q) = %v", ok, err)
		}
	}
}

func FuzzParseBroker(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:1883", "ssl://county.example:8883", "tls://[::1]:8883", "ws://h:80",
		"tcp://h", "tcp://:1", "tcp://h:0", "tcp://h:65536", "tcp://u:p@h:1", "127.0.0.1:1883", "tcp://h:1/x?y#z", "", "tcp://%zz:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := mqttpub.ParseBroker(s)
		if err != nil {
			if !strings.Contains(err.Error(), "broker URL") {
				t.Errorf("error %q does not say what it is about", err)
			}
			return
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			t.Fatalf("accepted %q with host %q: %v", s, u.Host, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("accepted %q with port %q", s, port)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			t.Fatalf("accepted %q with scheme %q", s, u.Scheme)
		}
	})
}

func TestTopicMatches(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"townlink/v1/#", "townlink/v1/320583/320583104/gw/cmd", true},
		{"townlink/v1/+/+/gw/cmd", "townlink/v1/320583/320583104/gw/cmd", true},
		{"townlink/v1/+/+/gw/cmd", "townlink/v1/320583/320583104/gw/ack", false},
		{"a/b", "a/b/c", false},
		{"a/#", "a", true},
		{"$share/platform/townlink/#", "townlink/x", true},
		{"a/+", "a", false},
	} {
		if got := mqttpub.TopicMatches(c.filter, c.topic); got != c.want {
			t.Errorf("TopicMatches(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}
