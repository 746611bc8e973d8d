package config

import (
	"strings"
	"testing"
)

const webBase = `gateway: {id: gw-1, county: "320583", township: "320583104", data_dir: /srv/tl}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
`

func TestWebAndSocketKeys(t *testing.T) {
	c, err := Parse("t.yaml", []byte(webBase))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Socket != "/srv/tl/townlink.sock" || c.Web != (Web{}) {
		t.Fatalf("defaults: socket %q, web %+v; want data_dir/townlink.sock and the page off", c.Gateway.Socket, c.Web)
	}
	c, err = Parse("t.yaml", []byte(strings.Replace(webBase, "data_dir: /srv/tl}", "data_dir: /srv/tl, socket: /run/townlink/ctl.sock}", 1)+
		"web: {listen: \"127.0.0.1:8080\", password_file: /etc/townlink/web.pw}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Socket != "/run/townlink/ctl.sock" || c.Web.Listen != "127.0.0.1:8080" || c.Web.PasswordFile != "/etc/townlink/web.pw" {
		t.Fatalf("socket %q, web %+v", c.Gateway.Socket, c.Web)
	}
	if r := c.Redacted(); r.Web.PasswordFile != RedactedMark {
		t.Errorf("redacted web.password_file = %q", r.Web.PasswordFile)
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.yaml", y)
	if err != nil {
		t.Fatalf("YAML does not parse back: %v\n%s", err, y)
	}
	if back.Web != c.Web || back.Gateway.Socket != c.Gateway.Socket {
		t.Errorf("round trip: web %+v socket %q", back.Web, back.Gateway.Socket)
	}
}

func TestWebAndSocketErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{strings.Replace(webBase, "data_dir: /srv/tl}", "data_dir: /srv/tl, socket: tl.sock}", 1), "t.yaml:1:89: gateway.socket: \"tl.sock\" is not an absolute path"},
		{strings.Replace(webBase, "data_dir: /srv/tl}", "data_dir: /srv/tl, socket: /"+strings.Repeat("x", 120)+"}", 1), "is 121 bytes long; a Unix socket path holds at most 107"},
		{webBase + "web: {listen: localhost}\n", "t.yaml:3:15: web.listen: \"localhost\" is not host:port"},
		{webBase + "web: {listen: \"127.0.0.1:8080\", pasword_file: x}\n", "web: unknown key \"pasword_file\""},
	} {
		_, err := Parse("t.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\ngot %v\nwant %q", c.yaml, err, c.want)
		}
	}
}

func TestFullSampleTurnsThePageOn(t *testing.T) {
	c := mustLoad(t, "testdata/good/full.yaml")
	if c.Web.Listen != "127.0.0.1:8080" || c.Web.PasswordFile != "/etc/townlink/web.pw" || c.Gateway.Socket != "/var/lib/townlink/townlink.sock" {
		t.Errorf("web %+v, socket %q", c.Web, c.Gateway.Socket)
	}
}
