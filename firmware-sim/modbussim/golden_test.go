package modbussim

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/townlink/townlink/internal/testkit"
)

// goldenCase is one exchange of testdata/frames.txt.
type goldenCase struct {
	name, source string
	setup, want  [][]string // lines split in fields; "unit N" selects a unit
	req, rep     []byte     // rep nil: no reply
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/frames.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	var c *goldenCase
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, rest, _ := strings.Cut(text, " ")
		if key == "case" {
			cases = append(cases, goldenCase{name: rest})
			c = &cases[len(cases)-1]
			continue
		}
		if c == nil {
			t.Fatalf("frames.txt:%d: %q before the first case", line, text)
		}
		switch key {
		case "source":
			c.source = rest
		case "req":
			c.req = testkit.Unhex(t, rest)
		case "rep":
			if rest != "none" {
				c.rep = testkit.Unhex(t, rest)
			}
		case "unit", "set", "fault":
			if c.req != nil { // "unit" after req selects the unit for want lines
				c.want = append(c.want, strings.Fields(text))
			} else {
				c.setup = append(c.setup, strings.Fields(text))
			}
		case "want":
			c.want = append(c.want, strings.Fields(text))
		default:
			t.Fatalf("frames.txt:%d: unknown key %q", line, key)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func parseVals(t testing.TB, fields []string) []uint16 {
	t.Helper()
	var vs []uint16
	for _, f := range fields {
		v, err := strconv.ParseUint(f, 0, 16)
		if err != nil {
			t.Fatalf("bad value %q: %v", f, err)
		}
		vs = append(vs, uint16(v))
	}
	return vs
}

func TestGoldenFrames(t *testing.T) {
	cases := loadGolden(t)
	if len(cases) < 20 {
		t.Fatalf("only %d golden cases loaded", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.source == "" || c.req == nil {
				t.Fatalf("case without source or request")
			}
			units := map[string]*Unit{}
			var order []*Unit
			var cur *Unit
			for _, f := range c.setup {
				switch f[0] {
				case "unit":
					id, _ := strconv.Atoi(f[1])
					cur = NewUnit(byte(id))
					units[f[1]] = cur
					order = append(order, cur)
				case "set":
					tab, err := ParseTable(f[1])
					must(t, err)
					addr := parseVals(t, f[2:3])[0]
					must(t, cur.Set(tab, addr, parseVals(t, f[3:])...))
				case "fault":
					fl, err := ParseFault(f[1])
					must(t, err)
					cur.SetFault(fl)
				}
			}
			p := serveMem(t, NewBus(mode9600, order...), c.req)
			if !bytes.Equal(p.out, c.rep) {
				t.Errorf("request % X\n got % X\nwant % X\n(source: %s)", c.req, p.out, c.rep, c.source)
			}
			cur = order[0]
			for _, f := range c.want {
				if f[0] == "unit" {
					cur = units[f[1]]
					continue
				}
				tab, err := ParseTable(f[1])
				must(t, err)
				addr := parseVals(t, f[2:3])[0]
				for i, want := range parseVals(t, f[3:]) {
					a := addr + uint16(i)
					var got uint16
					var ok bool
					switch tab {
					case HoldingRegisters:
						got, ok = cur.Holding(a)
					case InputRegisters:
						got, ok = cur.Input(a)
					case Coils, DiscreteInputs:
						var b bool
						if tab == Coils {
							b, ok = cur.Coil(a)
						} else {
							b, ok = cur.Discrete(a)
						}
						if b {
							got = 1
						}
					}
					if !ok || got != want {
						t.Errorf("after the exchange unit %d %v %d = %d (exists %v), want %d", cur.ID(), tab, a, got, ok, want)
					}
				}
			}
		})
	}
}

// The same golden requests, cut into single bytes as a slow UART delivers
// them, and all sent back to back, give the same replies.
func TestGoldenFramesByteByByteAndBackToBack(t *testing.T) {
	u := NewUnit(17)
	u.SetHolding(107, 0xAE41, 0x5652, 0x4340)
	req := testkit.Unhex(t, "11 03 00 6B 00 03 76 87")
	rep := testkit.Unhex(t, "11 03 06 AE 41 56 52 43 40 49 AD")
	var chunks [][]byte
	for _, b := range req {
		chunks = append(chunks, []byte{b})
	}
	chunks = append(chunks, bytes.Repeat(req, 3))
	p := serveMem(t, NewBus(mode9600, u), chunks...)
	if want := bytes.Repeat(rep, 4); !bytes.Equal(p.out, want) {
		t.Errorf("got % X\nwant % X", p.out, want)
	}
}

func TestCRC(t *testing.T) {
	// protocols.md §4.1: 01 03 00 00 00 05 has the CRC register value 0xC985.
	if got := crc16(testkit.Unhex(t, "01 03 00 00 00 05")); got != 0xC985 {
		t.Errorf("crc16 = %#04x, want 0xC985", got)
	}
	if got := appendCRC(testkit.Unhex(t, "11 83 02")); !bytes.Equal(got, testkit.Unhex(t, "11 83 02 C1 34")) {
		t.Errorf("appendCRC = % X", got)
	}
	if crcOK(testkit.Unhex(t, "11 83 02 C1 35")) || crcOK([]byte{1, 2, 3}) {
		t.Error("crcOK accepted a bad frame")
	}
}
