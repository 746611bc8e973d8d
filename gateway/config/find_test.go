package config

import "testing"

const findSrc = `gateway:
  id: gw-1
uplink:
  brokers: ["tls://county:8883"]
  password_file: /etc/townlink/pw
lines:
  - name: RS485-1
    port: /dev/ttyS1
  - {name: RS485-2, port: /dev/ttyUSB0}
`

func TestFind(t *testing.T) {
	for _, c := range []struct {
		path      string
		line, col int
		ok        bool
	}{
		{"uplink.password_file", 5, 18, true},
		{"lines[0].port", 8, 11, true},
		{"lines[1].port", 9, 27, true},
		{"gateway", 2, 3, true},
		{"lines[2].port", 0, 0, false},
		{"uplink.ca", 0, 0, false},
		{"lines.port", 0, 0, false},
		{"lines[x]", 0, 0, false},
		{"", 0, 0, false},
	} {
		line, col, ok := Find([]byte(findSrc), c.path)
		if line != c.line || col != c.col || ok != c.ok {
			t.Errorf("Find(%q) = %d:%d %v, want %d:%d %v", c.path, line, col, ok, c.line, c.col, c.ok)
		}
	}
	if _, _, ok := Find([]byte("a: [\n"), "a"); ok {
		t.Error("Find in text that does not parse: ok")
	}
}

func FuzzFind(f *testing.F) {
	f.Add([]byte(findSrc), "lines[1].port")
	f.Add([]byte("a: *x\n"), "a.b[0][1]")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		line, col, ok := Find(data, path)
		if ok && (line < 1 || col < 1) {
			t.Fatalf("Find(%q) ok at %d:%d", path, line, col)
		}
	})
}
