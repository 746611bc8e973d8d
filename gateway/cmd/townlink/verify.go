package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/townlink/townlink/gateway/identity"
	"github.com/townlink/townlink/uplink/wire"
)

func cmdVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "[-pub KEY]... FILE", "Audit a capture written by `townlink tail -capture FILE`, offline: every payload against the topic\n"+
		"it arrived on, every seq received or covered by a valid gap record, duplicates, forged gap records,\n"+
		"the evidence chain and, with -pub, its signatures; the tail against the last seqs the statuses\n"+
		"announced. Names the bad records. Exit status 1 when anything is missing, conflicting, forged or broken.", stderr)
	var keys pubKeys
	fs.Var(&keys, "pub", "the gateway's public `KEY` as `townlink id` prints it (ed25519:…), or GW=KEY for one gateway of several; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink verify [-pub KEY] FILE", errUsage)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	audit := wire.NewAudit()
	keys.trust(audit)
	n, legacy := 0, 0
	err = readCapture(f, func(i int, topic string, payload []byte) error {
		n = i
		if topic == "" { // an old capture: no topic to check the payload against
			legacy++
			b, err := wire.Decode(payload)
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			audit.Add(b)
			return nil
		}
		if err := audit.AddMessage(topic, payload); err != nil {
			fmt.Fprintf(stdout, "message %d on %s: REJECTED: %v\n", i, topic, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	rep := audit.Report()
	fmt.Fprintf(stdout, "%s: %d messages\n%s", fs.Arg(0), n, rep.String())
	if legacy > 0 {
		fmt.Fprintf(stdout, "note: %d messages from an old capture without topics: their gateway and stream were not checked against a topic\n", legacy)
	}
	if u := rep.SigsUnchecked(); len(u) > 0 {
		fmt.Fprintf(stdout, "signatures NOT CHECKED for %s: give the gateway's key with -pub (townlink id prints it)\n", strings.Join(u, ", "))
	}
	if !rep.OK() {
		return errors.New("the capture has missing, conflicting, forged or altered records")
	}
	return nil
}

// pubKeys is the repeatable -pub flag: KEY (any gateway) or GW=KEY.
type pubKeys struct {
	any  wire.Verifier
	byGW map[string]wire.Verifier
}

func (p *pubKeys) String() string { return "" }

func (p *pubKeys) Set(s string) error {
	gw, key, ok := strings.Cut(s, "=")
	if !ok || strings.HasPrefix(s, wire.AlgEd25519+":") {
		gw, key = "", s
	}
	v, err := identity.ParsePublic(key)
	if err != nil {
		return err
	}
	if gw == "" {
		if p.any != nil {
			return errors.New("two keys for every gateway: use GW=KEY for captures of several gateways")
		}
		p.any = v
		return nil
	}
	if err := wire.ValidateGatewayID(gw); err != nil {
		return err
	}
	if p.byGW == nil {
		p.byGW = map[string]wire.Verifier{}
	}
	p.byGW[gw] = v
	return nil
}

func (p *pubKeys) trust(a *wire.Audit) {
	if p.any != nil {
		a.TrustKey("", p.any)
	}
	for gw, v := range p.byGW {
		a.TrustKey(gw, v)
	}
}
