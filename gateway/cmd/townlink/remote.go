package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/townlink/townlink/drivers"
	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/scan"
)

// Remote is the running gateway, reached over its local control socket.
// When one answers, scan and read go through its line owner (a job between
// two polls) instead of opening the port a second time.
type Remote interface {
	// Scan scans the configured line named line at its own setting.
	Scan(ctx context.Context, line string, protocols []scan.Protocol, progress func(scan.Progress)) ([]localapi.Found, error)
	// Read polls the configured device once.
	Read(ctx context.Context, device string) ([]drivers.Reading, error)
}

// remoteFor returns the running gateway of cfg, or nil when none answers on
// its control socket (or there is no config, as for townlink scan of a
// board label or device path): the commands then open the port themselves.
func remoteFor(ctx context.Context, cfg *config.Config) (Remote, error) {
	if cfg == nil {
		return nil, nil
	}
	c := localapi.NewClient(cfg.Gateway.Socket)
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Status(sctx); err != nil {
		if errors.Is(err, localapi.ErrNotRunning) {
			return nil, nil
		}
		return nil, fmt.Errorf("control socket %s: %w", c.Path(), err)
	}
	return socketRemote{c}, nil
}

type socketRemote struct{ c *localapi.Client }

func (r socketRemote) Scan(ctx context.Context, line string, protocols []scan.Protocol, progress func(scan.Progress)) ([]localapi.Found, error) {
	var ps []string
	for _, p := range protocols {
		ps = append(ps, string(p))
	}
	return r.c.Scan(ctx, line, localapi.ScanOptions{Protocols: ps}, func(p localapi.Progress) {
		progress(scan.Progress{Step: p.Note, Done: p.Done, Total: p.Total})
	})
}

func (r socketRemote) Read(ctx context.Context, device string) ([]drivers.Reading, error) {
	res, err := r.c.Read(ctx, device)
	if err != nil {
		return nil, err
	}
	rd := drivers.Reading{Device: res.Device, Time: res.Time, Values: map[string]drivers.Value{}}
	for _, v := range res.Values {
		rd.Values[v.Name] = drivers.Text(v.Value) // exact as the gateway printed it
	}
	if res.Error != "" {
		return []drivers.Reading{rd}, errors.New(res.Error)
	}
	return []drivers.Reading{rd}, nil
}

// printRemoteFound prints what a scan through the running gateway found
// and the config entries to paste.
func printRemoteFound(w io.Writer, found []localapi.Found) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tPROTOCOL\tEDITION\tSETTING\tFIRST READING")
	for _, f := range found {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Address, f.Protocol, f.Edition, f.Serial, f.Reading)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(found) == 0 {
		fmt.Fprintln(w, "no device answered")
		return
	}
	fmt.Fprintln(w, "# Config entries (paste under devices:; townlink check accepts them):")
	for i, f := range found {
		s := f.Config
		if i > 0 {
			s = strings.TrimPrefix(s, "devices:\n")
		}
		fmt.Fprint(w, s)
	}
}
