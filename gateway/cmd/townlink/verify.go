package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fxamacker/cbor/v2"

	"github.com/townlink/townlink/uplink/wire"
)

// A capture is what `townlink tail -capture FILE` writes: every uplink
// batch exactly as received, one after the other (a CBOR sequence,
// RFC 8742). `townlink verify FILE` audits it offline.

func cmdVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "FILE", "Audit a capture written by `townlink tail -capture FILE`, offline: every seq\n"+
		"received or covered by a gap record, duplicates, and the evidence hash chain. Names the first\n"+
		"bad record. Exit status 1 when anything is missing, conflicting or broken.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: townlink verify FILE", errUsage)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	audit := wire.NewAudit()
	dec := cbor.NewDecoder(bufio.NewReader(f))
	n := 0
	for {
		var raw cbor.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: message %d: %w (is this a capture from townlink tail -capture?)", fs.Arg(0), n+1, err)
		}
		n++
		b, err := wire.Decode(raw)
		if err != nil {
			return fmt.Errorf("%s: message %d: %w", fs.Arg(0), n, err)
		}
		audit.Add(b)
	}
	rep := audit.Report()
	fmt.Fprintf(stdout, "%s: %d batches\n%s", fs.Arg(0), n, rep.String())
	if !rep.OK() {
		return errors.New("the capture has missing, conflicting or altered records")
	}
	return nil
}
