package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/townlink/townlink/uplink/county/pgstore"
)

func report(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("pg", "", "PostgreSQL connection string (required)")
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
	_, err = fmt.Fprint(stdout, r.String())
	return err
}
