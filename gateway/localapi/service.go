package localapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/metrics"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// Errors. The server maps them to HTTP statuses; the client gives them back.
var (
	ErrUnknown     = errors.New("localapi: no such device or line")
	ErrRefused     = errors.New("localapi: refused")
	ErrUnsupported = errors.New("localapi: not available in this gateway")
	ErrDevice      = errors.New("localapi: device did not answer")
	ErrBadRequest  = errors.New("localapi: bad request")
)

// Queue is one stream's queue (badgerq.Queue).
type Queue interface {
	Stats() badgerq.Stats
}

// Reader polls one device now (commands.Device).
type Reader interface {
	Read(ctx context.Context) ([]drivers.Reading, error)
}

// Doer runs a job on a serial line's owner between its polls (bus.Line).
type Doer interface {
	Do(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error
}

// Scanner scans one line's port for devices (the scan package's Run,
// adapted), reporting progress as it goes. It runs inside the line
// owner's job: the line's polls wait until it returns.
type Scanner func(ctx context.Context, p hardware.Port, mode hardware.Mode, opts ScanOptions, progress func(Progress)) ([]Found, error)

// Recent gives a device's last point values (recent.Store).
type Recent interface {
	Last(device string) []recent.Point
}

// Sources are what the Service reads and acts on. Config and Snapshot
// are required; a nil source leaves its part of the Status empty and a
// nil action answers ErrUnsupported.
type Sources struct {
	Config *config.Config
	// Snapshot is the status message now (status.Reporter.Snapshot).
	Snapshot  func() *wire.Status
	Queues    map[string]Queue // by stream, for each one's oldest unsent
	Lines     func() []metrics.LineCounts
	Connected func() bool
	Recent    Recent
	// LastErrors are the serial devices' last poll errors, by id.
	LastErrors func() map[string]string
	// FieldOnline counts the recorders and kiosks connected now.
	FieldOnline func() int
	// Alarms are the active alarms (the rules engine); nil: none.
	Alarms func() []Alarm
	Now    func() time.Time

	Devices  map[string]Reader // the polled devices, by id
	LineJobs map[string]Doer   // the serial lines' owners, by name
	Scan     Scanner
	// TimeSync broadcasts the time on every line with DL/T 645 meters
	// and returns on how many (commands.Service.TimeSync, adapted).
	TimeSync func(ctx context.Context) (int, error)
}

// Service answers the local API.
type Service struct {
	s Sources
}

// New returns a Service. It does no I/O.
func New(s Sources) (*Service, error) {
	if s.Config == nil || s.Snapshot == nil {
		return nil, fmt.Errorf("%w: Config and Snapshot are required", ErrBadRequest)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return &Service{s: s}, nil
}

// Status is the gateway now.
func (v *Service) Status(context.Context) *Status {
	snap := v.s.Snapshot()
	cfg := v.s.Config
	now := v.s.Now()
	st := &Status{
		Gateway: snap.GW, Version: snap.Version, Boot: snap.Boot, Time: now, Clock: snap.Clock,
		Uplink:  Uplink{Brokers: cfg.Uplink.Brokers, OldestUnsentMS: snap.OldestUnsentMS},
		Dropped: nonZero(snap.Dropped), Restarts: snap.Restarts,
		Devices: []Device{}, Lines: []Line{}, Streams: []Stream{}, Alarms: []Alarm{}, Certs: []Cert{},
	}
	if v.s.Connected != nil {
		st.Uplink.Connected = v.s.Connected()
	}
	var lastErr map[string]string
	if v.s.LastErrors != nil {
		lastErr = v.s.LastErrors()
	}
	for _, d := range cfg.Devices {
		dv := Device{LastError: lastErr[d.ID], ID: d.ID, Kind: string(d.Kind), Driver: string(d.Driver), Line: d.Line, State: snap.Devices[d.ID], Values: []recent.Point{}}
		if dv.State == "" {
			dv.State = wire.DeviceDown
		}
		if v.s.Recent != nil {
			if pts := v.s.Recent.Last(d.ID); pts != nil {
				dv.Values = pts
			}
		}
		if d.Driver == config.DriverRecorder || d.Driver == config.DriverKiosk {
			st.Field.Configured++
		}
		st.Devices = append(st.Devices, dv)
	}
	if v.s.FieldOnline != nil {
		st.Field.Online = v.s.FieldOnline()
	}
	st.Lines = v.lines()
	for name, backlog := range snap.Backlog {
		s := Stream{Name: name, Backlog: backlog, LastSeq: snap.LastSeq[name]}
		if q := v.s.Queues[name]; q != nil {
			if o := q.Stats().Oldest; !o.IsZero() && backlog > 0 {
				s.OldestUnsentMS = uint64(max(0, now.Sub(o).Milliseconds()))
			}
		}
		st.Uplink.Backlog += backlog
		st.Streams = append(st.Streams, s)
	}
	sort.Slice(st.Streams, func(i, j int) bool { return st.Streams[i].Name < st.Streams[j].Name })
	for name, days := range snap.Certs {
		st.Certs = append(st.Certs, Cert{Name: name, DaysLeft: days})
	}
	sort.Slice(st.Certs, func(i, j int) bool { return st.Certs[i].Name < st.Certs[j].Name })
	if v.s.Alarms != nil {
		if a := v.s.Alarms(); a != nil {
			st.Alarms = a
		}
	}
	return st
}

func (v *Service) lines() []Line {
	out := []Line{}
	if v.s.Lines == nil {
		return out
	}
	byName := map[string]config.Line{}
	for _, l := range v.s.Config.Lines {
		byName[l.Name] = l
	}
	for _, c := range v.s.Lines() {
		lc := byName[c.Name]
		out = append(out, Line{
			Name: c.Name, Port: lc.Port, Mode: lc.Mode().String(), PortOpen: c.PortOpen, Utilisation: c.Utilisation,
			OK: c.OK, Timeouts: c.Timeouts, FrameErrors: c.FrameErrors, DeviceErrors: c.DeviceErrors, OtherErrors: c.OtherErrors, Reopens: c.Reopens,
		})
	}
	return out
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, n := range m {
		if n > 0 {
			out[k] = n
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Read polls one device now; its readings are queued as usual.
func (v *Service) Read(ctx context.Context, id string) (*ReadResult, error) {
	d, ok := v.s.Devices[id]
	if !ok {
		return nil, fmt.Errorf("%w: no polled device %q (townlink status lists them)", ErrUnknown, id)
	}
	rs, err := d.Read(ctx)
	res := &ReadResult{Device: id, Time: v.s.Now(), Values: []PointValue{}}
	for _, r := range rs {
		if !r.Time.IsZero() {
			res.Time = r.Time
		}
		for name, val := range r.Values {
			res.Values = append(res.Values, PointValue{Name: name, Value: recent.Text(val)})
		}
	}
	sort.Slice(res.Values, func(i, j int) bool { return res.Values[i].Name < res.Values[j].Name })
	if err != nil {
		if len(res.Values) == 0 {
			return nil, fmt.Errorf("%w: %s: %w", ErrDevice, id, err)
		}
		res.Error = err.Error()
	}
	return res, nil
}

// TimeSync broadcasts the gateway's time to the DL/T 645 meters.
func (v *Service) TimeSync(ctx context.Context) (*TimeSyncResult, error) {
	if v.s.TimeSync == nil {
		return nil, fmt.Errorf("%w: time sync", ErrUnsupported)
	}
	n, err := v.s.TimeSync(ctx)
	if err != nil {
		return nil, err
	}
	return &TimeSyncResult{Lines: n, Time: v.s.Now()}, nil
}

// Scan scans a line for devices between its polls.
func (v *Service) Scan(ctx context.Context, line string, opts ScanOptions, progress func(Progress)) ([]Found, error) {
	l, ok := v.s.LineJobs[line]
	if !ok {
		return nil, fmt.Errorf("%w: no line %q", ErrUnknown, line)
	}
	if v.s.Scan == nil {
		return nil, fmt.Errorf("%w: scan through the running gateway", ErrUnsupported)
	}
	var mode hardware.Mode
	for _, lc := range v.s.Config.Lines {
		if lc.Name == line {
			mode = lc.Mode()
		}
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	opts.Line = line
	var found []Found
	err := l.Do(ctx, func(lctx context.Context, p hardware.Port) error {
		jctx, cancel := context.WithCancel(lctx)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel) // the caller gave up (Ctrl-C): stop scanning
		defer stop()
		var err error
		found, err = v.s.Scan(jctx, p, mode, opts, progress)
		return err
	})
	return found, err
}
