package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/townlink/townlink/gateway/certs"
	"github.com/townlink/townlink/uplink/mqttpub"
	"github.com/townlink/townlink/uplink/wire"
)

func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tail", "[-broker URL] [-topic FILTER] [-json FILE] [-n N] [-for DURATION]",
		"Subscribe to the uplink as the county platform does, print every decoded record, and end\n"+
			"(on Ctrl-C, -n or -for) with a verdict: received, duplicates, gaps covered by gap records,\n"+
			"gaps missing, evidence chain. Exit status 1 when records are missing or the chain is broken.", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "county broker `URL` (tcp:// or tls://)")
	topic := fs.String("topic", "townlink/v1/#", "topic `filter`; a shared subscription works too: $share/platform/townlink/v1/#")
	jsonOut := fs.String("json", "", "also write every record as a JSON line to `FILE` (- for stdout)")
	capture := fs.String("capture", "", "write every message exactly as received, with its topic, to `FILE`, for `townlink verify`")
	n := fs.Int("n", 0, "stop after `N` records (0: no limit)")
	dur := fs.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	quiet := fs.Bool("q", false, "print only the verdict")
	ca := fs.String("ca", "", "CA certificate `file` for tls://")
	cert := fs.String("cert", "", "client certificate `file` for tls://")
	key := fs.String("key", "", "client key `file` for tls://")
	id := fs.String("id", fmt.Sprintf("townlink-tail-%d", os.Getpid()), "MQTT client `id`")
	var keys pubKeys
	fs.Var(&keys, "pub", "the gateway's public `KEY` (ed25519:…, from townlink id) or GW=KEY: check the evidence signatures; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The connection's ups and downs go to stderr (a broker restarted while
	// tail watches: what it delivered while tail was away is not seen), and
	// tail is back within a second or two of the broker.
	opts := mqttpub.Options{Brokers: []string{*broker}, ClientID: *id,
		Backoff: mqttpub.Backoff{Min: 250 * time.Millisecond, Max: 2 * time.Second},
		Logger:  slog.New(logHandler(stderr, slog.LevelInfo, false, os.Getenv))}
	if *ca != "" || *cert != "" {
		tc, err := certs.LoadClient(*ca, *cert, *key)
		if err != nil {
			return err
		}
		opts.TLS = tc
	}
	c, err := mqttpub.New(opts)
	if err != nil {
		return err
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	var jw io.Writer
	if *jsonOut == "-" {
		jw = stdout
	} else if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		jw = f
	}
	t := &tailer{out: stdout, json: jw, quiet: *quiet, audit: wire.NewAudit(), limit: *n, stop: stop}
	keys.trust(t.audit)
	if *capture != "" {
		f, err := os.Create(*capture)
		if err != nil {
			return err
		}
		defer f.Close()
		t.capture = f
	}
	c.Start(ctx)
	defer c.Close()
	if err := c.Subscribe(ctx, *topic, t.handle); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tail: subscribed to %s on %s (Ctrl-C for the verdict)\n", *topic, *broker)
	<-ctx.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := t.audit.Report()
	fmt.Fprintf(stdout, "\n== verdict: %d messages, %d malformed\n%s", t.msgs, t.bad, rep.String())
	if u := rep.SigsUnchecked(); len(u) > 0 {
		fmt.Fprintf(stdout, "signatures NOT CHECKED for %s: give the gateway's key with -pub (townlink id prints it)\n", strings.Join(u, ", "))
	}
	fmt.Fprintln(stdout)
	if !rep.OK() {
		return fmt.Errorf("records missing, forged or evidence chain broken")
	}
	return nil
}

type tailer struct {
	mu    sync.Mutex
	out   io.Writer
	json  io.Writer
	quiet bool
	audit *wire.Audit
	limit int
	stop  context.CancelFunc
	msgs  int
	bad   int
	recs  int
	// capture receives every batch as received (a CBOR sequence).
	capture io.Writer
}

func (t *tailer) handle(topic string, payload []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msgs++
	if t.capture != nil {
		if err := appendCapture(t.capture, topic, payload); err != nil {
			fmt.Fprintf(t.out, "?? capture: %v\n", err)
		}
	}
	_, _, gw, stream, err := wire.ParseTopic(topic)
	if err != nil {
		t.bad++
		t.audit.AddMessage(topic, payload) // reported in the verdict
		fmt.Fprintf(t.out, "?? %s: %v\n", topic, err)
		return
	}
	switch {
	case stream == wire.StreamStatus:
		if err := t.audit.AddMessage(topic, payload); err != nil {
			t.bad++
			fmt.Fprintf(t.out, "?? %s: %v\n", topic, err)
			return
		}
		if !t.quiet {
			st, _ := wire.DecodeStatusTopic(topic, payload)
			fmt.Fprintf(t.out, "status    %s %s backlog=%v last_seq=%v dropped=%v devices=%v clock=%s certs=%v\n",
				gw, st.State, st.Backlog, st.LastSeq, st.Dropped, st.Devices, st.Clock, st.Certs)
			fmt.Fprint(t.out, formatAlarms(gw, st.Alarms)) // tailalarm.go
		}
		return
	case !wire.IsRecordStream(stream):
		if !t.quiet {
			fmt.Fprintf(t.out, "%-9s %s %d bytes\n", stream, gw, len(payload))
		}
		return
	}
	// The audit decodes with the topic; decode once more to print.
	if err := t.audit.AddMessage(topic, payload); err != nil {
		t.bad++
		fmt.Fprintf(t.out, "?? %s: %v\n", topic, err)
		return
	}
	b, _ := wire.DecodeTopic(topic, payload)
	for i := range b.Recs {
		r := &b.Recs[i]
		t.recs++
		if !t.quiet {
			if s, ok := formatAlarm(b.GW, r); ok && b.Stream == wire.StreamAlarms {
				fmt.Fprintln(t.out, s) // tailalarm.go
			} else {
				fmt.Fprintln(t.out, formatRecord(b.GW, b.Stream, r))
			}
		}
		if t.json != nil {
			writeJSON(t.json, b.GW, b.Stream, r)
		}
	}
	if t.limit > 0 && t.recs >= t.limit {
		t.stop()
	}
}

func formatRecord(gw, stream string, r *wire.Record) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-9s %s #%d %s %s %s(%s)", stream, gw, r.Seq, r.Dev, r.Kind, time.UnixMilli(r.TS).UTC().Format("15:04:05.000"), r.TSrc)
	keys := make([]string, 0, len(r.Vals))
	for k := range r.Vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%s", k, formatValue(r.Vals[k]))
	}
	if r.Q != 0 {
		fmt.Fprintf(&sb, " q=%d", r.Q)
	}
	return sb.String()
}

func writeJSON(w io.Writer, gw, stream string, r *wire.Record) {
	vals := make(map[string]any, len(r.Vals))
	for k, v := range r.Vals {
		switch v.Kind() {
		case wire.KindDecimal:
			vals[k] = json.Number(v.String())
		case wire.KindInt:
			i, _ := v.AsInt()
			vals[k] = i
		case wire.KindFloat:
			f, _ := v.AsFloat()
			vals[k] = f
		case wire.KindBool:
			b, _ := v.AsBool()
			vals[k] = b
		default:
			vals[k] = v.String()
		}
	}
	line := map[string]any{"gw": gw, "stream": stream, "seq": r.Seq, "dev": r.Dev, "kind": r.Kind, "ts": r.TS, "tsrc": r.TSrc, "vals": vals}
	if r.Grid != "" {
		line["grid"] = r.Grid
	}
	if r.Q != 0 {
		line["q"] = r.Q
	}
	if r.Hash != nil {
		line["prev"] = fmt.Sprintf("%x", r.Prev)
		line["hash"] = fmt.Sprintf("%x", r.Hash)
	}
	if r.Sig != nil {
		line["alg"] = r.Alg
		line["sig"] = fmt.Sprintf("%x", r.Sig)
	}
	b, _ := json.Marshal(line)
	w.Write(append(b, '\n'))
}

// formatValue prints a float that came from a float32 register with
// float32 precision (30.026749, not 30.026748657226562).
func formatValue(v wire.Value) string {
	if f, ok := v.AsFloat(); ok && float64(float32(f)) == f {
		return strconv.FormatFloat(f, 'g', -1, 32)
	}
	return v.String()
}
