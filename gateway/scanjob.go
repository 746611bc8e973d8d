package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/townlink/townlink/gateway/localapi"
	"github.com/townlink/townlink/gateway/recent"
	"github.com/townlink/townlink/gateway/scan"
	"github.com/townlink/townlink/hardware"
)

// scanJob is the control socket's scan: scan.Run on a line owner's port,
// at the line's own setting (a running line cannot try other bauds: the
// technician stops the gateway and runs townlink scan --baud auto).
func scanJob(ctx context.Context, p hardware.Port, mode hardware.Mode, o localapi.ScanOptions, progress func(localapi.Progress)) ([]localapi.Found, error) {
	if o.Baud != "" && o.Baud != fmt.Sprint(mode.Baud) {
		return nil, fmt.Errorf("%w: line %s runs at %s; a running gateway scans at the line's setting (stop it and run townlink scan --baud %s)", localapi.ErrUnsupported, o.Line, mode, o.Baud)
	}
	protos, err := scan.ParseProtocols(strings.Join(o.Protocols, ","))
	if err != nil {
		return nil, err
	}
	found, err := scan.Run(ctx, p, mode, scan.Options{Protocols: protos, Line: o.Line},
		func(pr scan.Progress) { progress(localapi.Progress{Done: pr.Done, Total: pr.Total, Note: pr.Step}) })
	out := make([]localapi.Found, 0, len(found))
	for _, f := range found {
		var vals []string
		for k, v := range f.Reading.Values {
			vals = append(vals, fmt.Sprintf("%s=%s%s", k, recent.Text(v), unitSuffix(k)))
		}
		reading := strings.Join(vals, " ")
		if f.ReadErr != "" {
			reading = strings.TrimSpace(reading + " (read: " + f.ReadErr + ")")
		}
		if f.Note != "" {
			reading = strings.TrimSpace(reading + " (" + f.Note + ")")
		}
		out = append(out, localapi.Found{
			Protocol: string(f.Edition.Protocol()), Edition: string(f.Edition), Address: f.Address(),
			Serial: f.Mode.String(), Reading: reading,
			Config: scan.Config([]scan.Found{f}, scan.LineEntry{Name: o.Line, Known: true, Mode: mode}).Devices,
		})
	}
	return out, err
}

func unitSuffix(point string) string {
	if u := scan.UnitOf(point); u != "" {
		return " " + u
	}
	return ""
}
