// Command townlink-scale runs the county load harness (make scale): a
// 3-node NATS JetStream cluster, PostgreSQL, townlink-county ingest workers
// and hundreds of simulated gateways on the real uplink code, with the
// stream leader and an ingest worker killed mid-run and a county-wide
// outage; it prints the report docs/county.md explains and exits 1 if any
// committed record was lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/townlink/townlink/uplink/county/scale"
)

func main() {
	var c scale.Config
	keep := flag.Bool("keep", false, "keep the work directory (logs of the nodes and workers)")
	flag.StringVar(&c.Dir, "dir", "", "work directory (default: a new temporary one)")
	flag.StringVar(&c.CountyBin, "county-bin", "bin/townlink-county", "the townlink-county binary the workers run")
	flag.StringVar(&c.NATSBin, "nats-bin", "", "nats-server binary (default: build the pinned version into the user cache)")
	flag.IntVar(&c.Gateways, "gateways", 300, "simulated gateways")
	flag.IntVar(&c.Devices, "devices", 200, "devices per gateway")
	flag.DurationVar(&c.Interval, "interval", time.Minute, "each device reads this often")
	flag.IntVar(&c.Workers, "workers", 2, "ingest worker processes")
	flag.DurationVar(&c.MaxDelay, "max-delay", time.Second, "a live batch waits this long to fill")
	flag.Float64Var(&c.DrainRate, "drain-rate", 10, "backlog records/s per gateway (uplink.drain_rate): the county's gateways together must not offer more than the platform takes")
	flag.DurationVar(&c.AckTimeout, "ack-timeout", 2*time.Minute, "gateways resend what the platform has not acknowledged this long (ack: platform)")
	flag.DurationVar(&c.BackoffMin, "backoff-min", time.Second, "gateways' reconnect backoff, first pause")
	flag.DurationVar(&c.BackoffMax, "backoff-max", 30*time.Second, "gateways' reconnect backoff, longest pause")
	flag.DurationVar(&c.AckWait, "ack-wait", 15*time.Second, "JetStream redelivers a dead worker's messages after this")
	flag.DurationVar(&c.Duration, "duration", 9*time.Minute, "how long the gateways read")
	flag.DurationVar(&c.NodeKillAt, "node-kill-at", 2*time.Minute, "kill -9 the stream leader at")
	flag.DurationVar(&c.NodeDownFor, "node-down", 30*time.Second, "and restart it after")
	flag.DurationVar(&c.WorkerKillAt, "worker-kill-at", 3*time.Minute+30*time.Second, "kill -9 an ingest worker at")
	flag.DurationVar(&c.WorkerDownFor, "worker-down", 20*time.Second, "and restart it after")
	flag.DurationVar(&c.OutageAt, "outage-at", 5*time.Minute, "cut the county network at")
	flag.DurationVar(&c.OutageFor, "outage", 2*time.Minute, "for this long (0: no outage)")
	flag.DurationVar(&c.DrainTimeout, "drain-timeout", 8*time.Minute, "after the readings stop, wait this long for the outboxes to empty")
	flag.DurationVar(&c.RawFor, "raw", 10*time.Second, "measure the cluster's raw QoS 1 rate for this long (0: skip)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "townlink-scale")
		if err != nil {
			fmt.Fprintln(os.Stderr, "townlink-scale:", err)
			os.Exit(1)
		}
		c.Dir = d
		if !*keep {
			defer os.RemoveAll(d)
		}
	}
	c.Log = os.Stderr
	start := time.Now()
	rep, err := scale.Run(ctx, c)
	if rep != nil {
		fmt.Print(rep)
		fmt.Printf("  wall time                   %v (work directory %s)\n", time.Since(start).Round(time.Second), c.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "townlink-scale:", err)
		stop()
		os.Exit(1)
	}
}
