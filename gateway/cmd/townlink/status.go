package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/localapi"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "[-c FILE] [-json]", "Show what the running gateway is doing: devices and their last values, lines,\nuplink backlog, alarms and certificates (over its control socket).", stderr)
	path := fs.String("c", "/etc/townlink/townlink.yaml", "config `file` (names the control socket, gateway.socket)")
	socket := fs.String("socket", "", "control socket `path` (default: from the config)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	all := fs.Bool("all", false, "print every point of every device (default: the first lines of each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *socket == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		*socket = cfg.Gateway.Socket
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := localapi.NewClient(*socket).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	maxLines := 3
	if *all {
		maxLines = 0
	}
	printStatus(stdout, st, maxLines)
	return nil
}

// width is the terminal the status is laid out for.
const width = 80

// printStatus writes the status for a person on an 80-column terminal,
// at most maxLines lines of values per device (0: all).
func printStatus(w io.Writer, st *localapi.Status, maxLines int) {
	up := "OFFLINE"
	if st.Uplink.Connected {
		up = "connected"
	}
	fmt.Fprintf(w, "%s  townlink %s  clock %s  %s\n", st.Gateway, st.Version, st.Clock, st.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(w, "uplink   %s, backlog %d, oldest unsent %s\n", up, st.Uplink.Backlog, age(st.Uplink.OldestUnsentMS))
	for _, b := range st.Uplink.Brokers {
		fmt.Fprintf(w, "         %s\n", clipTo(b, width-9))
	}
	printDevices(w, st.Devices, maxLines)
	if st.Field.Configured > 0 {
		fmt.Fprintf(w, "field devices online: %d of %d\n", st.Field.Online, st.Field.Configured)
	}
	printLines(w, st.Lines)
	fmt.Fprintf(w, "\n%-12s %-10s %-14s %s\n", "STREAMS", "backlog", "oldest unsent", "last seq")
	for _, s := range st.Streams {
		fmt.Fprintf(w, "  %-10s %-10d %-14s %d\n", s.Name, s.Backlog, age(s.OldestUnsentMS), s.LastSeq)
	}
	printCounts(w, "dropped (records discarded on purpose)", st.Dropped)
	printCounts(w, "restarts (parts that stopped and were restarted)", st.Restarts)
	fmt.Fprintf(w, "\nALARMS  %d active\n", len(st.Alarms))
	for _, a := range st.Alarms {
		line := fmt.Sprintf("  %-8s %s %s since %s", strings.ToUpper(a.Severity), a.Device, a.Rule, a.Since.Local().Format("01-02 15:04"))
		fmt.Fprintln(w, clipTo(line, width))
		if a.Message != "" {
			fmt.Fprintln(w, clipTo("           "+a.Message, width))
		}
	}
	fmt.Fprintln(w, "\nCERTIFICATES")
	if len(st.Certs) == 0 {
		fmt.Fprintln(w, "  none (plain MQTT uplink)")
	}
	for _, c := range st.Certs {
		switch {
		case c.DaysLeft < 0:
			fmt.Fprintf(w, "  %-16s EXPIRED %d days ago\n", c.Name, -c.DaysLeft)
		case c.DaysLeft < 30:
			fmt.Fprintf(w, "  %-16s %d days left: RENEW SOON\n", c.Name, c.DaysLeft)
		default:
			fmt.Fprintf(w, "  %-16s %d days left\n", c.Name, c.DaysLeft)
		}
	}
}

func printDevices(w io.Writer, devs []localapi.Device, maxLines int) {
	n := map[string]int{}
	for _, d := range devs {
		n[d.State]++
	}
	fmt.Fprintf(w, "\nDEVICES  %d: %d ok, %d degraded, %d down\n", len(devs), n["ok"], n["degraded"], n["down"])
	for _, d := range devs {
		state := d.State
		if state != "ok" {
			state = strings.ToUpper(state)
		}
		where := d.Line
		if where == "" {
			where = "-"
		}
		last := "no value yet"
		if len(d.Values) > 0 {
			var newest time.Time
			for _, v := range d.Values {
				if v.Time.After(newest) {
					newest = v.Time
				}
			}
			last = "read " + newest.Local().Format("15:04:05")
		}
		fmt.Fprintln(w, clipTo(fmt.Sprintf("  %-22s %-9s %-11s %-10s %s", clipTo(d.ID, 22), state, clipTo(d.Driver, 11), clipTo(where, 10), last), width))
		var vals []string
		for _, v := range d.Values {
			vals = append(vals, v.Name+" "+v.Value)
		}
		if d.LastError != "" && d.State != "ok" {
			fmt.Fprintln(w, clipTo("      last error: "+d.LastError, width))
		}
		lines := wrap(vals, "      ", width)
		if maxLines > 0 && len(lines) > maxLines {
			more := len(lines) - maxLines + 1
			lines = append(lines[:maxLines-1], fmt.Sprintf("      … %d more lines of points (townlink status -all)", more))
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
}

func printLines(w io.Writer, lines []localapi.Line) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nLINES    %-5s %-8s %-8s %s\n", "busy", "ok", "errors", "(timeouts/frame/device/other, reopens)")
	for _, l := range lines {
		open := ""
		if !l.PortOpen {
			open = "  PORT CLOSED"
		}
		fmt.Fprintln(w, clipTo(fmt.Sprintf("  %s  %s %s%s", l.Name, l.Port, l.Mode, open), width))
		fmt.Fprintf(w, "         %4.1f%% %-8d %-8d (%d/%d/%d/%d, %d)\n", l.Utilisation*100, l.OK, l.Errors(),
			l.Timeouts, l.FrameErrors, l.DeviceErrors, l.OtherErrors, l.Reopens)
	}
}

func printCounts(w io.Writer, title string, m map[string]uint64) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", strings.ToUpper(title[:1])+title[1:])
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintln(w, clipTo(fmt.Sprintf("  %-40s %d", k, m[k]), width))
	}
}

// wrap joins items with two spaces into lines of at most max columns,
// each starting with indent; an item longer than a line is clipped.
func wrap(items []string, indent string, max int) []string {
	var out []string
	cur := ""
	for _, it := range items {
		it = clipTo(it, max-len(indent))
		switch {
		case cur == "":
			cur = indent + it
		case len(cur)+2+len(it) <= max:
			cur += "  " + it
		default:
			out = append(out, cur)
			cur = indent + it
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// clipTo cuts s to n columns (bytes: ids, values and names are ASCII),
// marking the cut with "…".
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// age is a duration in milliseconds for a person; "-" for none.
func age(ms uint64) string {
	if ms == 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return "<1 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
