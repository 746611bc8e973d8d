package main

import (
	"context"
	"io"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/scan"
)

// Remote is the running gateway, reached over its local control socket.
// When one answers, scan and read go through its line owner (a job between
// two polls, bus.Line.Do running scan.Run or scan.Poll) instead of opening
// the port a second time.
type Remote interface {
	// Scan runs scan.Run on the owner of the configured line named line,
	// at the line's serial setting, and passes its progress on.
	Scan(ctx context.Context, line string, o scan.Options, progress func(scan.Progress)) ([]scan.Found, error)
	// Read polls the configured device once; with frames non-nil every
	// request and reply is written to it in scan.Tap's format.
	Read(ctx context.Context, device string, frames io.Writer) ([]drivers.Reading, error)
}

// remoteFor returns the running gateway of cfg, or nil when none answers:
// the commands then open the port themselves. The control socket's client
// plugs in here.
func remoteFor(_ context.Context, _ *config.Config) (Remote, error) { return nil, nil }
