package gateway

import (
	"context"
	"fmt"

	"github.com/townlink/townlink/drivers/modbus"
	"github.com/townlink/townlink/gateway/clock"
	"github.com/townlink/townlink/gateway/commands"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/netpoll"
	"github.com/townlink/townlink/hardware"
	"github.com/townlink/townlink/uplink/badgerq"
	"github.com/townlink/townlink/uplink/wire"
)

// seenTable is the store table of command ids already answered.
const seenTable = "cmd-seen"

// buildCommands wires the command path: its answers go through the
// durable cmd-result stream, the ids it answered are kept in the store,
// and it reaches devices through their line owners (serial) or directly
// (Modbus TCP).
func (g *Gateway) buildCommands() error {
	results, err := g.db.Stream(wire.StreamCmdResult, badgerq.StreamOptions{})
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrStart, wire.StreamCmdResult, err)
	}
	kv, err := g.db.KV(seenTable)
	if err != nil {
		return fmt.Errorf("%w: table %s: %w", ErrStart, seenTable, err)
	}
	seen, err := commands.OpenSeen(kv, commands.SeenOptions{})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	devs := map[string]commands.Device{}
	lines := map[string]commands.Doer{}
	for _, l := range g.lines {
		lines[l.Name()] = l
		for _, d := range g.cfg.Devices {
			if d.Line == l.Name() && l.Has(d.ID) {
				devs[d.ID] = commands.OnLine(l, d, pointWriter(d))
			}
		}
	}
	for _, s := range g.sources {
		if td, ok := s.src.(*netpoll.Device); ok {
			devs[s.id] = td
		}
	}
	g.cmdResults = results
	g.readers = devs
	g.cmd, err = commands.New(commands.Options{
		Config: g.cfg, Devices: devs, Lines: lines, Results: results, Seen: seen,
		Boot: g.boot, Version: Version, Synced: clock.Synced, Alarms: g.rules,
		Logger: g.log.With("part", "commands"),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	return nil
}

// pointWriter builds the writer of a serial device's outputs on its line's
// port; nil when its driver has none.
func pointWriter(d config.Device) func(config.Device, hardware.Port) (commands.PointWriter, error) {
	if d.Driver != config.DriverModbus {
		return nil
	}
	return func(d config.Device, p hardware.Port) (commands.PointWriter, error) {
		mc, err := modbusConfig(d)
		if err != nil {
			return nil, err
		}
		return modbus.New(mc, modbus.NewRTU(p, d.Timeout, d.Retries))
	}
}

// subscribeCommands listens on the gateway's cmd topic.
func (g *Gateway) subscribeCommands(ctx context.Context) error {
	return g.client.Subscribe(ctx, g.topic(wire.StreamCmd), func(_ string, payload []byte) {
		g.cmd.Receive(ctx, payload)
	})
}
