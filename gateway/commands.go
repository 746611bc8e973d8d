package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/drivers/dlt645"
	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/gateway/clock"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/pipeline"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/wire"
)

// ops are the operations of the contract, with what they do.
var ops = "ping, read, time-sync, set, config"

// subscribeCommands listens on the gateway's cmd topic. The handler only
// queues a command; commandLoop, run by Run, handles them one at a time.
func (g *Gateway) subscribeCommands(ctx context.Context) error {
	return g.client.Subscribe(ctx, g.topic(wire.StreamCmd), func(_ string, payload []byte) {
		select {
		case g.cmds <- append([]byte(nil), payload...):
		default:
			g.log.Warn("command dropped: too many commands waiting")
		}
	})
}

// commandLoop handles queued commands until ctx ends.
func (g *Gateway) commandLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-g.cmds:
			g.handleCommand(ctx, p)
		}
	}
}

func (g *Gateway) handleCommand(ctx context.Context, payload []byte) {
	cmd, err := wire.DecodeCommand(payload)
	if err != nil {
		g.log.Warn("malformed command", "err", err)
		return
	}
	log := g.log.With("cmd", cmd.ID, "op", cmd.Op, "dev", cmd.Dev)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res := &wire.CommandResult{ID: cmd.ID, OK: true}
	vals, err := g.runCommand(cctx, cmd)
	if err != nil {
		res.OK, res.Err = false, err.Error()
		log.Warn("command failed", "err", err)
	} else {
		res.Vals = vals
		log.Info("command done")
	}
	b, err := wire.EncodeCommandResult(res)
	if err != nil {
		log.Error("command result not encoded", "err", err)
		return
	}
	if err := g.client.Publish(cctx, g.topic(wire.StreamCmdResult), b); err != nil {
		log.Warn("command result not published", "err", err)
	}
}

// ErrCommand reports a command the gateway refuses.
var ErrCommand = errors.New("command refused")

func (g *Gateway) runCommand(ctx context.Context, cmd *wire.Command) (map[string]wire.Value, error) {
	switch cmd.Op {
	case "ping":
		return map[string]wire.Value{
			"boot":    wire.Text(g.boot),
			"version": wire.Text(Version),
			"ts":      wire.Int(time.Now().UnixMilli()),
		}, nil
	case "read":
		for _, l := range g.lines {
			if !l.Has(cmd.Dev) {
				continue
			}
			rs, err := l.PollNow(ctx, cmd.Dev)
			out := map[string]wire.Value{}
			for _, r := range rs {
				for k, v := range r.Values {
					if wv, verr := pipeline.Value(v); verr == nil {
						out[k] = wv
					}
				}
			}
			if err != nil && len(out) == 0 {
				return nil, fmt.Errorf("read %s: %w", cmd.Dev, err)
			}
			return out, nil
		}
		return nil, fmt.Errorf("%w: read: no polled device %q", ErrCommand, cmd.Dev)
	case "time-sync":
		return g.timeSync(ctx)
	case "config":
		b, err := json.Marshal(g.cfg.Redacted())
		if err != nil {
			return nil, err
		}
		return map[string]wire.Value{"config": wire.Text(string(b))}, nil
	case "set":
		return g.set(ctx, cmd)
	}
	return nil, fmt.Errorf("%w: unknown operation %q (known: %s)", ErrCommand, cmd.Op, ops)
}

// timeSync broadcasts the gateway's time (DL/T 645 0x08) on every line
// with DL/T 645 meters. It refuses while the gateway clock is not synced:
// a wrong time pushed to meters is worse than a drifting one.
func (g *Gateway) timeSync(ctx context.Context) (map[string]wire.Value, error) {
	if !clock.Synced() {
		return nil, fmt.Errorf("%w: time-sync: the gateway clock is not synchronised (check NTP/chrony); meters left alone", ErrCommand)
	}
	lines := 0
	var errs []error
	for _, l := range g.lines {
		versions := map[dlt645.Version]bool{}
		for _, d := range g.cfg.Devices {
			if d.Line != l.Name() {
				continue
			}
			switch d.Driver {
			case config.DriverDLT645:
				versions[dlt645.V2007] = true
			case config.DriverDLT645v97:
				versions[dlt645.V1997] = true
			}
		}
		if len(versions) == 0 {
			continue
		}
		err := l.Do(ctx, func(ctx context.Context, p hardware.Port) error {
			for v := range versions {
				if err := dlt645.TimeSync(ctx, p, v, time.Now(), g.cfg.Gateway.Location, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("line %s: %w", l.Name(), err))
			continue
		}
		lines++
	}
	if lines == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("%w: time-sync: no DL/T 645 meters configured", ErrCommand)
	}
	if err := errors.Join(errs...); err != nil {
		return map[string]wire.Value{"lines": wire.Int(int64(lines))}, err
	}
	g.log.Info("time broadcast to meters", "lines", lines)
	return map[string]wire.Value{"lines": wire.Int(int64(lines)), "ts": wire.Int(time.Now().UnixMilli())}, nil
}

// dailyTimeSync broadcasts the time once a day, the first time an hour
// after start.
func (g *Gateway) dailyTimeSync(ctx context.Context) error {
	wait := time.Hour
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = 24 * time.Hour
		if _, err := g.timeSync(ctx); err != nil && !errors.Is(err, ErrCommand) {
			g.log.Warn("daily time sync failed", "err", err)
		}
	}
}

// set writes an output the config allows the platform to set:
// {op: set, dev: ID, args: {point: NAME, value: V}} on a Modbus device
// whose outputs list names the point.
func (g *Gateway) set(ctx context.Context, cmd *wire.Command) (map[string]wire.Value, error) {
	var dev *config.Device
	for i := range g.cfg.Devices {
		if g.cfg.Devices[i].ID == cmd.Dev {
			dev = &g.cfg.Devices[i]
		}
	}
	if dev == nil {
		return nil, fmt.Errorf("%w: set: no device %q", ErrCommand, cmd.Dev)
	}
	pt, _ := cmd.Args["point"].AsText()
	if pt == "" {
		return nil, fmt.Errorf("%w: set: args.point names the output to set", ErrCommand)
	}
	if !slices.Contains(dev.Outputs, pt) {
		return nil, fmt.Errorf("%w: set: %s.%s is not an output the config allows (outputs: %v)", ErrCommand, dev.ID, pt, dev.Outputs)
	}
	val, ok := cmd.Args["value"]
	if !ok {
		return nil, fmt.Errorf("%w: set: args.value is missing", ErrCommand)
	}
	dv, err := driverValue(val)
	if err != nil {
		return nil, fmt.Errorf("%w: set: %w", ErrCommand, err)
	}
	if dev.Driver != config.DriverModbus {
		return nil, fmt.Errorf("%w: set: driver %s has no writable outputs", ErrCommand, dev.Driver)
	}
	mc, err := modbusConfig(*dev)
	if err != nil {
		return nil, err
	}
	for _, l := range g.lines {
		if l.Name() != dev.Line {
			continue
		}
		err := l.Do(ctx, func(ctx context.Context, p hardware.Port) error {
			md, err := modbus.New(mc, modbus.NewRTU(p, dev.Timeout, dev.Retries))
			if err != nil {
				return err
			}
			return md.WritePoint(ctx, pt, dv)
		})
		if err != nil {
			return nil, fmt.Errorf("set %s.%s: %w", dev.ID, pt, err)
		}
		g.log.Info("output set by the platform", "device", dev.ID, "point", pt, "value", dv.String(), "cmd", cmd.ID)
		return map[string]wire.Value{pt: val}, nil
	}
	return nil, fmt.Errorf("%w: set: line %s of %s is not running", ErrCommand, dev.Line, dev.ID)
}

// driverValue maps a wire value from a command to a driver value.
func driverValue(v wire.Value) (drivers.Value, error) {
	switch v.Kind() {
	case wire.KindDecimal:
		m, e, _ := v.Decimal()
		return drivers.Dec(m, e), nil
	case wire.KindInt:
		i, _ := v.AsInt()
		return drivers.Int(i), nil
	case wire.KindBool:
		b, _ := v.AsBool()
		return drivers.Bool(b), nil
	case wire.KindFloat:
		f, _ := v.AsFloat()
		return drivers.Float(f), nil
	}
	return drivers.Value{}, fmt.Errorf("value %s cannot be written to an output", v)
}
