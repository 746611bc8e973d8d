package commands

import (
	"context"
	"fmt"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/hardware"
)

// Device is one field device the platform may read now (read) or whose
// outputs it may set (set). A Modbus TCP device implements it directly; a
// device on an RS-485 line through OnLine.
type Device interface {
	// Read polls the device now.
	Read(ctx context.Context) ([]drivers.Reading, error)
	// Write sets one output point. It must not touch the device once ctx
	// has ended.
	Write(ctx context.Context, point string, v drivers.Value) error
}

// Doer runs a job on the owner of a serial line, between its polls, with
// the line's port (bus.Line implements it). The ctx fn gets is the line's,
// not the caller's.
type Doer interface {
	Do(ctx context.Context, fn func(ctx context.Context, p hardware.Port) error) error
}

// Line is a line owner that can also poll one of its devices at once
// (bus.Line implements it).
type Line interface {
	Doer
	PollNow(ctx context.Context, id string) ([]drivers.Reading, error)
}

// PointWriter writes a named point (modbus.Device implements it).
type PointWriter interface {
	WritePoint(ctx context.Context, name string, v drivers.Value) error
}

// OnLine is the Device for dev on line l: Read polls it through the line
// owner, Write builds a writer on the line's port with newWriter (nil: the
// device has no writable outputs) and writes within the command's deadline.
func OnLine(l Line, dev config.Device, newWriter func(config.Device, hardware.Port) (PointWriter, error)) Device {
	return &lineDevice{l: l, dev: dev, newWriter: newWriter}
}

type lineDevice struct {
	l         Line
	dev       config.Device
	newWriter func(config.Device, hardware.Port) (PointWriter, error)
}

func (d *lineDevice) Read(ctx context.Context) ([]drivers.Reading, error) {
	return d.l.PollNow(ctx, d.dev.ID)
}

func (d *lineDevice) Write(ctx context.Context, point string, v drivers.Value) error {
	if d.newWriter == nil {
		return fmt.Errorf("%w: set: driver %s has no writable outputs", ErrRefused, d.dev.Driver)
	}
	return d.l.Do(ctx, func(lctx context.Context, p hardware.Port) error {
		jctx, cancel, err := within(lctx, ctx)
		if err != nil {
			return err
		}
		defer cancel()
		w, err := d.newWriter(d.dev, p)
		if err != nil {
			return err
		}
		return w.WritePoint(jctx, point, v)
	})
}

// within is a context for a line job: it ends with the line's (lctx) and
// with the command's (cmd). It fails at once if the command's deadline
// has passed while the job waited for the line: the device is not touched.
func within(lctx, cmd context.Context) (context.Context, context.CancelFunc, error) {
	if err := cmd.Err(); err != nil {
		return nil, nil, fmt.Errorf("the command's deadline passed while it waited for the line: %w", err)
	}
	jctx, cancel := context.WithCancelCause(lctx)
	if dl, ok := cmd.Deadline(); ok {
		var c2 context.CancelFunc
		jctx, c2 = context.WithDeadline(jctx, dl)
		stop := context.AfterFunc(cmd, func() { cancel(context.Cause(cmd)) })
		return jctx, func() { stop(); c2(); cancel(nil) }, nil
	}
	stop := context.AfterFunc(cmd, func() { cancel(context.Cause(cmd)) })
	return jctx, func() { stop(); cancel(nil) }, nil
}
