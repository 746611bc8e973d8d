package scan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/townlink/townlink/drivers/cjt188"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/hardware"
)

// runner carries one scan: its plan with an estimate per attempt, what
// was found, and the progress callback.
type runner struct {
	o         Options
	log       *slog.Logger
	plan      Plan
	est       []estimate
	progress  func(Progress)
	found     []Found
	problems  []error
	doneEd    map[Edition]bool // editions found at some setting: not looked for again
	step      string
	searching int // devices the running search has found, not yet in found
}

type estimate struct {
	probes, done int
	window       time.Duration
	skipped      bool
}

func newRunner(o Options, plan Plan, progress func(Progress)) *runner {
	r := &runner{o: o, log: o.Logger, plan: plan, progress: progress, doneEd: map[Edition]bool{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range plan {
		e := estimate{probes: 1, window: r.window(a)}
		switch a.Edition {
		case ModbusRTU:
			e.probes = len(r.units())
		case CJT188v2004:
			e.probes = 1 + len(cjt188.SearchTypes) // the wildcard type, then each type if it is silent
		}
		r.est = append(r.est, e)
	}
	return r
}

func (r *runner) units() []byte {
	if r.o.Units != nil {
		return r.o.Units
	}
	us := make([]byte, 0, 247)
	for u := 1; u <= 247; u++ {
		us = append(us, byte(u))
	}
	return us
}

func (r *runner) delay(e Edition) time.Duration {
	if r.o.ReplyDelay > 0 {
		return r.o.ReplyDelay
	}
	switch e {
	case DLT645v2007, DLT645v1997:
		return dlt645.DefaultReplyDelay
	case CJT188v2004:
		return cjt188.DefaultReplyDelay
	}
	return modbus.DefaultProbeDelay
}

func (r *runner) window(a Attempt) time.Duration {
	switch a.Edition {
	case DLT645v2007, DLT645v1997:
		return dlt645.ProbeWindow(a.Mode, r.delay(a.Edition))
	case CJT188v2004:
		return cjt188.ProbeWindow(a.Mode, r.delay(a.Edition))
	}
	return modbus.ProbeWindow(a.Mode, r.delay(a.Edition))
}

// wants reports whether any attempt of group is still to be made.
func (r *runner) wants(group Plan) bool {
	for _, a := range group {
		if !r.doneEd[a.Edition] {
			return true
		}
	}
	r.skip(group)
	return false
}

func (r *runner) skip(group Plan) {
	for i, a := range r.plan {
		for _, g := range group {
			if a == g {
				r.est[i].skipped = true
			}
		}
	}
	r.report()
}

func (r *runner) index(a Attempt) int {
	for i, b := range r.plan {
		if a == b {
			return i
		}
	}
	return -1
}

// report sends a Progress: probes done and estimated over the plan, and
// the time the estimated probes left take.
func (r *runner) report() {
	if r.progress == nil {
		return
	}
	p := Progress{Step: r.step, Found: len(r.found) + r.searching}
	for _, e := range r.est {
		if e.skipped && e.done == 0 {
			continue
		}
		p.Done += e.done
		total := max(e.probes, e.done)
		if e.skipped {
			total = e.done
		}
		p.Total += total
		p.Left += time.Duration(total-e.done) * e.window
	}
	r.progress(p)
}

// runMode makes the attempts of group on p, open at mode, and reads what
// it finds. It returns an error only for what ends the scan (ctx, the
// port); other problems are kept in r.problems.
func (r *runner) runMode(ctx context.Context, p hardware.Port, mode hardware.Mode, group Plan) error {
	for _, a := range group {
		i := r.index(a)
		if i < 0 {
			continue
		}
		if r.doneEd[a.Edition] {
			r.est[i].skipped = true
			continue
		}
		r.step = fmt.Sprintf("%s at %s", a.Edition, mode)
		r.report()
		est := &r.est[i]
		onProbe := func(done, left, found int) {
			est.done, est.probes, r.searching = done, done+left, found
			r.report()
		}
		before := len(r.found)
		err := r.attempt(ctx, p, a, onProbe)
		r.searching = 0
		est.probes = est.done
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perr *portError
		if errors.As(err, &perr) {
			return perr.err
		}
		r.log.Debug("scan: attempt done", "edition", a.Edition, "mode", mode.String(), "probes", est.done,
			"found", len(r.found)-before, "err", err)
		if err != nil {
			r.problems = append(r.problems, fmt.Errorf("%s at %s: %w", a.Edition, mode, err))
		}
		for k := before; k < len(r.found); k++ {
			r.step = fmt.Sprintf("reading %s %s", r.found[k].Edition, r.found[k].Address())
			r.report()
			if err := r.firstReading(ctx, p, &r.found[k]); err != nil {
				return err
			}
		}
		if len(r.found) > before {
			r.doneEd[a.Edition] = true
		}
		r.report()
	}
	return nil
}

// portError marks an I/O failure of the port, which ends the scan.
type portError struct{ err error }

func (e *portError) Error() string { return e.err.Error() }

// attempt looks for one edition and appends what it finds to r.found.
func (r *runner) attempt(ctx context.Context, p hardware.Port, a Attempt, onProbe func(done, left, found int)) error {
	delay := r.delay(a.Edition)
	switch a.Edition {
	case DLT645v2007, DLT645v1997:
		v := dlt645.V2007
		if a.Edition == DLT645v1997 {
			v = dlt645.V1997
		}
		addrs, err := dlt645.Search(ctx, p, dlt645.SearchOptions{Version: v, Mode: a.Mode, ReplyDelay: delay, Progress: onProbe})
		for _, ad := range addrs {
			r.found = append(r.found, r.meter(a, ad.String()))
		}
		return classify(err, dlt645.ErrGarbled)
	case CJT188v2004:
		ms, err := cjt188.Search(ctx, p, cjt188.SearchOptions{Mode: a.Mode, ReplyDelay: delay, Progress: onProbe})
		for _, m := range ms {
			r.found = append(r.found, r.water(a, m))
		}
		return classify(err, cjt188.ErrGarbled)
	}
	us, err := modbus.Scan(ctx, p, modbus.ProbeOptions{Mode: a.Mode, ReplyDelay: delay, Units: r.units(),
		Progress: func(done, total, found int) { onProbe(done, total-done, found) }})
	for _, u := range us {
		r.found = append(r.found, r.unit(a, u))
	}
	return classify(err, modbus.ErrGarbled)
}

// classify keeps garbled replies as a problem and marks anything else but
// ctx as a port failure.
func classify(err, garbled error) error {
	if err == nil || errors.Is(err, garbled) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &portError{err}
}
