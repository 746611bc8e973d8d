package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/townlink/townlink/uplink/county"
	"github.com/townlink/townlink/uplink/county/pgstore"
	"github.com/townlink/townlink/uplink/wire"
)

func report(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("pg", "", "PostgreSQL connection string (required)")
	keysFile := fs.String("keys", "", "registered gateway keys: also audit every stored evidence chain with them (wire.Audit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		return errors.New("report: -pg is required")
	}
	store, err := pgstore.Open(ctx, *dsn, "report", nil)
	if err != nil {
		return err
	}
	defer store.Close()
	r, err := store.Summary(ctx)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprint(stdout, r.String()); err != nil {
		return err
	}
	if *keysFile == "" {
		return nil
	}
	keys, err := readKeys(*keysFile)
	if err != nil {
		return err
	}
	reps, err := store.AuditEvidence(ctx, keys)
	if err != nil {
		return err
	}
	bad := 0
	for _, sr := range reps {
		if !sr.OK() || !sr.SigChecked {
			bad++
			fmt.Fprintf(stdout, "evidence %s: ok %v, signatures checked %v, missing %v, conflicts %v, forged %v, rollbacks %v, chain %v\n",
				sr.GW, sr.OK(), sr.SigChecked, sr.Missing, sr.Conflicts, sr.Forged, sr.Rollbacks, sr.ChainErr)
		}
	}
	if _, err = fmt.Fprintf(stdout, "evidence chains      %d audited, %d whole and signed\n", len(reps), len(reps)-bad); err != nil {
		return err
	}
	if bad > 0 {
		// A script checking the exit status must not take this for a pass.
		return fmt.Errorf("report: %d of %d evidence chains not whole and signed", bad, len(reps))
	}
	return nil
}

func readKeys(path string) (map[string]wire.Verifier, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-keys: %w", err)
	}
	defer f.Close()
	keys, err := county.ParseKeys(f)
	if err != nil {
		return nil, fmt.Errorf("-keys %s: %w", path, err)
	}
	return keys, nil
}
