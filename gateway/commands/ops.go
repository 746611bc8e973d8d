package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/wire"
)

// ops are the operations the gateway implements, for the refusal of others.
const ops = "ping, read, time-sync, set, config, alarm-ack"

func (s *Service) run(ctx context.Context, cmd *wire.Command) (map[string]wire.Value, error) {
	switch cmd.Op {
	case wire.OpPing:
		return map[string]wire.Value{
			"boot":    wire.Text(s.o.Boot),
			"version": wire.Text(s.o.Version),
			"ts":      wire.Int(s.o.Now().UnixMilli()),
		}, nil
	case wire.OpRead:
		return s.read(ctx, cmd.Dev)
	case wire.OpTimeSync:
		return s.TimeSync(ctx)
	case wire.OpConfig:
		y, err := s.o.Config.Redacted().YAML()
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		return map[string]wire.Value{"config": wire.Text(string(y))}, nil
	case wire.OpSet:
		return s.set(ctx, cmd)
	case wire.OpAlarmAck:
		return s.alarmAck(ctx, cmd) // alarm.go
	}
	return nil, fmt.Errorf("%w: unknown operation %q (known: %s)", ErrRefused, cmd.Op, ops)
}

func (s *Service) read(ctx context.Context, id string) (map[string]wire.Value, error) {
	d, ok := s.o.Devices[id]
	if !ok {
		return nil, fmt.Errorf("%w: read: no polled device %q", ErrRefused, id)
	}
	rs, err := d.Read(ctx)
	out := map[string]wire.Value{}
	for _, r := range rs {
		for k, v := range r.Values {
			if wv, verr := pipeline.Value(v); verr == nil {
				out[k] = wv
			}
		}
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("read %s: %w", id, err)
	}
	return out, nil
}

// set writes an output the config allows the platform to set:
// {op: set, dev: ID, args: {point: NAME, value: V}} on a device whose
// outputs list names the point.
func (s *Service) set(ctx context.Context, cmd *wire.Command) (map[string]wire.Value, error) {
	i := slices.IndexFunc(s.o.Config.Devices, func(d config.Device) bool { return d.ID == cmd.Dev })
	if i < 0 {
		return nil, fmt.Errorf("%w: set: no device %q", ErrRefused, cmd.Dev)
	}
	dev := s.o.Config.Devices[i]
	pt, _ := cmd.Args["point"].AsText()
	if pt == "" {
		return nil, fmt.Errorf("%w: set: args.point names the output to set", ErrRefused)
	}
	if !slices.Contains(dev.Outputs, pt) {
		return nil, fmt.Errorf("%w: set: %s.%s is not an output the config allows (outputs: %v)", ErrRefused, dev.ID, pt, dev.Outputs)
	}
	val, ok := cmd.Args["value"]
	if !ok {
		return nil, fmt.Errorf("%w: set: args.value is missing", ErrRefused)
	}
	dv, err := driverValue(val)
	if err != nil {
		return nil, fmt.Errorf("%w: set %s.%s: %w", ErrRefused, dev.ID, pt, err)
	}
	d, ok := s.o.Devices[dev.ID]
	if !ok {
		return nil, fmt.Errorf("%w: set: device %s is not running", ErrRefused, dev.ID)
	}
	if err := d.Write(ctx, pt, dv); err != nil {
		return nil, fmt.Errorf("set %s.%s: %w", dev.ID, pt, err)
	}
	s.log.Info("output set by the platform", "device", dev.ID, "point", pt, "value", dv.String(), "cmd", cmd.ID)
	return map[string]wire.Value{pt: val}, nil
}

// TimeSync broadcasts the gateway's time (DL/T 645 0x08) on every line
// with DL/T 645 meters. It refuses while the gateway clock is not synced:
// a wrong time pushed to meters is worse than a drifting one.
func (s *Service) TimeSync(ctx context.Context) (map[string]wire.Value, error) {
	if !s.o.Synced() {
		return nil, fmt.Errorf("%w: time-sync: the gateway clock is not synchronised (check NTP/chrony); meters left alone", ErrRefused)
	}
	versions := map[string]map[dlt645.Version]bool{}
	for _, d := range s.o.Config.Devices {
		var v dlt645.Version
		switch d.Driver {
		case config.DriverDLT645:
			v = dlt645.V2007
		case config.DriverDLT645v97:
			v = dlt645.V1997
		default:
			continue
		}
		if versions[d.Line] == nil {
			versions[d.Line] = map[dlt645.Version]bool{}
		}
		versions[d.Line][v] = true
	}
	lines := 0
	var errs []error
	for _, lc := range s.o.Config.Lines {
		vs, l := versions[lc.Name], s.o.Lines[lc.Name]
		if len(vs) == 0 || l == nil {
			continue
		}
		err := l.Do(ctx, func(lctx context.Context, p hardware.Port) error {
			jctx, cancel, err := within(lctx, ctx)
			if err != nil {
				return err
			}
			defer cancel()
			for v := range vs {
				if err := dlt645.TimeSync(jctx, p, v, s.o.Now(), s.o.Config.Gateway.Location, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("line %s: %w", lc.Name, err))
			continue
		}
		lines++
	}
	if lines == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("%w: time-sync: no DL/T 645 meters configured", ErrRefused)
	}
	if err := errors.Join(errs...); err != nil {
		return map[string]wire.Value{"lines": wire.Int(int64(lines))}, err
	}
	s.log.Info("time broadcast to meters", "lines", lines)
	return map[string]wire.Value{"lines": wire.Int(int64(lines)), "ts": wire.Int(s.o.Now().UnixMilli())}, nil
}

// DailyTimeSync broadcasts the time once a day at gateway.time_sync_at
// (a quiet hour in gateway.timezone), until ctx ends.
func (s *Service) DailyTimeSync(ctx context.Context) error {
	for {
		now := s.o.Now()
		t := time.NewTimer(s.o.Config.Gateway.NextTimeSync(now).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if _, err := s.TimeSync(ctx); err != nil && !errors.Is(err, ErrRefused) {
			s.log.Warn("daily time sync failed", "err", err)
		}
	}
}
