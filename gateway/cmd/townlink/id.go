package main

import (
	"context"
	"fmt"
	"io"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/gateway/identity"
)

func cmdID(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("id", "[-c FILE]", "Print the gateway's public key (ed25519:…) for registration at the county. The key is\n"+
		"generated at first use in gateway.data_dir/identity/ (mode 0600); the county verifies the\n"+
		"evidence signatures with it (townlink verify -pub KEY).", stderr)
	path := fs.String("c", "/etc/townlink/townlink.yaml", "config `file`")
	fs.StringVar(path, "config", "/etc/townlink/townlink.yaml", "config `file` (same as -c)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (the config goes after -c)", errUsage, fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	k, err := identity.Load(identity.Dir(cfg.Gateway.DataDir))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k.String())
	fmt.Fprintf(stderr, "gateway %s, key file %s\n", cfg.Gateway.ID, k.Path())
	return nil
}
