package modbus

import (
	"time"

	"github.com/townlink/townlink/hardware"
)

// DefaultRetries is the retry count a Modbus device gets when its config
// gives none (see drivers.CheckRetries for what a count means).
const DefaultRetries = 2

// Turnaround is the margin allowed for a slave to start its reply after a
// request has left the wire: field devices answer within a few tens of
// milliseconds; the spec itself sets no bound.
const Turnaround = 50 * time.Millisecond

// rtuOverhead is an RTU frame's bytes around its PDU: address and CRC.
const rtuOverhead = 3

// MinTimeout is the shortest reply timeout that can work for c on an RTU
// line at mode m: its longest read request and the longest reply to it on
// the wire, plus Turnaround. A timeout below it times out replies that are
// still arriving. c must be valid.
func (c Config) MinTimeout(m hardware.Mode) time.Duration {
	var worst time.Duration
	for _, g := range plan(c.Points, int(c.MaxGap)) {
		req := rtuOverhead + 5 // FC, address, quantity
		rep := rtuOverhead + 2 // FC, byte count
		if g.table.bits() {
			rep += (int(g.qty) + 7) / 8
		} else {
			rep += 2 * int(g.qty)
		}
		worst = max(worst, m.WireTime(req)+m.WireTime(rep))
	}
	return worst + Turnaround
}
